import CKernels
import Foundation

/// Element types a tensor can hold.
public enum DType: Sendable, Equatable {
    case f32, f16, i8
    public var size: Int {
        switch self {
        case .f32: return 4
        case .f16: return 2
        case .i8: return 1
        }
    }
}

/// Memory behind tensors: 64-byte aligned, owned (freed on deinit) or borrowed from an owner that outlives it
/// (an arena, a mapped file).
public final class TensorStorage: @unchecked Sendable {
    public static let alignment = 64
    public let raw: UnsafeMutableRawPointer
    public let byteCount: Int
    private let owned: Bool
    private let owner: AnyObject?

    /// Fresh memory, zeroed unless `zeroed` is false (for outputs a kernel writes in full). Large buffers come from
    /// BufferPool, so a model's per-step activations reuse pages that are already mapped.
    public init(byteCount: Int, zeroed: Bool = true) {
        self.byteCount = byteCount
        raw = BufferPool.shared.take(max(byteCount, 1))
        if Profiler.enabled { Profiler.track(bytes: byteCount) }
        if zeroed { raw.initializeMemory(as: UInt8.self, repeating: 0, count: max(byteCount, 1)) }
        owned = true
        owner = nil
    }

    /// A view of memory kept alive by `owner`.
    public init(borrowing raw: UnsafeMutableRawPointer, byteCount: Int, owner: AnyObject) {
        self.raw = raw
        self.byteCount = byteCount
        self.owned = false
        self.owner = owner
    }

    deinit {
        guard owned else { return }
        BufferPool.shared.give(raw, max(byteCount, 1))
        if Profiler.enabled { Profiler.track(bytes: -byteCount) }
    }

    /// Drops this storage's whole pages from the process when it is a view of a mapped file (MADV_DONTNEED; the
    /// mapping stays valid and faults back in on the next read); nothing for memory of its own.
    func dropMappedPages() {
        guard let region = owner as? MappedRegion else { return }
        region.dropResidentPages(offset: UnsafeRawPointer(raw) - region.data, count: byteCount)
    }
}

/// Keeps freed large activation buffers (≥ 1 MiB) by size for reuse: a diffusion step allocates the same shapes
/// every step, and a reused buffer has its pages mapped already (no page faults, no zero pages to fill). Holds at
/// most `capacity` bytes of free buffers (512 MiB under MemoryPlan.fast, 32 MiB under .small, where held buffers
/// would add to the peak); the rest is unmapped. Large buffers are anonymous mmaps of their own rather than malloc
/// blocks: glibc raises its mmap threshold to 32 MiB after the first frees, and blocks below it then come from
/// the heap, where freed ones of other sizes stay resident (measured: ~150 MB more peak RSS in super-resolution).
final class BufferPool: @unchecked Sendable {
    static let shared = BufferPool()
    static let minBytes = 1 << 20
    static let hugePage = 2 << 20
    var capacity: Int { MemoryPlan.active == .small ? 32 << 20 : 512 << 20 }
    private var free: [Int: [UnsafeMutableRawPointer]] = [:]
    private var held = 0
    private var heapBlocks: Set<UnsafeMutableRawPointer> = []
    private let lock = NSLock()

    private init() {
        // glibc's mmap threshold fixed at 1 MiB for the whole process (fixing it turns off the dynamic raise to
        // 32 MiB and with it the trim threshold's raise to 64 MiB): the kernels' scratch (malloc'd per call, up to
        // ~10 MB) is then unmapped when freed instead of staying in the heap — measured: 43–54 MB of heap resident
        // at the super-res peak without it.
        _ = ck_malloc_fix_mmap_threshold(BufferPool.minBytes)
    }

