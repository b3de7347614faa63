import Foundation

/// `unclip serve`'s settings.
public struct ServerConfiguration: Sendable {
    public var host = "127.0.0.1"
    /// 0: any free port (printed once listening).
    public var port = 8080
    /// Empty: no authentication. Otherwise `Authorization: Bearer <key>` (or HTTP basic auth with the key as
    /// password, as A1111's --api-auth clients send) on every API route.
    public var apiKeys: [String] = []
    /// Jobs that may wait besides the running ones; more → 429.
    public var queue = 8
    public var workers = 1
    /// Where `response_format: url` images live (nil: a new folder under the temporary directory, removed at exit).
    public var storeDirectory: String?
    public var maxBodyBytes = 25 << 20
    /// The scheme://host[:port] that image URLs start with (nil: from the request's Host header).
    public var publicURL: String?
    /// Image URLs expire after this many seconds (OpenAI's: 60 minutes).
    public var urlTTL: TimeInterval = 3600
    public var quiet = false

    public init() {}

    public static let maxQueue = 1000
    public static let maxWorkers = 16
    public static let maxBodyLimit = 512 << 20
}
