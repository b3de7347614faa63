import Foundation
import XCTest
@testable import UnCLIP
@testable import UnCLIPAPI
@testable import UnCLIPServer

/// The server's request parsing (multipart, OpenAI's and A1111's fields), its image store and its job queue, without
/// a socket. The HTTP side, with the official clients, is scripts/check-server.sh (run by .ci/run).
final class ServerAPITests: XCTestCase {
    func png(_ w: Int, _ h: Int, channels: Int = 3, transparentRows: Range<Int> = 0..<0) throws -> [UInt8] {
        var px = [UInt8](repeating: 0, count: w * h * channels)
        for y in 0..<h { for x in 0..<w { for c in 0..<channels {
            px[(y * w + x) * channels + c] = c == 3 ? (transparentRows.contains(y) ? 0 : 255) : UInt8((x * 31 + y * 17 + c * 50) % 256)
        } } }
        return try PNGImage(width: w, height: h, channels: channels, pixels: px).encoded()
    }

    func testPNGMemoryRoundTripAndBounds() throws {
        let img = try PNGImage(width: 5, height: 3, channels: 4, pixels: (0..<60).map { UInt8($0 * 4) })
        let bytes = try img.encoded(text: [("prompt", "é")])
        XCTAssertEqual(try PNGImage.decode(bytes), img)
        XCTAssertThrowsError(try PNGImage.decode(bytes, maxPixels: 14)) { XCTAssertTrue("\($0)".contains("larger than the limit"), "\($0)") }
        XCTAssertThrowsError(try PNGImage.decode(Array(bytes.prefix(40)))) { XCTAssertTrue("\($0)".contains("truncated"), "\($0)") }
        XCTAssertThrowsError(try PNGImage.decode([1, 2, 3]))
    }

    func testMultipartParsesWhatClientsSend() throws {
        let b = "----abc123"
        let file = try png(4, 4)
        let body = Multipart.encode([MultipartPart(name: "prompt", text: "a; \"quoted\" prompt"), MultipartPart(name: "image", filename: "x.png", bytes: file)], boundary: b)
        XCTAssertEqual(try Multipart.boundary(contentType: "multipart/form-data; boundary=\"\(b)\""), b)
        XCTAssertEqual(try Multipart.boundary(contentType: "Multipart/Form-Data;boundary=\(b)"), b)
        let parts = try Multipart.parse(Array("preamble\r\n".utf8) + body, boundary: b)
        XCTAssertEqual(parts.map(\.name), ["prompt", "image"])
        XCTAssertEqual(parts[0].text, "a; \"quoted\" prompt")
        XCTAssertEqual(parts[1].filename, "x.png")
        XCTAssertEqual(parts[1].contentType, "image/png")
        XCTAssertEqual(parts[1].body, file)
        // a content that holds the boundary text without CRLF before it is content
        let tricky = Multipart.encode([MultipartPart(name: "a", text: "x--\(b)y")], boundary: b)
        XCTAssertEqual(try Multipart.parse(tricky, boundary: b)[0].text, "x--\(b)y")
        // bad bodies: typed errors
        for (bad, why) in [(Array(body.dropLast(12)), "ends inside"), (Array("no boundary here".utf8), "does not contain"),
                           (Array("--\(b)\r\nContent-Disposition: form-data\r\n\r\nx\r\n--\(b)--".utf8), "no Content-Disposition name"),
                           (Array("--\(b)\r\nContent-Disposition: form-data; name=\"a\"\r\n".utf8), "not terminated")] {
            XCTAssertThrowsError(try Multipart.parse(bad, boundary: b)) { XCTAssertTrue("\($0)".contains(why), "\($0)") }
        }
        let many = Multipart.encode((0...Multipart.maxParts).map { MultipartPart(name: "f\($0)", text: "v") }, boundary: b)
        XCTAssertThrowsError(try Multipart.parse(many, boundary: b)) { XCTAssertTrue("\($0)".contains("more than"), "\($0)") }
        for ct in [nil, "application/json", "multipart/form-data", "multipart/form-data; boundary=" + String(repeating: "x", count: 71)] {
            XCTAssertThrowsError(try Multipart.boundary(contentType: ct))
        }
    }

