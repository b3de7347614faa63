import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import UnCLIP
import UnCLIPAPI

/// AUTOMATIC1111's API (`/sdapi/v1/…`): the endpoints front ends call for text → image, image → image and progress.
extension ImageServer {
    func addA1111Routes(_ router: Router<ServerContext>) {
        router.post("/sdapi/v1/txt2img") { req, ctx in try await self.a1111(req, ctx, parse: A1111.txt2img) }
        router.post("/sdapi/v1/img2img") { req, ctx in try await self.a1111(req, ctx, parse: A1111.img2img) }
        router.get("/sdapi/v1/progress") { req, _ in
            try self.authorize(req)
            let skipImage = req.uri.queryParameters.get("skip_current_image").map { $0 == "true" || $0 == "1" } ?? false
            return self.json(self.a1111Progress(includeImage: !skipImage))
        }
        router.post("/sdapi/v1/interrupt") { req, _ in
            try self.authorize(req)
            for j in self.queue.running { self.queue.cancel(j) }
            return self.json(.object([]))
        }
        router.post("/sdapi/v1/skip") { req, _ in
            try self.authorize(req)
            for j in self.queue.running { self.queue.cancel(j) }
            return self.json(.object([]))
        }
        router.get("/sdapi/v1/sd-models") { req, _ in
            try self.authorize(req)
            let title = "\(self.modelName) [\(self.modelSHA256.prefix(10))]"
            return self.json(.array([.object([("title", .string(title)), ("model_name", .string(self.modelName)),
                                              ("hash", .string(String(self.modelSHA256.prefix(10)))), ("sha256", .string(self.modelSHA256)),
                                              ("filename", .string((self.modelPath as NSString).lastPathComponent)), ("config", .null)])]))
        }
        router.get("/sdapi/v1/samplers") { req, _ in
            try self.authorize(req)
            return self.json(.array(["UnCLIP", "DDIM"].map { .object([("name", .string($0)), ("aliases", .array([.string($0.lowercased())])), ("options", .object([]))]) }))
        }
        router.get("/sdapi/v1/options") { req, _ in
            try self.authorize(req)
            return self.json(.object([("sd_model_checkpoint", .string("\(self.modelName) [\(self.modelSHA256.prefix(10))]"))]))
        }
    }

    func a1111(_ req: Request, _ ctx: ServerContext, parse: @escaping @Sendable ([UInt8]) throws(APIError) -> A1111.Request) async throws -> Response {
        try authorize(req)
        let (job, result, request) = try await runJob(req, ctx) { body throws(APIError) in
            let r = try parse(body)
            return (r.job, r)
        }
        let note: String? = { if case .vary = request.job.task { return "img2img without a mask makes unCLIP variations of init_images[0]; the prompt is not used" } else { return nil } }()
        let body = A1111.response(images: result.pngs.map { Data($0).base64EncodedString() }, request: request, seeds: result.seeds,
                                  infotexts: result.infotexts, width: result.width, height: result.height,
                                  steps: result.options.decoderSteps, cfgScale: result.options.decoderGuidance, note: note)
        return json(body, headers: resultHeaders(job, result))
    }

    /// A1111's progress object for the running job (or idle): fraction, ETA, step, and the decoder's current sample.
    func a1111Progress(includeImage: Bool) -> JSON {
        let running = queue.running.first
        let p = running?.progress ?? JobProgress()
        let image: JSON = includeImage ? (running?.preview.map { .string(Data($0).base64EncodedString()) } ?? .null) : .null
        let state: JSON = .object([
            ("skipped", .bool(false)), ("interrupted", .bool(running?.isCancelled ?? false)),
            ("job", .string(running?.id ?? "")), ("job_count", .int(queue.running.count + queue.waiting.count)),
            ("job_timestamp", .string(running.map { Self.timestamp($0.created) } ?? "0")), ("job_no", .int(0)),
            ("sampling_step", .int(p.step)), ("sampling_steps", .int(p.total)), ("stage", .string(p.stage)),
        ])
        return .object([("progress", .number(double: running == nil ? 0 : p.fraction, int: nil)),
                        ("eta_relative", .number(double: p.eta ?? 0, int: nil)), ("state", state),
                        ("current_image", image), ("textinfo", running == nil ? .null : .string("\(p.stage) \(p.step)/\(p.total)"))])
    }

    static func timestamp(_ d: Date) -> String {
        let f = DateFormatter()
        f.dateFormat = "yyyyMMddHHmmss"
        f.timeZone = TimeZone(identifier: "UTC")
        return f.string(from: d)
    }
}
