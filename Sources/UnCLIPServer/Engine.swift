import Foundation
import UnCLIP
import UnCLIPAPI

/// One worker's pipeline over the shared model file: turns a job's request into images, the way the CLI does
/// (the model's defaults, then the request's settings; seeds s, s+1, … as `unclip generate --seed s -n N`), resizes
/// them to the size asked, and writes each as PNG with the same metadata as the CLI's.
final class Engine: @unchecked Sendable {  // used by its own worker thread only
    let pipeline: UnCLIPPipeline
    let file: ModelFile
    let modelPath: String
    let defaults: GenerationOptions
    let modelName: String
    let modelSHA256: String
    /// Seconds between two decoder previews of a job.
    static let previewInterval = 0.5

    init(file: ModelFile, path: String, name: String, sha256: String) throws {
        self.file = file
        modelPath = path
        pipeline = try UnCLIPPipeline(model: file)
        defaults = try GenerationOptions(defaultsOf: file)
        modelName = name
        modelSHA256 = sha256
    }

    /// The options a request runs with (checked: a bad combination is a 400 before queueing).
    func options(for r: ImageJobRequest) throws(APIError) -> GenerationOptions {
        var o = defaults
        o.count = r.count
        o.priorSteps = r.priorSteps ?? o.priorSteps
        o.decoderSteps = r.decoderSteps ?? o.decoderSteps
        o.superResSteps = r.superResSteps ?? o.superResSteps
        o.priorGuidance = r.priorGuidance ?? o.priorGuidance
        o.decoderGuidance = r.decoderGuidance ?? o.decoderGuidance
        o.sampler = r.sampler ?? o.sampler
        do { try o.validate() } catch { throw APIError.invalid(nil, "\(error)") }
        return o
    }

    func run(_ job: Job) throws -> JobResult {
        let r = job.request
        let o = try options(for: r)
        let seed = r.seed ?? UInt64.random(in: 0..<(1 << 32))
        let noises = try NoiseSet.seeded(seed, count: r.count)
        let stages: [String]
        if case .vary = r.task { stages = ["decoder", "super_res"] } else { stages = ["prior", "decoder", "super_res"] }
        let start = Date()
        var lastPreview = Date.distantPast
        let progress: ProgressHandler = { stage, step, total in
            var p = JobProgress()
            p.stage = stage
            (p.step, p.total) = (step, total)
            let k = stages.firstIndex(of: stage) ?? 0
            p.fraction = min(1, (Double(k) + Double(step - 1) / Double(max(total, 1))) / Double(stages.count))
            p.elapsed = Date().timeIntervalSince(start)
            if p.fraction > 0.02 { p.eta = p.elapsed / p.fraction * (1 - p.fraction) }
            job.update(p)
            return !job.isCancelled
        }
        pipeline.decoderPreview = { step, total, sample, side in
            let now = Date()
            guard now.timeIntervalSince(lastPreview) >= Self.previewInterval || step == total else { return }
            lastPreview = now
            let px = sample.map { UInt8((min(max($0 * 0.5 + 0.5, 0), 1) * 255).rounded()) }
            if let img = try? PNGImage(width: side, height: side, channels: 3, pixels: Array(px)), let png = try? img.encoded() {
                job.setPreview(png, step: step, total: total)
            }
        }
        defer { pipeline.decoderPreview = nil }
        var meta = ImageMetadata()
        let images: [PNGImage]
        do {
            switch r.task {
            case .generate(let prompt):
                images = try pipeline.generate(prompt: prompt, options: o, noises: noises, progress: progress).images
                meta.kind = .textToImage
                meta.prompt = prompt
            case .vary(let image):
                images = try pipeline.vary(images: [PNGImage](repeating: image, count: r.count), options: o, noises: noises, progress: progress).images
                meta.kind = .variation
                meta.source = "upload"
            case .edit(let image, let mask, let prompt, let digest):
                images = try pipeline.edit(image: image, mask: mask, prompt: prompt, options: o, noises: noises, progress: progress).images
                meta.kind = .edit
                meta.prompt = prompt
                meta.source = "upload"
                meta.extra = [("mask sha256", digest), ("regenerated pixels", "\(mask.regenerated)")]
            }
        } catch is CancelledError {
            throw APIError.cancelled()
        }
        meta.record(o, prior: meta.kind != .variation)
        meta.modelName = modelName
        meta.modelSHA256 = modelSHA256
        let native = (images.first?.width ?? 0, images.first?.height ?? 0)
        let size = (r.width ?? native.0, r.height ?? native.1)
        if size != native { meta.extra.append(("resized", "\(native.0)x\(native.1) to \(size.0)x\(size.1) (antialiased bicubic; the model's output is \(native.0)x\(native.1))")) }
        var pngs: [[UInt8]] = [], infotexts: [String] = []
        var seeds: [UInt64] = []
        for (k, image) in images.enumerated() {
            let out = try Self.resize(image, to: size)
            var m = meta
            m.seed = seed &+ UInt64(k)
            (m.width, m.height) = (out.width, out.height)
            pngs.append(try out.encoded(text: m.textChunks))
            infotexts.append((m.prompt.isEmpty ? "" : m.prompt + "\n") + m.a1111Parameters)
            seeds.append(seed &+ UInt64(k))
        }
        return JobResult(pngs: pngs, seeds: seeds, nativeWidth: native.0, nativeHeight: native.1, width: size.0, height: size.1,
                         infotexts: infotexts, options: o)
    }

    /// Antialiased bicubic (PIL's, as the pipeline's own resizing) to `size`; the image itself when it already is.
    static func resize(_ image: PNGImage, to size: (Int, Int)) throws -> PNGImage {
        guard size.0 != image.width || size.1 != image.height else { return image }
        let rgb = (0..<(image.width * image.height * 3)).map { i in Float(image.pixels[(i / 3) * image.channels + i % 3]) }
        let t = try Tensor(shape: [1, image.height, image.width, 3], values: rgb)
        let out = try Ops.resizeBicubicAntialias(t, height: size.1, width: size.0).toArray()
        return try PNGImage(width: size.0, height: size.1, channels: 3, pixels: out.map { UInt8(min(max($0, 0), 255).rounded(.toNearestOrEven)) })
    }
}