    func take(_ bytes: Int) -> UnsafeMutableRawPointer {
        if bytes >= BufferPool.minBytes {
            lock.lock()
            if let p = free[bytes]?.popLast() {
                held -= bytes
                lock.unlock()
                return p
            }
            // A miss under the small plan: the step is growing past the sizes it freed, and the buffers held now
            // would only add to this peak (measured: 31 MiB held at the super-res peak); give them back first.
            var drained: [(UnsafeMutableRawPointer, Int)] = []
            if MemoryPlan.active == .small && held > 0 {
                for (size, list) in free { for q in list { drained.append((q, size)) } }
                free.removeAll(keepingCapacity: true)
                held = 0
            }
            lock.unlock()
            for (q, size) in drained { release(q, size) }
            if let p = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), p != MAP_FAILED {
                // transparent huge pages where the system offers them on request ("madvise" mode): one fault per
                // 2 MiB instead of per 4 KiB for buffers that are written in full anyway
                if bytes >= BufferPool.hugePage { _ = madvise(p, bytes, MADV_HUGEPAGE) }
                return p
            }
            // no mapping to be had: malloc's, remembered so that give() frees it the same way
            let p = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: TensorStorage.alignment)
            lock.lock()
            heapBlocks.insert(p)
            lock.unlock()
            return p
        }
        return UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: TensorStorage.alignment)
    }

    /// Bytes of freed buffers held for reuse now.
    var heldBytes: Int {
        lock.lock()
        defer { lock.unlock() }
        return held
    }

    func give(_ p: UnsafeMutableRawPointer, _ bytes: Int) {
        if bytes >= BufferPool.minBytes {
            lock.lock()
            if held + bytes <= capacity {
                free[bytes, default: []].append(p)
                held += bytes
                lock.unlock()
                return
            }
            lock.unlock()
        }
        release(p, bytes)
    }

    /// Unmaps a buffer (or frees it, for the small ones and malloc's fallbacks).
    private func release(_ p: UnsafeMutableRawPointer, _ bytes: Int) {
        if bytes >= BufferPool.minBytes {
            lock.lock()
            let fromHeap = heapBlocks.remove(p) != nil
            lock.unlock()
            if !fromHeap { munmap(p, bytes); return }
        }
        p.deallocate()
    }
}

/// An n-dimensional array over aligned storage. Shapes and strides are in elements; activations are NHWC.
public struct Tensor: @unchecked Sendable {
    public let shape: [Int]
    public let strides: [Int]
    public let dtype: DType
    public let storage: TensorStorage
    public let offset: Int

    public var rank: Int { shape.count }
    public var count: Int { shape.reduce(1, *) }