    func assertParam(_ expr: @autoclosure () throws -> Any, _ param: String?, status: Int = 400, _ text: String = "", line: UInt = #line) {
        XCTAssertThrowsError(try expr(), line: line) { e in
            guard let a = e as? APIError else { return XCTFail("\(e)", line: line) }
            XCTAssertEqual(a.status, status, "\(a)", line: line)
            XCTAssertEqual(a.param, param, "\(a)", line: line)
            XCTAssertTrue(text.isEmpty || a.message.contains(text), "\(a)", line: line)
        }
    }

    func testOpenAIGenerationFields() throws {
        let r = try OpenAIImages.generation(Array(#"{"prompt": "a red circle", "n": 3, "size": "512x512", "response_format": "b64_json", "model": "dall-e-2", "user": "u"}"#.utf8), modelName: "m")
        XCTAssertEqual(r.job.count, 3)
        XCTAssertEqual(r.job.width, 512)
        XCTAssertEqual(r.responseFormat, .b64_json)
        let d = try OpenAIImages.generation(Array(#"{"prompt": "a"}"#.utf8), modelName: "m")
        XCTAssertEqual(d.responseFormat, .url)
        XCTAssertEqual(d.job.width, 1024)  // dall-e-2's default size
        XCTAssertNoThrow(try OpenAIImages.generation(Array(#"{"prompt": "a", "model": "m"}"#.utf8), modelName: "m"))
        let g = { (s: String) throws -> Any in try OpenAIImages.generation(Array(s.utf8), modelName: "m") }
        assertParam(try g(#"{"n": 1}"#), "prompt", "required")
        assertParam(try g(#"{"prompt": "  "}"#), "prompt", "empty")
        assertParam(try g(#"{"prompt": "\#(String(repeating: "x", count: 1001))"}"#), "prompt", "1000")
        XCTAssertNoThrow(try g(#"{"prompt": "\#(String(repeating: "é", count: 1000))"}"#))
        assertParam(try g(#"{"prompt": "a", "n": 0}"#), "n")
        assertParam(try g(#"{"prompt": "a", "n": 11}"#), "n")
        assertParam(try g(#"{"prompt": "a", "n": 1.5}"#), "n", "integer")
        assertParam(try g(#"{"prompt": "a", "n": "2"}"#), "n", "integer")
        assertParam(try g(#"{"prompt": "a", "size": "64x64"}"#), "size")
        assertParam(try g(#"{"prompt": "a", "response_format": "png"}"#), "response_format")
        assertParam(try g(#"{"prompt": 3}"#), "prompt", "expected a string")
        assertParam(try g(#"{"prompt": "a", "style": "vivid"}"#), "style")
        assertParam(try g(#"{"prompt": "a", "quality": "hd"}"#), "quality")
        assertParam(try g(#"{"prompt": "a", "colour": "red"}"#), "colour", "Unrecognized")
        assertParam(try g(#"{"prompt": "a", "model": "dall-e-3"}"#), "model", status: 404)
        assertParam(try g(#"[1]"#), nil, "object")
        assertParam(try g(#"{"prompt": "a""#), nil, "JSON")
    }

    func testOpenAIEditAndVariationForms() throws {
        let rgb = try png(8, 8), rgba = try png(8, 8, channels: 4, transparentRows: 4..<8)
        let opaque = try png(8, 8, channels: 4), wide = try png(8, 4)
        let e = try OpenAIImages.edit([MultipartPart(name: "image", filename: "a.png", bytes: rgb), MultipartPart(name: "mask", filename: "m.png", bytes: rgba),
                                       MultipartPart(name: "prompt", text: "a red circle"), MultipartPart(name: "n", text: "2"), MultipartPart(name: "size", text: "256x256")], modelName: "m")
        guard case .edit(_, let mask, let prompt, _) = e.job.task else { return XCTFail() }
        XCTAssertEqual(mask.regenerated, 32)
        XCTAssertEqual(prompt, "a red circle")
        XCTAssertEqual(e.job.count, 2)
        // the SDK's list form (image[]) and the image's own alpha
        let own = try OpenAIImages.edit([MultipartPart(name: "image[]", filename: "a.png", bytes: rgba), MultipartPart(name: "prompt", text: "a")], modelName: "m")
        guard case .edit(_, let m2, _, _) = own.job.task else { return XCTFail() }
        XCTAssertEqual(m2.regenerated, 32)
        let edit = { (p: [MultipartPart]) throws -> Any in try OpenAIImages.edit(p, modelName: "m") }
        let prompt1 = MultipartPart(name: "prompt", text: "a")
        assertParam(try edit([MultipartPart(name: "image", filename: "a.png", bytes: rgb), prompt1]), "image", "no transparency")
        assertParam(try edit([MultipartPart(name: "image", filename: "a.png", bytes: opaque), prompt1]), "image", "nothing to edit")
        assertParam(try edit([MultipartPart(name: "image", filename: "a.png", bytes: rgb), MultipartPart(name: "mask", filename: "m.png", bytes: rgb), prompt1]), "mask", "alpha")
        assertParam(try edit([MultipartPart(name: "image", filename: "a.png", bytes: rgb), MultipartPart(name: "mask", filename: "m.png", bytes: wide), prompt1]), "mask", "same size")
        assertParam(try edit([MultipartPart(name: "image", filename: "a.png", bytes: wide), prompt1]), "image", "square")
        assertParam(try edit([MultipartPart(name: "image", filename: "a.png", bytes: [1, 2, 3]), prompt1]), "image", "valid PNG")
        assertParam(try edit([MultipartPart(name: "image", filename: "a.png", bytes: rgba)]), "prompt", "required")
        assertParam(try edit([MultipartPart(name: "image", filename: "a.png", bytes: rgba), MultipartPart(name: "image[]", filename: "b.png", bytes: rgba), prompt1]), "image", "one image")
        assertParam(try edit([prompt1]), "image", "required")
        assertParam(try edit([MultipartPart(name: "image", filename: "a.png", bytes: [UInt8](repeating: 0, count: 4 << 20)), prompt1]), "image", "4 MB")
        let v = try OpenAIImages.variation([MultipartPart(name: "image", filename: "a.png", bytes: rgb), MultipartPart(name: "n", text: "4")], modelName: "m")
        XCTAssertEqual(v.job.count, 4)
        assertParam(try OpenAIImages.variation([MultipartPart(name: "image", filename: "a.png", bytes: rgb), MultipartPart(name: "n", text: "two")], modelName: "m"), "n", "integer")
        assertParam(try OpenAIImages.variation([MultipartPart(name: "image", filename: "a.png", bytes: rgb), prompt1], modelName: "m"), "prompt", "Unrecognized")
    }

    func testA1111Fields() throws {
        let t = try A1111.txt2img(Array(#"{"prompt": "a red circle", "seed": 7, "steps": 12, "cfg_scale": 5.5, "width": 256, "height": 128, "batch_size": 2, "n_iter": 3, "sampler_name": "DDIM", "negative_prompt": "blurry", "restore_faces": false}"#.utf8))
        XCTAssertEqual(t.job.seed, 7)
        XCTAssertEqual(t.job.decoderSteps, 12)
        XCTAssertEqual(t.job.decoderGuidance, 5.5)
        XCTAssertEqual(t.job.count, 6)
        XCTAssertEqual(t.job.width, 256)
        XCTAssertEqual(t.job.height, 128)
        XCTAssertEqual(t.samplerName, "DDIM")
        XCTAssertEqual(t.ignored, ["negative_prompt", "restore_faces"])
        XCTAssertNil(try A1111.txt2img(Array(#"{"prompt": "a", "seed": -1, "sampler_name": "Euler a"}"#.utf8)).job.seed)
        let t2 = { (s: String) throws -> Any in try A1111.txt2img(Array(s.utf8)) }
        assertParam(try t2(#"{"prompt": ""}"#), "prompt", status: 422)
        assertParam(try t2(#"{"prompt": "a", "steps": 1}"#), "steps", status: 422)
        assertParam(try t2(#"{"prompt": "a", "steps": "x"}"#), "steps", status: 422)
        assertParam(try t2(#"{"prompt": "a", "width": 5000}"#), "width", status: 422)
        assertParam(try t2(#"{"prompt": "a", "batch_size": 10, "n_iter": 7}"#), "batch_size", status: 422)
        assertParam(try t2(#"{"prompt": "a", "seed": -5}"#), "seed", status: 422)
        let img = Data(try png(8, 8)).base64EncodedString()
        var mask = [UInt8](repeating: 0, count: 8 * 8 * 3)
        for i in 0..<(4 * 8 * 3) { mask[i] = 255 }      // top half white: regenerate
        let m = Data(try PNGImage(width: 8, height: 8, channels: 3, pixels: mask).encoded()).base64EncodedString()
        let i2 = try A1111.img2img(Array(#"{"prompt": "a", "init_images": ["data:image/png;base64,\#(img)"], "mask": "\#(m)"}"#.utf8))
        guard case .edit(_, let em, _, _) = i2.job.task else { return XCTFail() }
        XCTAssertEqual(em.keep.prefix(32).filter { $0 }.count, 0)
        XCTAssertEqual(em.keep.suffix(32).filter { $0 }.count, 32)
        let inv = try A1111.img2img(Array(#"{"prompt": "a", "init_images": ["\#(img)"], "mask": "\#(m)", "inpainting_mask_invert": 1}"#.utf8))
        guard case .edit(_, let im, _, _) = inv.job.task else { return XCTFail() }
        XCTAssertEqual(im.keep, em.keep.map { !$0 })
        guard case .vary = try A1111.img2img(Array(#"{"init_images": ["\#(img)"]}"#.utf8)).job.task else { return XCTFail("no mask: a variation") }
        assertParam(try A1111.img2img(Array(#"{"prompt": "a"}"#.utf8)), "init_images", status: 422)
        assertParam(try A1111.img2img(Array(#"{"init_images": ["!!!"]}"#.utf8)), "init_images", status: 422)
        let black = Data(try PNGImage(width: 8, height: 8, channels: 3, pixels: [UInt8](repeating: 0, count: 192)).encoded()).base64EncodedString()
        assertParam(try A1111.img2img(Array(#"{"prompt": "a", "init_images": ["\#(img)"], "mask": "\#(black)"}"#.utf8)), "mask", status: 422, "no white")
    }

    func testErrorObjectsHaveTheSDKsShape() throws {
        let o = APIError.invalid("n", "bad n").openAIBody
        XCTAssertEqual(o.text, #"{"error":{"message":"bad n","type":"invalid_request_error","param":"n","code":null}}"#)
        let a = APIError.unprocessable("steps", "bad").a1111Body
        XCTAssertEqual(a["detail"]?.array?.first?["loc"], .array([.string("body"), .string("steps")]))
        XCTAssertEqual(APIError.queueFull(retryAfter: 3).status, 429)
    }

    func testImageStoreExpiresEvictsAndRefusesPaths() throws {
        let dir = (NSTemporaryDirectory() as NSString).appendingPathComponent("store-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try AtomicFile.makeDirectory(dir)
        let stale = (dir as NSString).appendingPathComponent(String(repeating: "a", count: 32) + ".png"), other = (dir as NSString).appendingPathComponent("keep.txt")
        FileManager.default.createFile(atPath: stale, contents: Data([1]))
        FileManager.default.createFile(atPath: other, contents: Data([1]))
        let store = try ImageStore(directory: dir, ttl: 3600, maxFiles: 2)
        XCTAssertFalse(FileManager.default.fileExists(atPath: stale), "an earlier run's image is removed")
        XCTAssertTrue(FileManager.default.fileExists(atPath: other), "files not the store's own stay")
        let ids = try (0..<3).map { try store.put([UInt8($0)]) }
        XCTAssertTrue(ids.allSatisfy(ImageStore.isID))
        XCTAssertNil(store.get(ids[0]), "evicted, oldest first")
        XCTAssertEqual(store.get(ids[2]), [2])
        XCTAssertEqual(store.count, 2)
        for bad in ["../keep.txt", "keep", ids[2].uppercased(), ids[2] + "/", ""] { XCTAssertNil(store.get(bad), bad) }
        store.sweep(now: Date().addingTimeInterval(3601))
        XCTAssertNil(store.get(ids[2]), "expired after the ttl")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["keep.txt"])
    }

    /// A flag the fake runner polls.
    final class Gate: @unchecked Sendable {
        let lock = NSLock()
        var isOpen = false
        func open() { lock.lock(); isOpen = true; lock.unlock() }
        var opened: Bool { lock.lock(); defer { lock.unlock() }; return isOpen }
    }

    static func dummyResult() -> JobResult {
        JobResult(pngs: [[1]], seeds: [1], nativeWidth: 1, nativeHeight: 1, width: 1, height: 1, infotexts: [""], options: GenerationOptions())
    }

    func testJobQueueBoundsCancelsAndShutsDown() async throws {
        let gate = Gate()
        let queue = JobQueue(capacity: 1, workers: 1) { job, _ in
            while !gate.opened && !job.isCancelled { usleep(1000) }
            if job.isCancelled { throw CancelledError() }
            return ServerAPITests.dummyResult()
        }
        queue.start()
        let req = ImageJobRequest(task: .generate(prompt: "a"))
        let a = Job(id: "job-a-0001", request: req), b = Job(id: "job-b-0001", request: req), c = Job(id: "job-c-0001", request: req)
        try queue.submit(a)
        while a.phase != .running { try await Task.sleep(nanoseconds: 1_000_000) }
        try queue.submit(b)
        XCTAssertEqual(queue.position(of: b), 1)
        XCTAssertThrowsError(try queue.submit(c)) { XCTAssertEqual(($0 as? APIError)?.status, 429) }
        XCTAssertThrowsError(try queue.submit(Job(id: "job-a-0001", request: req))) { XCTAssertEqual(($0 as? APIError)?.status, 400) }
        // a queued job cancelled never runs
        queue.cancel(b)
        XCTAssertEqual(b.phase, .cancelled)
        // a running job cancelled stops
        queue.cancel(a)
        do { _ = try await a.result(); XCTFail("cancelled") } catch { XCTAssertEqual((error as? APIError)?.code, "cancelled") }
        // shutdown: the queued job is answered 503, the running one finishes
        let d = Job(id: "job-d-0001", request: req), e = Job(id: "job-e-0001", request: req)
        try queue.submit(d)
        while d.phase != .running { try await Task.sleep(nanoseconds: 1_000_000) }
        try queue.submit(e)
        let events = d.events()
        let stop = Task { await queue.shutdown() }
        while e.phase == .queued { try await Task.sleep(nanoseconds: 1_000_000) }
        XCTAssertEqual(e.phase, .failed)
        do { _ = try await e.result(); XCTFail("503") } catch { XCTAssertEqual((error as? APIError)?.status, 503) }
        gate.open()
        let r = try await d.result()
        XCTAssertEqual(r.seeds, [1])
        await stop.value
        var names: [String] = []
        for await ev in events { names.append(ev.name) }
        XCTAssertEqual(names.last, "done")
        XCTAssertThrowsError(try queue.submit(Job(id: "job-f-0001", request: req))) { XCTAssertEqual(($0 as? APIError)?.status, 503) }
    }

    func testAPIKeysAcceptBearerAndBasic() {
        let keys = APIKeys(["k1", "secret-2"])
        XCTAssertTrue(keys.accepts("secret-2"))
        XCTAssertFalse(keys.accepts("secret-"))
        XCTAssertFalse(keys.accepts(""))
        XCTAssertEqual(APIKeys.presented("Bearer abc"), "abc")
        XCTAssertEqual(APIKeys.presented("Basic " + Data("user:pw:x".utf8).base64EncodedString()), "pw:x")
        XCTAssertNil(APIKeys.presented("Token abc"))
        XCTAssertNil(APIKeys.presented(nil))
    }
}
