import CKernels

/// Element types a safetensors file can declare (https://github.com/huggingface/safetensors, format spec).
public enum SafeTensorDType: String, Sendable, CaseIterable {
    case F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL, U16, U32, U64, F8_E4M3, F8_E5M2
    public var size: Int {
        switch self {
        case .F64, .I64, .U64: return 8
        case .F32, .I32, .U32: return 4
        case .F16, .BF16, .I16, .U16: return 2
        case .I8, .U8, .BOOL, .F8_E4M3, .F8_E5M2: return 1
        }
    }
    /// Whether the engine can read it as floating-point weights.
    public var isFloat: Bool { self == .F32 || self == .F16 || self == .BF16 }
}

public struct SafeTensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: SafeTensorDType
    public let shape: [Int]
    /// Absolute byte range in the file.
    public let offset: Int
    public let byteCount: Int
    public var count: Int { shape.reduce(1, *) }
}

/// One `.safetensors` file: its header parsed and validated up front, tensor data read on demand.
public final class SafeTensorsFile: @unchecked Sendable {
    /// Headers above this size are refused (the format's own reference implementation uses 100 MB).
    public static let maxHeaderBytes = 100_000_000
    public let file: ReadOnlyFile
    public let tensors: [SafeTensorInfo]
    public let metadata: [(String, String)]
    public var path: String { file.path }

    public convenience init(path: String) throws {
        try self.init(file: ReadOnlyFile(path))
    }

    public init(file: ReadOnlyFile) throws {
        self.file = file
        let path = file.path
        guard file.size >= 8 else { throw WeightsError(.malformed, file: path, "too short for a safetensors file (\(file.size) bytes)") }
        let lenBytes = try file.bytes(at: 0, count: 8)
        let n = lenBytes.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard n <= UInt64(file.size - 8) else {
            throw WeightsError(.malformed, file: path, "its first 8 bytes give a header of \(n) bytes, but only \(file.size - 8) bytes follow them: a truncated file, or not safetensors")
        }
        guard n <= UInt64(SafeTensorsFile.maxHeaderBytes) else {
            throw WeightsError(.malformed, file: path, "header length \(n) exceeds \(SafeTensorsFile.maxHeaderBytes) bytes")
        }
        let header: JSON
        do { header = try JSON.parse(try file.bytes(at: 8, count: Int(n))) } catch let e as JSONError {
            throw WeightsError(.malformed, file: path, "header is not valid JSON (\(e))")
        }
        (tensors, metadata) = try SafeTensorsFile.validate(header, dataStart: 8 + Int(n), fileSize: file.size, path: path)
    }

    /// Parses a header: every entry's dtype, shape and byte range checked against the file.
    static func validate(_ header: JSON, dataStart: Int, fileSize: Int, path: String) throws -> ([SafeTensorInfo], [(String, String)]) {
        guard let members = header.object else { throw WeightsError(.malformed, file: path, "header is not a JSON object") }
        var tensors: [SafeTensorInfo] = []
        var metadata: [(String, String)] = []
        let dataSize = fileSize - dataStart
        for (name, entry) in members {
            if name == "__metadata__" {
                guard let m = entry.object else { throw WeightsError(.malformed, file: path, "__metadata__ is not an object") }
                for (k, v) in m {
                    guard let s = v.string else { throw WeightsError(.malformed, file: path, "__metadata__ value for '\(k)' is not a string") }
                    metadata.append((k, s))
                }
                continue
            }
            func bad(_ d: String) -> WeightsError { WeightsError(.tensor, file: path, tensor: name, d) }
            guard let dtypeName = entry["dtype"]?.string else { throw bad("missing dtype") }
            guard let dtype = SafeTensorDType(rawValue: dtypeName) else { throw WeightsError(.unsupported, file: path, tensor: name, "unknown dtype '\(dtypeName)'") }
            guard let shapeJSON = entry["shape"]?.array else { throw bad("missing shape") }
            var shape: [Int] = []
            var count = 1
            for d in shapeJSON {
                guard let v = d.int, v >= 0, v <= Int64(Int32.max) else { throw bad("shape \(shapeJSON.map(\.text)) has a negative, huge or non-integer dimension") }
                shape.append(Int(v))
                let (c, o) = count.multipliedReportingOverflow(by: Int(v))
                guard !o else { throw bad("shape \(shape) overflows") }
                count = c
            }
            guard let offs = entry["data_offsets"]?.array, offs.count == 2, let b = offs[0].int, let e = offs[1].int else {
                throw bad("data_offsets must be [begin, end]")
            }
            guard b >= 0, e >= b, e <= Int64(dataSize) else {
                throw bad("data_offsets [\(b), \(e)] fall outside the \(dataSize) data bytes (truncated file?)")
            }
            let (bytes, o) = count.multipliedReportingOverflow(by: dtype.size)
            guard !o, Int64(bytes) == e - b else { throw bad("shape \(shape) of \(dtype) needs \(bytes) bytes, data_offsets give \(e - b)") }
            tensors.append(SafeTensorInfo(name: name, dtype: dtype, shape: shape, offset: dataStart + Int(b), byteCount: bytes))
        }
        // Tensors must not overlap.
        let sorted = tensors.filter { $0.byteCount > 0 }.sorted { $0.offset < $1.offset }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.offset + a.byteCount > b.offset {
            throw WeightsError(.tensor, file: path, tensor: b.name, "its bytes overlap tensor '\(a.name)'")
        }
        return (tensors, metadata)
    }

    public func info(_ name: String) -> SafeTensorInfo? { tensors.first { $0.name == name } }

    /// Reads a floating-point tensor as f32 into `dest` (count elements).
    public func readFloats(_ t: SafeTensorInfo, into dest: UnsafeMutablePointer<Float>) throws {
        switch t.dtype {
        case .F32:
            try file.read(at: t.offset, count: t.byteCount, into: dest)
        case .F16, .BF16:
            let tmp = UnsafeMutablePointer<UInt16>.allocate(capacity: max(t.count, 1))
            defer { tmp.deallocate() }
            try file.read(at: t.offset, count: t.byteCount, into: tmp)
            if t.dtype == .F16 { ck_f16_to_f32(t.count, tmp, dest) } else { ck_bf16_to_f32(t.count, tmp, dest) }
        default:
            throw WeightsError(.unsupported, file: path, tensor: t.name, "dtype \(t.dtype) is not a floating-point weight type (F32, F16, BF16)")
        }
    }

    public func readFloats(_ name: String) throws -> [Float] {
        guard let t = info(name) else { throw WeightsError(.tensor, file: path, tensor: name, "not in this file") }
        if t.count == 0 { return [] }
        var out = [Float](repeating: 0, count: t.count)
        try out.withUnsafeMutableBufferPointer { try readFloats(t, into: $0.baseAddress!) }
        return out
    }
}
