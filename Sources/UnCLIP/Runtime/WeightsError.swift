/// Errors from reading or writing weight files. Each names the file (and the tensor where there is one) and
/// says what to do.
public struct WeightsError: Error, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The file or directory is not what it claims to be (truncated, wrong magic, bad header, bad JSON).
        case malformed
        /// A tensor is missing, duplicated, misshapen or of a type that cannot be used.
        case tensor
        /// The input is valid but not supported (e.g. pickle checkpoints, unknown dtypes).
        case unsupported
        /// The file system refused (missing file, permission, full disk).
        case io
    }
    public let kind: Kind
    public let file: String
    public let tensor: String?
    public let detail: String

    public init(_ kind: Kind, file: String, tensor: String? = nil, _ detail: String) {
        self.kind = kind
        self.file = file
        self.tensor = tensor
        self.detail = detail
    }

    public var description: String {
        "\(file)\(tensor.map { ": tensor '\($0)'" } ?? ""): \(detail)"
    }
}
