import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import UnCLIP
import UnCLIPAPI

/// `unclip serve`: one model loaded once, a bounded job queue, and three APIs over it — OpenAI's Images API
/// (dall-e-2's generations, edits, variations), AUTOMATIC1111's txt2img/img2img/progress, and job events as
/// Server-Sent Events — plus a small web page at `/`.
public final class ImageServer: Sendable {
    public let config: ServerConfiguration
    public let queue: JobQueue
    public let store: ImageStore
    let engines: [Engine]
    let keys: APIKeys
    let modelName: String
    let modelSHA256: String
    let modelPath: String
    let ownsStore: Bool
    let started = Date()

    public init(config: ServerConfiguration, model file: ModelFile, path: String) throws {
        self.config = config
        modelPath = path
        modelName = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        let sha = try ModelHash.sha256(of: path)
        modelSHA256 = sha
        let display = file.gguf.value("general.name")?.string ?? (path as NSString).lastPathComponent
        engines = try (0..<config.workers).map { _ in try Engine(file: file, path: path, name: display, sha256: sha) }
        keys = APIKeys(config.apiKeys)
        let dir = config.storeDirectory ?? (NSTemporaryDirectory() as NSString).appendingPathComponent("unclip-serve-\(getpid())")
        ownsStore = config.storeDirectory == nil
        store = try ImageStore(directory: dir, ttl: config.urlTTL)
        let engines = self.engines
        queue = JobQueue(capacity: config.queue, workers: config.workers) { job, worker in try engines[worker].run(job) }
    }

