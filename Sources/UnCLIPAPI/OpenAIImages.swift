import Foundation
import UnCLIP

/// OpenAI's Images API as dall-e-2 served it (POST /v1/images/generations, /edits, /variations): the request fields,
/// their checks and their error messages (each names its `param`), and the response body.
public enum OpenAIImages {
    public enum ResponseFormat: String, Sendable { case url, b64_json }

    /// A parsed request: what to make, and how to answer.
    public struct Request: Sendable {
        public var job: ImageJobRequest
        public var responseFormat: ResponseFormat
    }

    /// dall-e-2's limits (OpenAI's API reference): prompt ≤ 1000 characters, n 1…10, three square sizes, uploads
    /// square PNGs under 4 MB.
    public static let maxPromptCharacters = 1000
    public static let maxCount = 10
    public static let sizes = ["256x256": 256, "512x512": 512, "1024x1024": 1024]
    public static let maxUploadBytes = 4 << 20
    /// The model names a request may give: dall-e-2 (what existing clients send) or the served model's own.
    public static let compatibleModel = "dall-e-2"

    // MARK: generations (JSON)

    public static func generation(_ body: [UInt8], modelName: String) throws(APIError) -> Request {
        let fields = try jsonObject(body)
        try rejectUnknown(fields, known: ["prompt", "model", "n", "size", "response_format", "user", "quality", "style"])
        let prompt = try checkPrompt(try string(fields, "prompt"))
        if let q = try string(fields, "quality"), q != "standard" {
            throw APIError.invalid("quality", "quality '\(q.prefix(40))' is not supported by dall-e-2; use 'standard' or leave it out")
        }
        if try string(fields, "style") != nil { throw APIError.invalid("style", "style is only supported by dall-e-3") }
        try checkModel(try string(fields, "model"), modelName)
        _ = try string(fields, "user")
        var job = ImageJobRequest(task: .generate(prompt: prompt))
        job.count = try count(fields["n"].map(intValue(ofJSON:)) ?? nil, raw: fields["n"])
        (job.width, job.height) = try size(try string(fields, "size"))
        return Request(job: job, responseFormat: try format(try string(fields, "response_format")))
    }

    // MARK: edits and variations (multipart/form-data)

    public static func edit(_ parts: [MultipartPart], modelName: String) throws(APIError) -> Request {
        let form = try Form(parts, known: ["image", "image[]", "mask", "prompt", "n", "size", "response_format", "model", "user"])
        let prompt = try checkPrompt(try form.text("prompt"))
        try checkModel(try form.text("model"), modelName)
        let (image, imageName) = try form.image()
        let mask: EditMask, digest: String
        if let m = try form.file("mask") {
            let mi = try decodePNG(m.body, param: "mask")
            guard mi.width == image.width, mi.height == image.height else {
                throw APIError.invalid("mask", "the mask is \(mi.width)x\(mi.height) but the image is \(image.width)x\(image.height); they must be the same size")
            }
            guard mi.channels == 4 else {
                throw APIError.invalid("mask", "the mask has no alpha channel: its fully transparent pixels (alpha 0) mark what to edit")
            }
            mask = (try? EditMask(image: mi, mode: .alpha)) ?? (try! EditMask(width: 1, height: 1, keep: [true]))
            digest = SHA256.hash(m.body)
        } else {
            guard image.channels == 4 else {
                throw APIError.invalid("image", "\(imageName) has no transparency and no mask was given: send a mask, or an image whose transparent pixels (alpha 0) mark what to edit")
            }
            mask = (try? EditMask(alphaOf: image)) ?? (try! EditMask(width: 1, height: 1, keep: [true]))
            digest = SHA256.hash(mask.keep.map { $0 ? 1 : 0 })
        }
        guard mask.regenerated > 0 else {
            throw APIError.invalid(form.file("mask") == nil ? "image" : "mask", "no pixel is fully transparent (alpha 0), so there is nothing to edit")
        }
        var job = ImageJobRequest(task: .edit(image: image, mask: mask, prompt: prompt, maskSHA256: digest))
        job.count = try count(try form.int("n"), raw: nil)
        (job.width, job.height) = try size(try form.text("size"))
        return Request(job: job, responseFormat: try format(try form.text("response_format")))
    }

    public static func variation(_ parts: [MultipartPart], modelName: String) throws(APIError) -> Request {
        let form = try Form(parts, known: ["image", "n", "size", "response_format", "model", "user"])
        try checkModel(try form.text("model"), modelName)
        let (image, _) = try form.image()
        var job = ImageJobRequest(task: .vary(image: image))
        job.count = try count(try form.int("n"), raw: nil)
        (job.width, job.height) = try size(try form.text("size"))
        return Request(job: job, responseFormat: try format(try form.text("response_format")))
    }

    // MARK: the response

    /// `{"created": <unix seconds>, "data": [{"url": …} | {"b64_json": …}, …]}`.
    public static func response(created: Int, urls: [String]? = nil, base64: [String]? = nil) -> JSON {
        let data: [JSON] = urls.map { $0.map { .object([("url", .string($0))]) } } ?? (base64 ?? []).map { .object([("b64_json", .string($0))]) }
        return .object([("created", .number(double: Double(created), int: Int64(created))), ("data", .array(data))])
    }

    // MARK: field checks

