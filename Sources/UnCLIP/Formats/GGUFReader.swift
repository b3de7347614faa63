import Foundation

/// A GGUF file opened for reading: header parsed and validated in full before anything uses it (magic,
/// version, counts, every string and array inside the header, known value and tensor types, unique names,
/// shapes that fit the type's blocks, every tensor's aligned byte range inside the file, no overlaps).
/// Tensor data is read on demand or mapped per range.
public final class GGUFFile: @unchecked Sendable {
    public let file: ReadOnlyFile
    public let metadata: [(String, GGUFValue)]
    public let tensors: [GGUFTensorInfo]
    public let alignment: Int
    /// Absolute offset of the data section.
    public let dataStart: Int
    private let index: [String: Int]
    public var path: String { file.path }

    public convenience init(path: String) throws { try self.init(file: ReadOnlyFile(path)) }

    public init(file: ReadOnlyFile) throws {
        self.file = file
        let headerBytes = min(file.size, GGUF.maxHeaderBytes)
        let buf = try file.bytes(at: 0, count: headerBytes)
        var r = GGUFCursor(buf: buf, path: file.path, fileSize: file.size)
        guard buf.count >= 24, Array(buf[0..<4]) == GGUF.magic else {
            throw WeightsError(.malformed, file: file.path, "not a GGUF file (wrong magic or shorter than a header)")
        }
        r.i = 4
        let version = try r.u32()
        guard version == GGUF.version else {
            throw WeightsError(.unsupported, file: file.path, "GGUF version \(version); this reader supports version \(GGUF.version)")
        }
        let nTensors = try r.u64(), nKV = try r.u64()
        guard nTensors <= UInt64(GGUF.maxTensors), nKV <= UInt64(GGUF.maxKeyValues) else {
            throw WeightsError(.malformed, file: file.path, "implausible counts: \(nTensors) tensors, \(nKV) metadata entries")
        }
        var kv: [(String, GGUFValue)] = []
        var keys = Set<String>()
        for _ in 0..<Int(nKV) {
            let key = try r.string()
            guard keys.insert(key).inserted else { throw WeightsError(.malformed, file: file.path, "duplicate metadata key '\(key)'") }
            kv.append((key, try r.value(type: try r.u32(), depth: 0)))
        }
        metadata = kv
        var align = GGUF.defaultAlignment
        if let a = kv.first(where: { $0.0 == "general.alignment" })?.1 {
            guard case let .u32(v) = a, v > 0, v.nonzeroBitCount == 1, v <= 1 << 16 else {
                throw WeightsError(.malformed, file: file.path, "general.alignment must be a power-of-two u32")
            }
            align = Int(v)
        }
        alignment = align
        var infos: [GGUFTensorInfo] = []
        var idx: [String: Int] = [:]
        for _ in 0..<Int(nTensors) {
            let name = try r.string()
            let nd = try r.u32()
            guard nd >= 1, nd <= UInt32(GGUF.maxDims) else { throw WeightsError(.tensor, file: file.path, tensor: name, "\(nd) dimensions (1...\(GGUF.maxDims) allowed)") }
            var ne: [Int] = []
            var count = 1
            for _ in 0..<nd {
                let d = try r.u64()
                guard d <= UInt64(Int32.max) else { throw WeightsError(.tensor, file: file.path, tensor: name, "dimension \(d) is too large") }
                ne.append(Int(d))
                let (c, o) = count.multipliedReportingOverflow(by: Int(d))
                guard !o, c <= Int(Int64(1) << 40) else { throw WeightsError(.tensor, file: file.path, tensor: name, "element count overflows") }
                count = c
            }
            let typeID = try r.u32()
            guard let type = GGMLType(rawValue: typeID) else { throw WeightsError(.unsupported, file: file.path, tensor: name, "unknown ggml type \(typeID)") }
            guard ne[0] % type.blockSize == 0 else {
                throw WeightsError(.tensor, file: file.path, tensor: name, "innermost dimension \(ne[0]) is not a multiple of \(type.name)'s block of \(type.blockSize)")
            }
            let offset = try r.u64()
            guard offset <= UInt64(file.size), Int(offset) % align == 0 else {
                throw WeightsError(.tensor, file: file.path, tensor: name, "data offset \(offset) is outside the file or not \(align)-aligned")
            }
            guard idx[name] == nil else { throw WeightsError(.tensor, file: file.path, tensor: name, "appears twice") }
            idx[name] = infos.count
            infos.append(GGUFTensorInfo(name: name, type: type, shape: ne.reversed(), offset: Int(offset)))
        }
        let start = (r.i + align - 1) / align * align
        // a file whose tensors hold no bytes (or that has none) need not carry the padding after its header
        guard start <= file.size || infos.allSatisfy({ $0.byteCount == 0 }) else {
            throw WeightsError(.malformed, file: file.path, "file ends inside its header (truncated)")
        }
        dataStart = min(start, file.size)
        for t in infos where t.offset > file.size - start || t.byteCount > file.size - start - t.offset {
            throw WeightsError(.tensor, file: file.path, tensor: t.name, "its \(t.byteCount) bytes at data offset \(t.offset) run past the end of the file (truncated?)")
        }
        let sorted = infos.filter { $0.byteCount > 0 }.sorted { $0.offset < $1.offset }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.offset + a.byteCount > b.offset {
            throw WeightsError(.tensor, file: file.path, tensor: b.name, "its bytes overlap tensor '\(a.name)'")
        }
        tensors = infos
        index = idx
    }