    /// Serves until SIGTERM or SIGINT; then queued jobs are answered 503, the running ones finish and are answered,
    /// and the server stops. `onListening` gets the bound port (useful with port 0).
    public func run(onListening: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        var logger = Logger(label: "unclip-serve")
        logger.logLevel = config.quiet ? .error : .info
        let app = Application(router: makeRouter(logger: logger),
                              configuration: .init(address: .hostname(config.host, port: config.port), serverName: "unclip/\(UnCLIPVersion.string)"),
                              onServerRunning: { channel in onListening(channel.localAddress?.port ?? 0) },
                              logger: logger)
        queue.start()
        // the queue is shut down first (services stop in reverse order): queued jobs get 503 at once, the running one
        // finishes and its response goes out before the HTTP server stops
        let group = ServiceGroup(configuration: .init(services: [app, QueueService(queue: queue)],
                                                      gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        if ownsStore {
            store.removeAll()
            rmdir(store.directory)
        }
    }

    struct QueueService: Service {
        let queue: JobQueue
        func run() async throws {
            try? await gracefulShutdown()
            await queue.shutdown()
        }
    }

    // MARK: routes

    func makeRouter(logger: Logger) -> Router<ServerContext> {
        let router = Router(context: ServerContext.self)
        router.middlewares.add(ErrorMiddleware(server: self))
        router.get("/health") { _, _ in self.json(.object([("status", .string("ok")), ("model", .string(self.modelName)),
                                                           ("queued", .int(self.queue.waiting.count)), ("running", .int(self.queue.running.count))])) }
        router.get("/") { _, _ in
            var h = HTTPFields()
            h[.contentType] = "text/html; charset=utf-8"
            h[.contentSecurityPolicy] = "default-src 'self'; img-src 'self' data: blob:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
            return Response(status: .ok, headers: h, body: .init(byteBuffer: ByteBuffer(string: WebPage.html)))
        }
        router.get("/v1/models") { req, _ in
            try self.authorize(req)
            let model: (String) -> JSON = { id in .object([("id", .string(id)), ("object", .string("model")),
                                                          ("created", .int(Int(self.started.timeIntervalSince1970))), ("owned_by", .string("unclip"))]) }
            return self.json(.object([("object", .string("list")), ("data", .array([model(self.modelName), model(OpenAIImages.compatibleModel)]))]))
        }
        router.post("/v1/images/generations") { req, ctx in
            try await self.openAI(req, ctx) { body throws(APIError) in try OpenAIImages.generation(body, modelName: self.modelName) }
        }
        router.post("/v1/images/edits") { req, ctx in
            try await self.openAI(req, ctx) { body throws(APIError) in try OpenAIImages.edit(try self.multipart(req, body), modelName: self.modelName) }
        }
        router.post("/v1/images/variations") { req, ctx in
            try await self.openAI(req, ctx) { body throws(APIError) in try OpenAIImages.variation(try self.multipart(req, body), modelName: self.modelName) }
        }
        router.get("/v1/images/files/:name") { _, ctx in
            let name = ctx.parameters.get("name") ?? ""
            guard name.hasSuffix(".png"), let png = self.store.get(String(name.dropLast(4))) else {
                throw APIError.notFound("no such image (image URLs expire after \(Int(self.config.urlTTL / 60)) minutes)")
            }
            var h = HTTPFields()
            h[.contentType] = "image/png"
            h[.cacheControl] = "private, max-age=\(Int(self.config.urlTTL))"
            return Response(status: .ok, headers: h, body: .init(byteBuffer: ByteBuffer(bytes: png)))
        }
        router.get("/v1/jobs") { req, _ in
            try self.authorize(req)
            return self.json(.object([("data", .array((self.queue.running + self.queue.waiting).map(\.json)))]))
        }
        router.get("/v1/jobs/:id") { req, ctx in
            try self.authorize(req)
            return self.json(try self.job(ctx).json)
        }
        router.delete("/v1/jobs/:id") { req, ctx in
            try self.authorize(req)
            let job = try self.job(ctx)
            self.queue.cancel(job)
            return self.json(job.json)
        }
        router.get("/v1/jobs/:id/events") { req, ctx in
            try self.authorize(req)
            let job = try self.job(ctx)
            let events = job.events()
            let id = job.id
            var h = HTTPFields()
            h[.contentType] = "text/event-stream"
            h[.cacheControl] = "no-cache"
            return Response(status: .ok, headers: h, body: ResponseBody { writer in
                if let p = self.queue.position(of: job) { try await writer.write(ByteBuffer(string: JobEvent.queued(position: p).sse(jobID: id))) }
                for await e in events { try await writer.write(ByteBuffer(string: e.sse(jobID: id))) }
                try await writer.finish(nil)
            })
        }
        addA1111Routes(router)
        return router
    }

    func job(_ ctx: ServerContext) throws -> Job {
        let id = ctx.parameters.get("id") ?? ""
        guard let job = queue.job(id) else { throw APIError.notFound("no job '\(id.prefix(64))' (finished jobs are kept for the last \(JobQueue.keepFinished))") }
        return job
    }

    // MARK: the OpenAI endpoints

    func openAI(_ req: Request, _ ctx: ServerContext, parse: @escaping @Sendable ([UInt8]) throws(APIError) -> OpenAIImages.Request) async throws -> Response {
        try authorize(req)
        let (job, result, format) = try await runJob(req, ctx) { body throws(APIError) in
            let r = try parse(body)
            return (r.job, r.responseFormat)
        }
        let created = Int(Date().timeIntervalSince1970)
        let body: JSON
        switch format {
        case .b64_json:
            body = OpenAIImages.response(created: created, base64: result.pngs.map { Data($0).base64EncodedString() })
        case .url:
            let base = baseURL(req)
            var urls: [String] = []
            for png in result.pngs { urls.append("\(base)/v1/images/files/\(try store.put(png)).png") }
            body = OpenAIImages.response(created: created, urls: urls)
        }
        return json(body, headers: resultHeaders(job, result))
    }

    func resultHeaders(_ job: Job, _ r: JobResult) -> HTTPFields {
        var h = HTTPFields()
        h[.connection] = "close"
        h[Self.jobIDHeader] = job.id
        h[HTTPField.Name("X-Unclip-Seeds")!] = r.seeds.map(String.init).joined(separator: ",")
        h[HTTPField.Name("X-Unclip-Native-Size")!] = "\(r.nativeWidth)x\(r.nativeHeight)"
        if r.nativeWidth != r.width || r.nativeHeight != r.height {
            h[HTTPField.Name("X-Unclip-Resized")!] = "\(r.nativeWidth)x\(r.nativeHeight) to \(r.width)x\(r.height) (antialiased bicubic: the model makes \(r.nativeWidth)x\(r.nativeHeight))"
        }
        return h
    }

    static let jobIDHeader = HTTPField.Name("X-Unclip-Job-Id")!

    /// Reads the body (bounded), parses it, queues the job and waits for it; a client that goes away (its
    /// connection closes) cancels it. Hummingbird watches for the close by reading on past the request, so these
    /// responses end their connection (`Connection: close`): a next request on it would race that reader.
    func runJob<Extra: Sendable>(_ req: Request, _ ctx: ServerContext, parse: @escaping @Sendable ([UInt8]) throws(APIError) -> (ImageJobRequest, Extra)) async throws -> (Job, JobResult, Extra) {
        let limit = config.maxBodyBytes
        if let len = req.headers[.contentLength].flatMap(Int.init), len > limit { throw APIError.tooLarge(limit) }
        let id = try clientJobID(req)
        let queue = self.queue, engine = engines[0]
        return try await req.body.consumeWithCancellationOnInboundClose { body in
            let bytes: [UInt8]
            do {
                bytes = Array(try await body.collect(upTo: limit).readableBytesView)
            } catch let e as HTTPError where e.status == .contentTooLarge {
                throw APIError.tooLarge(limit)
            }
            let (request, extra) = try parse(bytes)
            _ = try engine.options(for: request)   // bad settings: 400 now, not after waiting in the queue
            let job = Job(id: id, request: request)
            try queue.submit(job)
            let result = try await withTaskCancellationHandler { try await job.result() } onCancel: { queue.cancel(job) }
            return (job, result, extra)
        }
    }

    /// A client may name its job (`X-Unclip-Job-Id`, 8–64 of [A-Za-z0-9_-]) to follow its events while it waits;
    /// otherwise the server picks one and returns it in the same header.
    func clientJobID(_ req: Request) throws(APIError) -> String {
        guard let v = req.headers[Self.jobIDHeader] else { return UUID().uuidString.lowercased() }
        guard (8...64).contains(v.utf8.count), v.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || $0 == 45 || $0 == 95 }) else {
            throw APIError.invalid(nil, "X-Unclip-Job-Id must be 8–64 characters of A–Z, a–z, 0–9, '-' and '_'")
        }
        return v
    }