    static func checkPrompt(_ p: String?) throws(APIError) -> String {
        guard let p else { throw APIError.invalid("prompt", "prompt is required", code: "missing_required_parameter") }
        guard !p.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw APIError.invalid("prompt", "prompt must not be empty") }
        guard p.count <= maxPromptCharacters else {
            throw APIError.invalid("prompt", "prompt is \(p.count) characters; the maximum length is \(maxPromptCharacters) characters")
        }
        guard !p.unicodeScalars.contains("\u{0}") else { throw APIError.invalid("prompt", "prompt contains a NUL character") }
        return p
    }

    static func checkModel(_ m: String?, _ served: String) throws(APIError) {
        guard let m, m != compatibleModel, m != served else { return }
        throw APIError(status: 404, message: "the model '\(m.prefix(80))' does not exist here; this server serves '\(served)' (also answering to '\(compatibleModel)')",
                       type: "invalid_request_error", param: "model", code: "model_not_found")
    }

    static func count(_ n: Int?, raw: JSON?) throws(APIError) -> Int {
        guard let n else { return 1 }
        guard (1...maxCount).contains(n) else { throw APIError.invalid("n", "n is \(n); it must be between 1 and \(maxCount)") }
        return n
    }

    static func size(_ s: String?) throws(APIError) -> (Int?, Int?) {
        guard let s else { return (1024, 1024) }  // dall-e-2's default
        guard let v = sizes[s] else { throw APIError.invalid("size", "size '\(s.prefix(40))' is not one of 256x256, 512x512, 1024x1024") }
        return (v, v)
    }

    static func format(_ s: String?) throws(APIError) -> ResponseFormat {
        guard let s else { return .url }
        guard let f = ResponseFormat(rawValue: s) else { throw APIError.invalid("response_format", "response_format '\(s.prefix(40))' must be 'url' or 'b64_json'") }
        return f
    }

    static func decodePNG(_ bytes: [UInt8], param: String) throws(APIError) -> PNGImage {
        guard bytes.count < maxUploadBytes else {
            throw APIError.invalid(param, "the \(param) is \(bytes.count) bytes; it must be a PNG of less than 4 MB")
        }
        do {
            return try PNGImage.decode(bytes, maxPixels: ImageJobRequest.maxImagePixels, name: param)
        } catch {
            throw APIError.invalid(param, "the \(param) must be a valid PNG file (\(error))")
        }
    }

    // MARK: JSON fields

    static func jsonObject(_ body: [UInt8]) throws(APIError) -> [String: JSON] {
        let v: JSON
        do { v = try JSON.parse(body) } catch { throw APIError.invalid(nil, "the body is not valid JSON (\(error)); send a JSON object with Content-Type application/json") }
        guard let o = v.object else { throw APIError.invalid(nil, "the body must be a JSON object") }
        var d: [String: JSON] = [:]
        for (k, v) in o where d[k] == nil { d[k] = v }
        return d
    }

    static func rejectUnknown(_ fields: [String: JSON], known: Set<String>) throws(APIError) {
        if let k = fields.keys.sorted().first(where: { !known.contains($0) }) {
            throw APIError.invalid(k, "Unrecognized request argument supplied: \(k.prefix(80))")
        }
    }

    static func string(_ fields: [String: JSON], _ key: String) throws(APIError) -> String? {
        guard let v = fields[key], v != .null else { return nil }
        guard let s = v.string else { throw APIError.invalid(key, "Invalid type for '\(key)': expected a string, but got \(typeName(v)) instead.") }
        return s
    }

    static func intValue(ofJSON v: JSON) throws(APIError) -> Int? {
        if v == .null { return nil }
        guard let i = v.int, let n = Int(exactly: i) else { throw APIError.invalid("n", "Invalid type for 'n': expected an integer, but got \(typeName(v)) instead.") }
        return n
    }

    static func typeName(_ v: JSON) -> String {
        switch v {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number(_, let i): return i == nil ? "a decimal" : "an integer"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    /// The fields of a multipart form, each name at most once.
    struct Form {
        var parts: [String: MultipartPart] = [:]

        init(_ list: [MultipartPart], known: Set<String>) throws(APIError) {
            for p in list {
                guard known.contains(p.name) else { throw APIError.invalid(p.name, "Unrecognized request argument supplied: \(p.name.prefix(80))") }
                let key = p.name == "image[]" ? "image" : p.name
                guard parts[key] == nil else {
                    throw APIError.invalid(key, key == "image" ? "dall-e-2 edits take one image; \(list.filter { $0.name.hasPrefix("image") }.count) were sent" : "'\(key)' is given more than once")
                }
                parts[key] = p
            }
        }

        func text(_ key: String) throws(APIError) -> String? {
            guard let p = parts[key] else { return nil }
            guard let t = p.text else { throw APIError.invalid(key, "'\(key)' must be UTF-8 text") }
            return t
        }

        func int(_ key: String) throws(APIError) -> Int? {
            guard let t = try text(key) else { return nil }
            guard let v = Int(t.trimmingCharacters(in: .whitespaces)) else { throw APIError.invalid(key, "Invalid type for '\(key)': expected an integer, but got '\(t.prefix(20))' instead.") }
            return v
        }

        func file(_ key: String) -> MultipartPart? { parts[key] }

        /// The `image` upload: a square PNG under 4 MB.
        func image() throws(APIError) -> (PNGImage, String) {
            guard let p = parts["image"] else { throw APIError.invalid("image", "image is required (a square PNG of less than 4 MB)", code: "missing_required_parameter") }
            let image = try decodePNG(p.body, param: "image")
            guard image.width == image.height else {
                throw APIError.invalid("image", "the image is \(image.width)x\(image.height); it must be square")
            }
            return (image, p.filename.map { "'\($0.prefix(80))'" } ?? "the image")
        }
    }
}
