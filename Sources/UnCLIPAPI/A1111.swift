import Foundation
import UnCLIP

/// AUTOMATIC1111's web UI API (`/sdapi/v1/txt2img`, `/img2img`), the fields that mean something for unCLIP:
///
/// | field | here |
/// |---|---|
/// | prompt | the prompt (prior and decoder) |
/// | seed | the first image's seed; −1 draws one |
/// | steps | decoder steps (the prior's and super-res's stay the model's) |
/// | cfg_scale | decoder classifier-free guidance |
/// | width, height | the delivered size (the native output is resized to it) |
/// | batch_size × n_iter | images (≤ 64) |
/// | sampler_name / sampler_index | `DDIM` → DDIM; anything else → the model's UnCLIPScheduler (reported in info) |
/// | init_images[0] (img2img) | without a mask: a variation of it; with a mask: an edit |
/// | mask, inpainting_mask_invert (img2img) | luminance mask, white = regenerate (A1111's "inpaint masked"); invert 1 flips it |
///
/// Every other field is accepted and ignored (`ignoredFields` lists the usual ones; the response's info says which
/// were set), as A1111 itself ignores what a script does not read.
public enum A1111 {
    public static let maxCount = 64
    public static let maxSide = 4096

    public static let ignoredFields = ["negative_prompt", "styles", "subseed", "subseed_strength", "seed_resize_from_h", "seed_resize_from_w",
                                       "scheduler", "restore_faces", "tiling", "eta", "s_churn", "s_tmax", "s_tmin", "s_noise",
                                       "enable_hr", "hr_scale", "hr_upscaler", "denoising_strength", "mask_blur", "inpainting_fill",
                                       "inpaint_full_res", "inpaint_full_res_padding", "resize_mode", "image_cfg_scale",
                                       "initial_noise_multiplier", "override_settings", "script_args", "script_name", "alwayson_scripts"]

    public struct Request: Sendable {
        public var job: ImageJobRequest
        /// The request's fields echoed back as `parameters` (A1111 returns the request).
        public var parameters: JSON
        public var samplerName: String
        /// Set fields that unCLIP does not use.
        public var ignored: [String]
    }

    public static func txt2img(_ body: [UInt8]) throws(APIError) -> Request {
        let (fields, raw) = try object(body)
        let prompt = try prompt(fields)
        return try common(fields, raw: raw, task: .generate(prompt: prompt))
    }

    public static func img2img(_ body: [UInt8]) throws(APIError) -> Request {
        let (fields, raw) = try object(body)
        guard let list = fields["init_images"]?.array, let first = list.first else {
            throw APIError.unprocessable("init_images", "init_images must be a list with at least one base64 PNG")
        }
        guard let b64 = first.string else { throw APIError.unprocessable("init_images", "init_images[0] must be a base64 string") }
        let image = try decodeImage(b64, field: "init_images")
        let task: ImageJobRequest.Task
        if let m = fields["mask"], m != .null {
            guard let ms = m.string else { throw APIError.unprocessable("mask", "mask must be a base64 PNG string") }
            let mi = try decodeImage(ms, field: "mask")
            guard mi.width == image.width, mi.height == image.height else {
                throw APIError.unprocessable("mask", "the mask is \(mi.width)x\(mi.height) but init_images[0] is \(image.width)x\(image.height); they must be the same size")
            }
            let invert = try int(fields, "inpainting_mask_invert") ?? 0
            guard invert == 0 || invert == 1 else { throw APIError.unprocessable("inpainting_mask_invert", "inpainting_mask_invert must be 0 or 1") }
            let lum = (try? EditMask(image: mi, mode: .luminance)) ?? (try! EditMask(width: 1, height: 1, keep: [true]))
            let mask = invert == 0 ? lum : (try! EditMask(width: lum.width, height: lum.height, keep: lum.keep.map { !$0 }))
            guard mask.regenerated > 0 else {
                throw APIError.unprocessable("mask", invert == 0 ? "the mask has no white pixel: nothing to inpaint (white = regenerate)"
                                                                : "with inpainting_mask_invert 1 the mask has no black pixel: nothing to inpaint")
            }
            let prompt = try prompt(fields)
            task = .edit(image: image, mask: mask, prompt: prompt, maskSHA256: SHA256.hash(Array(ms.utf8)))
        } else {
            task = .vary(image: image)
        }
        return try common(fields, raw: raw, task: task)
    }

    static func common(_ fields: [String: JSON], raw: JSON, task: ImageJobRequest.Task) throws(APIError) -> Request {
        var job = ImageJobRequest(task: task)
        if let s = try int(fields, "seed"), s != -1 {
            guard s >= 0 else { throw APIError.unprocessable("seed", "seed must be -1 (random) or a non-negative integer") }
            job.seed = UInt64(s)
        }
        if let st = try int(fields, "steps") {
            guard (2...1000).contains(st) else { throw APIError.unprocessable("steps", "steps must be in 2...1000 (got \(st))") }
            job.decoderSteps = st
        }
        if let g = try number(fields, "cfg_scale") {
            guard g.isFinite, (0...100).contains(g) else { throw APIError.unprocessable("cfg_scale", "cfg_scale must be in 0...100") }
            job.decoderGuidance = Float(g)
        }
        let w = try int(fields, "width") ?? 512, h = try int(fields, "height") ?? 512
        for (name, v) in [("width", w), ("height", h)] where !(8...maxSide).contains(v) {
            throw APIError.unprocessable(name, "\(name) must be in 8...\(maxSide) (got \(v))")
        }
        (job.width, job.height) = (w, h)
        let batch = try int(fields, "batch_size") ?? 1, iters = try int(fields, "n_iter") ?? 1
        guard batch >= 1, iters >= 1, batch * iters <= maxCount else {
            throw APIError.unprocessable("batch_size", "batch_size × n_iter must be in 1...\(maxCount) (got \(batch) × \(iters))")
        }
        job.count = batch * iters
        var sampler = try string(fields, "sampler_name")
        if sampler == nil { sampler = try string(fields, "sampler_index") }
        let samplerName = sampler ?? "UnCLIP"
        job.sampler = samplerName.uppercased() == "DDIM" ? .ddim(.init()) : nil
        let ignored = ignoredFields.filter { fields[$0] != nil && fields[$0] != .null }
        return Request(job: job, parameters: raw, samplerName: job.sampler == nil ? "UnCLIP" : "DDIM", ignored: ignored)
    }