    func multipart(_ req: Request, _ body: [UInt8]) throws(APIError) -> [MultipartPart] {
        do {
            let b = try Multipart.boundary(contentType: req.headers[.contentType])
            return try Multipart.parse(body, boundary: b)
        } catch {
            throw APIError.invalid(nil, "\(error)")
        }
    }

    /// Where image URLs point: --public-url, else the request's Host (checked), else the bound address.
    func baseURL(_ req: Request) -> String {
        if let p = config.publicURL { return p }
        if let host = req.head.authority, (1...255).contains(host.utf8.count),
           host.utf8.allSatisfy({ ($0 >= 48 && $0 <= 58) || ($0 >= 65 && $0 <= 93 && $0 != 92) || ($0 >= 97 && $0 <= 122) || $0 == 45 || $0 == 46 }) {
            return "http://\(host)"
        }
        return "http://\(config.host):\(config.port)"
    }

    func authorize(_ req: Request) throws(APIError) {
        guard keys.enabled else { return }
        guard let key = APIKeys.presented(req.headers[.authorization]) else {
            throw APIError.unauthorized("You didn't provide an API key: send 'Authorization: Bearer <key>' (this server was started with --api-key)")
        }
        guard keys.accepts(key) else { throw APIError.unauthorized("Incorrect API key provided") }
    }

    func json(_ v: JSON, status: HTTPResponse.Status = .ok, headers: HTTPFields = HTTPFields()) -> Response {
        var h = headers
        h[.contentType] = "application/json"
        return Response(status: status, headers: h, body: .init(byteBuffer: ByteBuffer(string: v.text)))
    }

    /// Every error becomes its API's error object: OpenAI's under /v1 and elsewhere, A1111's under /sdapi. A
    /// framework error keeps its status (404, 405, 413 …); anything else is a 500 that says what failed.
    struct ErrorMiddleware: RouterMiddleware {
        typealias Context = ServerContext
        let server: ImageServer

        func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
            do {
                return try await next(request, context)
            } catch {
                let e: APIError
                switch error {
                case let a as APIError: e = a
                case let h as HTTPError:
                    switch h.status {
                    case .contentTooLarge: e = .tooLarge(server.config.maxBodyBytes)
                    case .notFound: e = .notFound("no route \(request.method.rawValue) \(request.uri.path.prefix(200))")
                    case .methodNotAllowed: e = APIError(status: 405, message: "\(request.method.rawValue) is not allowed on \(request.uri.path.prefix(200))", type: "invalid_request_error")
                    default: e = APIError(status: Int(h.status.code), message: h.body ?? h.status.reasonPhrase, type: h.status.code < 500 ? "invalid_request_error" : "server_error")
                    }
                case is CancellationError: e = .cancelled()
                default: e = .server("\(error)")
                }
                var h = HTTPFields()
                if let r = e.retryAfter { h[.retryAfter] = "\(r)" }
                if request.method == .post { h[.connection] = "close" }  // see runJob
                let a1111 = request.uri.path.hasPrefix("/sdapi/")
                return server.json(a1111 ? e.a1111Body : e.openAIBody, status: HTTPResponse.Status(code: e.status), headers: h)
            }
        }
    }
}
