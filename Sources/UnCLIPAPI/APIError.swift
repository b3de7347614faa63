import UnCLIP

/// An error answered to an HTTP client: its status and, for the OpenAI routes, OpenAI's error object
/// `{"error": {"message", "type", "param", "code"}}` with the status codes the official SDKs map to their exception
/// classes (400 BadRequestError, 401 AuthenticationError, 404 NotFoundError, 413, 429 RateLimitError, 500, 503).
public struct APIError: Error, Equatable, CustomStringConvertible {
    public let status: Int
    public let message: String
    public let type: String
    public let param: String?
    public let code: String?
    /// Seconds a client should wait before retrying (429, 503).
    public var retryAfter: Int?

    public init(status: Int, message: String, type: String, param: String? = nil, code: String? = nil, retryAfter: Int? = nil) {
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.retryAfter = retryAfter
    }

    public var description: String { "\(status) \(type): \(message)" }

    /// A bad field: 400 invalid_request_error naming the parameter (as OpenAI's own answers do).
    public static func invalid(_ param: String?, _ message: String, code: String? = nil) -> APIError {
        APIError(status: 400, message: message, type: "invalid_request_error", param: param, code: code)
    }

    public static func unauthorized(_ message: String) -> APIError {
        APIError(status: 401, message: message, type: "invalid_request_error", code: "invalid_api_key")
    }

    public static func notFound(_ message: String) -> APIError {
        APIError(status: 404, message: message, type: "invalid_request_error", code: "not_found")
    }

    public static func tooLarge(_ limit: Int) -> APIError {
        APIError(status: 413, message: "the request body is larger than this server's limit of \(limit) bytes (unclip serve --max-body)",
                 type: "invalid_request_error", code: "request_too_large")
    }

    public static func queueFull(retryAfter: Int) -> APIError {
        APIError(status: 429, message: "the job queue is full; retry in about \(retryAfter) s", type: "requests",
                 code: "rate_limit_exceeded", retryAfter: retryAfter)
    }

    public static func shuttingDown() -> APIError {
        APIError(status: 503, message: "the server is shutting down; this job was not started", type: "server_error",
                 code: "service_unavailable", retryAfter: 5)
    }

    public static func server(_ message: String) -> APIError {
        APIError(status: 500, message: message, type: "server_error")
    }

    /// OpenAI's error object.
    public var openAIBody: JSON {
        .object([("error", .object([("message", .string(message)), ("type", .string(type)),
                                    ("param", param.map { .string($0) } ?? .null), ("code", code.map { .string($0) } ?? .null)]))])
    }

    /// AUTOMATIC1111's (FastAPI's) shape: `{"error", "detail", "body", "errors"}` for its own errors, and for a
    /// validation error FastAPI's 422 `{"detail": [{"loc", "msg", "type"}]}`.
    public var a1111Body: JSON {
        if status == 422 {
            return .object([("detail", .array([.object([("loc", .array([.string("body")] + (param.map { [.string($0)] } ?? []))),
                                                        ("msg", .string(message)), ("type", .string(code ?? "value_error"))])]))])
        }
        return .object([("error", .string(type)), ("detail", .string(message)), ("body", .string("")), ("errors", .string(message))])
    }

    /// A bad field in an AUTOMATIC1111 request: 422, as FastAPI's validation.
    public static func unprocessable(_ param: String, _ message: String) -> APIError {
        APIError(status: 422, message: message, type: "invalid_request_error", param: param, code: "value_error")
    }
}
