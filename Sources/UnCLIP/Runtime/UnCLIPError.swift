import CKernels
/// Errors a caller or a user can cause. Each message says what is wrong and what to do about it.
public enum UnCLIPError: Error, Equatable, CustomStringConvertible {
    /// A tensor's shape, dtype or layout does not fit the operation.
    case shapeMismatch(operation: String, detail: String)
    /// An argument is out of its valid range.
    case invalidArgument(name: String, detail: String)
    /// A file could not be read or written.
    case io(path: String, detail: String)
    /// An image file is unreadable or unsupported.
    case image(path: String, detail: String)
    /// A stage produced (or was given) NaN or infinite values: corrupt weights, a corrupt noise file or a numeric
    /// fault. Nothing is written.
    case nonFinite(stage: String, detail: String)

    public var description: String {
        switch self {
        case let .shapeMismatch(op, detail): return "\(op): shape mismatch: \(detail)"
        case let .invalidArgument(name, detail): return "invalid \(name): \(detail)"
        case let .io(path, detail): return "\(path): \(detail)"
        case let .image(path, detail): return "\(path): \(detail)"
        case let .nonFinite(stage, detail): return "\(stage): \(detail)"
        }
    }
}

@inline(__always)
func require(_ condition: Bool, _ op: String, _ detail: @autoclosure () -> String) throws {
    if !condition { throw UnCLIPError.shapeMismatch(operation: op, detail: detail()) }
}

/// Refuses NaN and ±∞ in a stage's output (`what` names the values), naming the stage, the first bad index and
/// how many there are; the likeliest causes are corrupt weights or noise, so it says to verify the model file.
func requireFinite(_ v: [Float], stage: String, _ what: @autoclosure () -> String) throws {
    var first = 0
    let bad = v.withUnsafeBytes { ck_count_nonfinite(Int32(CK_FLOAT_F32), v.count, $0.baseAddress, &first) }  // TensorIntegrity's counter
    guard bad > 0 else { return }
    throw UnCLIPError.nonFinite(stage: stage, detail: "\(what()) has \(bad) NaN or infinite value\(bad == 1 ? "" : "s") (first at index \(first) of \(v.count)): the model file or noise file is probably corrupt; run `unclip-weights verify` on the model; nothing was written")
}
