import CKernels
import Foundation

/// Damage detection for unclip GGUF files: each tensor's XXH64 (`UnCLIPGGUF.tensorChecksums`, written by every
/// conversion) is checked when its component is mapped and by `unclip-weights verify`, and float tensors must hold
/// finite values. A flipped bit anywhere in a tensor is caught before it can reach an image.
public enum TensorIntegrity {
    /// The file's checksums by tensor name, or nil for a file written before they existed.
    public static func checksums(_ g: GGUFFile) throws -> [String: UInt64]? {
        guard let v = g.value(UnCLIPGGUF.tensorChecksums) else { return nil }
        guard case let .array(type, items) = v, type == 10, items.count == g.tensors.count else {
            throw WeightsError(.malformed, file: g.path, "\(UnCLIPGGUF.tensorChecksums) must be \(g.tensors.count) UInt64 values, one per tensor; convert the model again")
        }
        var out: [String: UInt64] = [:]
        for (t, item) in zip(g.tensors, items) {
            guard case let .u64(h) = item else { throw WeightsError(.malformed, file: g.path, "\(UnCLIPGGUF.tensorChecksums) holds a non-UInt64 value") }
            out[t.name] = h
        }
        return out
    }

    /// The XXH64 of a tensor's bytes (seed 0).
    public static func hash(_ bytes: UnsafeRawPointer, count: Int) -> UInt64 { ck_xxh64(bytes, count, 0) }

    /// Checks one tensor's bytes: its checksum when `expected` is given and, for F32/F16/BF16, that no value is ∞ or NaN.
    public static func check(_ t: GGUFTensorInfo, bytes: UnsafeRawPointer, expected: UInt64?, file: String) throws {
        if let expected {
            let h = hash(bytes, count: t.byteCount)
            guard h == expected else {
                throw WeightsError(.tensor, file: file, tensor: t.name,
                                   "checksum mismatch (xxh64 \(hex(h)), the file says \(hex(expected))): the file is damaged; download or convert it again (`unclip-weights verify` checks every tensor)")
            }
        }
        let kind: Int32
        switch t.type {
        case .f32: kind = Int32(CK_FLOAT_F32)
        case .f16: kind = Int32(CK_FLOAT_F16)
        case .bf16: kind = Int32(CK_FLOAT_BF16)
        default: return
        }
        try requireFinite(kind: kind, count: t.count, bytes: bytes, file: file, tensor: t.name)
    }

    /// Refuses ∞ and NaN in a float array of CKernels' kind `kind` (CK_FLOAT_*).
    public static func requireFinite(kind: Int32, count: Int, bytes: UnsafeRawPointer, file: String, tensor: String) throws {
        var first = 0
        let bad = ck_count_nonfinite(kind, count, bytes, &first)
        guard bad > 0 else { return }
        throw WeightsError(.tensor, file: file, tensor: tensor,
                           "holds \(bad) NaN or infinite value\(bad == 1 ? "" : "s") (the first at index \(first) of \(count)): the file is damaged; download or convert it again")
    }

    static func hex(_ h: UInt64) -> String {
        let s = String(h, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }

    /// What `verify` found.
    public struct Report: Sendable {
        public var tensors = 0
        public var bytes = 0
        public var checksummed = false
        public var seconds = 0.0
    }

    /// Checks a whole file, one component's mapping at a time: the container and model checks of opening it, every
    /// tensor's checksum (when it has them), every float value, every int8 column sum.
    public static func verify(path: String, progress: (Int, Int) -> Void = { _, _ in }) throws -> Report {
        let t0 = Date()
        let model = try ModelFile(path: path)
        var report = Report()
        report.checksummed = model.checksums != nil
        for (i, c) in model.components.enumerated() {
            let scope = try model.load(c)  // checksums and float values
            for name in scope.names {
                let t = try scope.info(name)
                if t.type == .i8 {
                    let shape = try model.q8Shape(t)
                    _ = try scope.q8Matrix(t, n: shape[0], k: shape.dropFirst().reduce(1, *))  // column sums
                }
                report.tensors += 1
                report.bytes += t.byteCount
            }
            scope.region?.dropResidentPages()
            progress(i + 1, model.components.count)
        }
        report.seconds = Date().timeIntervalSince(t0)
        return report
    }
}
