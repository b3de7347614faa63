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

    public var description: String {
        switch self {
        case let .shapeMismatch(op, detail): return "\(op): shape mismatch: \(detail)"
        case let .invalidArgument(name, detail): return "invalid \(name): \(detail)"
        case let .io(path, detail): return "\(path): \(detail)"
        case let .image(path, detail): return "\(path): \(detail)"
        }
    }
}

@inline(__always)
func require(_ condition: Bool, _ op: String, _ detail: @autoclosure () -> String) throws {
    if !condition { throw UnCLIPError.shapeMismatch(operation: op, detail: detail()) }
}