    public func value(_ key: String) -> GGUFValue? { metadata.first { $0.0 == key }?.1 }
    public func tensor(_ name: String) -> GGUFTensorInfo? { index[name].map { tensors[$0] } }

    /// Reads a tensor's raw bytes.
    public func read(_ t: GGUFTensorInfo, into dest: UnsafeMutableRawPointer) throws {
        try file.read(at: dataStart + t.offset, count: t.byteCount, into: dest)
    }

    /// Maps the data of `tensors` (one contiguous range covering them all).
    public func map(_ ts: [GGUFTensorInfo]) throws -> MappedRegion? {
        guard let lo = ts.map(\.offset).min(), let hi = ts.map({ $0.offset + $0.byteCount }).max(), hi > lo else { return nil }
        return try file.map(offset: dataStart + lo, count: hi - lo)
    }
}

/// Bounds-checked little-endian reads over the header bytes.
struct GGUFCursor {
    let buf: [UInt8]
    let path: String
    let fileSize: Int
    var i = 0

    func truncated() -> WeightsError {
        buf.count < fileSize
            ? WeightsError(.malformed, file: path, "header is larger than \(GGUF.maxHeaderBytes) bytes")
            : WeightsError(.malformed, file: path, "file ends inside its header (truncated)")
    }

    mutating func take(_ n: Int) throws -> ArraySlice<UInt8> {
        guard n >= 0, n <= buf.count - i else { throw truncated() }
        defer { i += n }
        return buf[i..<(i + n)]
    }

    mutating func uint(_ n: Int) throws -> UInt64 {
        let b = try take(n)
        var v: UInt64 = 0
        for (k, x) in b.enumerated() { v |= UInt64(x) << (8 * UInt64(k)) }
        return v
    }

    mutating func u32() throws -> UInt32 { UInt32(try uint(4)) }
    mutating func u64() throws -> UInt64 { try uint(8) }

    mutating func string() throws -> String {
        let n = try u64()
        guard n <= UInt64(buf.count - i) else { throw truncated() }
        let b = try take(Int(n))
        guard let s = String(validating: b, as: UTF8.self) else { throw WeightsError(.malformed, file: path, "a header string is not valid UTF-8") }
        return s
    }

    mutating func value(type: UInt32, depth: Int) throws -> GGUFValue {
        switch type {
        case 0: return .u8(UInt8(try uint(1)))
        case 1: return .i8(Int8(bitPattern: UInt8(try uint(1))))
        case 2: return .u16(UInt16(try uint(2)))
        case 3: return .i16(Int16(bitPattern: UInt16(try uint(2))))
        case 4: return .u32(UInt32(try uint(4)))
        case 5: return .i32(Int32(bitPattern: UInt32(try uint(4))))
        case 6: return .f32(Float(bitPattern: UInt32(try uint(4))))
        case 7:
            let b = try uint(1)
            guard b <= 1 else { throw WeightsError(.malformed, file: path, "bool value \(b)") }
            return .bool(b == 1)
        case 8: return .string(try string())
        case 9:
            guard depth < 2 else { throw WeightsError(.malformed, file: path, "arrays nested too deeply") }
            let et = try u32()
            let n = try u64()
            // Every element takes at least one byte: a count beyond the remaining bytes is a lie.
            guard n <= UInt64(buf.count - i) else { throw truncated() }
            var items: [GGUFValue] = []
            items.reserveCapacity(Int(n))
            for _ in 0..<Int(n) { items.append(try value(type: et, depth: depth + 1)) }
            return .array(type: et, items)
        case 10: return .u64(try uint(8))
        case 11: return .i64(Int64(bitPattern: try uint(8)))
        case 12: return .f64(Double(bitPattern: try uint(8)))
        default: throw WeightsError(.unsupported, file: path, "unknown metadata value type \(type)")
        }
    }
}