    static func contiguousStrides(_ shape: [Int]) -> [Int] {
        var s = [Int](repeating: 1, count: shape.count)
        var acc = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            s[i] = acc
            acc *= shape[i]
        }
        return s
    }

    public var isContiguous: Bool { strides == Tensor.contiguousStrides(shape) }

    public init(shape: [Int], strides: [Int], dtype: DType, storage: TensorStorage, offset: Int = 0) {
        self.shape = shape
        self.strides = strides
        self.dtype = dtype
        self.storage = storage
        self.offset = offset
    }

    /// Zero-filled contiguous tensor.
    public init(zeros shape: [Int], dtype: DType = .f32) throws {
        try Tensor.checkShape(shape)
        let n = shape.reduce(1, *)
        self.init(shape: shape, strides: Tensor.contiguousStrides(shape), dtype: dtype,
                  storage: TensorStorage(byteCount: n * dtype.size))
    }

    /// Contiguous tensor whose contents are undefined until written (kernel outputs that cover every element).
    init(uninitialized shape: [Int], dtype: DType = .f32) throws {
        try Tensor.checkShape(shape)
        let n = shape.reduce(1, *)
        self.init(shape: shape, strides: Tensor.contiguousStrides(shape), dtype: dtype,
                  storage: TensorStorage(byteCount: n * dtype.size, zeroed: false))
    }

    /// Contiguous f32 tensor holding `values`.
    public init(shape: [Int], values: [Float]) throws {
        try Tensor.checkShape(shape)
        guard shape.reduce(1, *) == values.count else {
            throw UnCLIPError.shapeMismatch(operation: "Tensor(shape:values:)",
                                            detail: "shape \(shape) holds \(shape.reduce(1, *)) values, got \(values.count)")
        }
        try self.init(zeros: shape)
        values.withUnsafeBufferPointer { src in
            f32.update(from: src.baseAddress!, count: values.count)
        }
    }

    static func checkShape(_ shape: [Int]) throws {
        var total = 1
        for d in shape {
            guard d >= 0 else {
                throw UnCLIPError.shapeMismatch(operation: "Tensor", detail: "negative dimension in \(shape)")
            }
            let (r, o) = total.multipliedReportingOverflow(by: d)
            guard !o, r <= Int(Int32.max) * 64 else {
                throw UnCLIPError.shapeMismatch(operation: "Tensor", detail: "shape \(shape) is too large")
            }
            total = r
        }
    }

    /// First element as f32 (the tensor must be f32).
    public var f32: UnsafeMutablePointer<Float> {
        precondition(dtype == .f32, "f32 access to a \(dtype) tensor")
        return storage.raw.assumingMemoryBound(to: Float.self) + offset
    }

    public var i8: UnsafeMutablePointer<Int8> {
        precondition(dtype == .i8, "i8 access to a \(dtype) tensor")
        return storage.raw.assumingMemoryBound(to: Int8.self) + offset
    }

    /// binary16 bits (the tensor must be f16).
    public var f16: UnsafeMutablePointer<UInt16> {
        precondition(dtype == .f16, "f16 access to a \(dtype) tensor")
        return storage.raw.assumingMemoryBound(to: UInt16.self) + offset
    }

    /// The values in row-major order (f32 only; strided views are gathered).
    public func toArray() -> [Float] {
        if isContiguous { return Array(UnsafeBufferPointer(start: f32, count: count)) }
        var out = [Float]()
        out.reserveCapacity(count)
        var idx = [Int](repeating: 0, count: rank)
        for _ in 0..<count {
            var o = 0
            for d in 0..<rank { o += idx[d] * strides[d] }
            out.append(f32[o])
            var d = rank - 1
            while d >= 0 {
                idx[d] += 1
                if idx[d] < shape[d] { break }
                idx[d] = 0
                d -= 1
            }
        }
        return out
    }

    /// The same elements under another shape (contiguous tensors only).
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        guard isContiguous, newShape.reduce(1, *) == count, newShape.allSatisfy({ $0 >= 0 }) else {
            throw UnCLIPError.shapeMismatch(operation: "reshape", detail: "\(shape) → \(newShape)")
        }
        return Tensor(shape: newShape, strides: Tensor.contiguousStrides(newShape), dtype: dtype, storage: storage,
                      offset: offset)
    }

    /// A view of index range `range` along dimension `dim` (no copy).
    public func slice(dim: Int, _ range: Range<Int>) throws -> Tensor {
        guard dim >= 0, dim < rank, range.lowerBound >= 0, range.upperBound <= shape[dim] else {
            throw UnCLIPError.shapeMismatch(operation: "slice", detail: "\(range) of dim \(dim) in \(shape)")
        }
        var s = shape
        s[dim] = range.count
        return Tensor(shape: s, strides: strides, dtype: dtype, storage: storage,
                      offset: offset + range.lowerBound * strides[dim])
    }

    /// A contiguous copy (or self when already contiguous).
    public func contiguous() throws -> Tensor {
        if isContiguous { return self }
        return try Tensor(shape: shape, values: toArray())
    }

    /// Row stride of a tensor seen as a matrix [rows, last]: all but the last dimension must be packed rows.
    func matrixRowStride(_ op: String) throws -> Int {
        try require(rank >= 1, op, "a scalar has no rows")
        try require(strides[rank - 1] == 1, op, "the last dimension must be contiguous (strides \(strides))")
        if rank == 1 { return shape[0] }
        let ld = strides[rank - 2]
        var expect = ld
        for d in stride(from: rank - 2, through: 0, by: -1) {
            try require(strides[d] == expect || shape[d] == 1, op, "rows must be evenly strided (strides \(strides))")
            expect *= shape[d]
        }
        return ld
    }
}

extension Tensor {
    /// Rows of a tensor seen as a matrix: the product of all but the last dimension.
    var rows: Int { rank <= 1 ? 1 : shape.dropLast().reduce(1, *) }
    var lastDim: Int { shape.last ?? 1 }
}
