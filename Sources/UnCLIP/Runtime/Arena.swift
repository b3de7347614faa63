/// A bump allocator for activations: one aligned block, tensors carved from it, released all at once by
/// `reset()`. Tensors handed out before a reset must not be used after it. Tracks its high-water mark, so a
/// stage can size its arena from a dry run.
public final class Arena: @unchecked Sendable {
    public let capacity: Int
    private let base: TensorStorage
    public private(set) var used = 0
    public private(set) var highWater = 0

    public init(capacity: Int) {
        self.capacity = capacity
        base = TensorStorage(byteCount: capacity)
    }

    /// A zeroed f32/i8/f16 tensor from the arena; throws when it does not fit.
    public func tensor(_ shape: [Int], dtype: DType = .f32) throws -> Tensor {
        try Tensor.checkShape(shape)
        let bytes = shape.reduce(1, *) * dtype.size
        let start = (used + TensorStorage.alignment - 1) / TensorStorage.alignment * TensorStorage.alignment
        guard start + bytes <= capacity else {
            throw UnCLIPError.invalidArgument(
                name: "arena", detail: "\(bytes) bytes for \(shape) do not fit (\(capacity - start) left of \(capacity))")
        }
        used = start + bytes
        highWater = max(highWater, used)
        let p = base.raw + start
        p.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        let storage = TensorStorage(borrowing: p, byteCount: bytes, owner: base)
        return Tensor(shape: shape, strides: Tensor.contiguousStrides(shape), dtype: dtype, storage: storage)
    }

    /// Raw scratch bytes (64-byte aligned) from the arena.
    public func scratch(_ bytes: Int) throws -> UnsafeMutableRawPointer {
        try tensor([max(bytes, 1)], dtype: .i8).storage.raw
    }

    public func reset() { used = 0 }
}