    /// `{"images": [base64 PNG …], "parameters": <the request>, "info": "<JSON text>"}` — info as A1111 writes it, a
    /// JSON string holding prompt, seeds, size, sampler, steps, cfg_scale and one infotext per image.
    public static func response(images: [String], request: Request, seeds: [UInt64], infotexts: [String], width: Int, height: Int,
                                steps: Int, cfgScale: Float, note: String?) -> JSON {
        let prompt = request.job.task.prompt ?? ""
        let seedsJSON = JSON.array(seeds.map { .number(double: Double($0), int: Int64(clamping: $0)) })
        var info: [(String, JSON)] = [
            ("prompt", .string(prompt)), ("all_prompts", .array(seeds.map { _ in .string(prompt) })),
            ("negative_prompt", .string("")), ("seed", seeds.first.map { .number(double: Double($0), int: Int64(clamping: $0)) } ?? .null),
            ("all_seeds", seedsJSON), ("subseed", .number(double: -1, int: -1)), ("width", .number(double: Double(width), int: Int64(width))),
            ("height", .number(double: Double(height), int: Int64(height))), ("sampler_name", .string(request.samplerName)),
            ("cfg_scale", .number(double: Double(cfgScale), int: nil)), ("steps", .number(double: Double(steps), int: Int64(steps))),
            ("batch_size", .number(double: Double(seeds.count), int: Int64(seeds.count))),
            ("infotexts", .array(infotexts.map { .string($0) })), ("ignored_fields", .array(request.ignored.map { .string($0) })),
        ]
        if let note { info.append(("note", .string(note))) }
        return .object([("images", .array(images.map { .string($0) })), ("parameters", request.parameters), ("info", .string(JSON.object(info).text))])
    }

    // MARK: fields

    static func object(_ body: [UInt8]) throws(APIError) -> ([String: JSON], JSON) {
        let v: JSON
        do { v = try JSON.parse(body) } catch { throw APIError.unprocessable("body", "the body is not valid JSON (\(error))") }
        guard let o = v.object else { throw APIError.unprocessable("body", "the body must be a JSON object") }
        var d: [String: JSON] = [:]
        for (k, x) in o where d[k] == nil { d[k] = x }
        return (d, v)
    }

    static func prompt(_ fields: [String: JSON]) throws(APIError) -> String {
        let p = try string(fields, "prompt") ?? ""
        guard !p.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw APIError.unprocessable("prompt", "prompt is empty; unCLIP's prior needs a description of the image")
        }
        guard !p.unicodeScalars.contains("\u{0}") else { throw APIError.unprocessable("prompt", "prompt contains a NUL character") }
        guard p.count <= 4000 else { throw APIError.unprocessable("prompt", "prompt is longer than 4000 characters") }
        return p
    }

    static func string(_ f: [String: JSON], _ k: String) throws(APIError) -> String? {
        guard let v = f[k], v != .null else { return nil }
        guard let s = v.string else { throw APIError.unprocessable(k, "\(k) must be a string") }
        return s
    }

    static func int(_ f: [String: JSON], _ k: String) throws(APIError) -> Int? {
        guard let v = f[k], v != .null else { return nil }
        if case .bool(let b) = v { return b ? 1 : 0 }  // A1111's pydantic accepts booleans for int flags
        guard let i = v.int, let n = Int(exactly: i) else {
            if let d = v.double, d.rounded() == d, abs(d) < 1e15 { return Int(d) }
            throw APIError.unprocessable(k, "\(k) must be an integer")
        }
        return n
    }

    static func number(_ f: [String: JSON], _ k: String) throws(APIError) -> Double? {
        guard let v = f[k], v != .null else { return nil }
        guard let d = v.double else { throw APIError.unprocessable(k, "\(k) must be a number") }
        return d
    }

    /// A base64 PNG, with or without a `data:image/png;base64,` prefix.
    public static func decodeImage(_ s: String, field: String) throws(APIError) -> PNGImage {
        var b = Substring(s)
        if b.hasPrefix("data:"), let comma = b.firstIndex(of: ",") { b = b[b.index(after: comma)...] }
        guard let data = Data(base64Encoded: String(b), options: .ignoreUnknownCharacters) else {
            throw APIError.unprocessable(field, "\(field) is not valid base64")
        }
        do {
            return try PNGImage.decode([UInt8](data), maxPixels: ImageJobRequest.maxImagePixels, name: field)
        } catch {
            throw APIError.unprocessable(field, "\(field) must be a PNG image (\(error))")
        }
    }
}
