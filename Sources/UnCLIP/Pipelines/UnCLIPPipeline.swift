import Foundation

/// Generation settings; defaults are diffusers' UnCLIPPipeline's.
public struct GenerationOptions: Sendable {
    public var priorSteps = 25
    public var decoderSteps = 25
    public var superResSteps = 7
    public var priorGuidance: Float = 4.0
    public var decoderGuidance: Float = 8.0  // the signature's default (the docstring says 4.0)
    /// Images per call (diffusers' num_images_per_prompt).
    public var count = 1
    /// The sampler of every stage (each stage keeps its own scheduler config).
    public var sampler: Sampler = .unclip
    /// The most images one model call takes (nil: each stage's default, SamplingSettings.defaultBatchPixels).
    public var maxBatch: Int?
    /// Edits: RePaint resampling of each decoder and super-res step (1 = none).
    public var resamples = 1
    public static let maxResamples = 10
    /// Edits: how many prior samples to draw; the one whose embedding is closest (cosine) to the CLIP image
    /// embedding of the kept content is decoded (1 = the prior's first sample, as text → image).
    public var priorCandidates = 1
    public static let maxPriorCandidates = 16
    /// Edits: smooth the regenerated region's colour into the kept pixels at the border (SeamHarmonizer).
    public var harmonize = true
    public init() {}

    public static let maxCount = 64

    /// Each stage's settings (guidance only when the run uses classifier-free guidance).
    func prior(guided: Bool) -> SamplingSettings { SamplingSettings(steps: priorSteps, sampler: sampler, guidance: guided ? priorGuidance : nil, maxBatch: maxBatch) }
    func decoder(guided: Bool) -> SamplingSettings { SamplingSettings(steps: decoderSteps, sampler: sampler, guidance: guided ? decoderGuidance : nil, maxBatch: maxBatch) }
    var superRes: SamplingSettings { SamplingSettings(steps: superResSteps, sampler: sampler, maxBatch: maxBatch) }

    public func validate() throws {
        for (name, v) in [("prior steps", priorSteps), ("decoder steps", decoderSteps), ("super-res steps", superResSteps)] where !(2...1000).contains(v) {
            throw UnCLIPError.invalidArgument(name: name, detail: "\(v) must be in 2...1000")
        }
        for (name, g) in [("prior guidance", priorGuidance), ("decoder guidance", decoderGuidance)] where !(g.isFinite && g >= 0 && g <= 100) {
            throw UnCLIPError.invalidArgument(name: name, detail: "\(g) must be in 0...100")
        }
        guard (1...Self.maxCount).contains(count) else {
            throw UnCLIPError.invalidArgument(name: "count", detail: "\(count) must be in 1...\(Self.maxCount)")
        }
        if case .ddim(let o) = sampler { try o.validate() }
        guard (1...Self.maxResamples).contains(resamples) else {
            throw UnCLIPError.invalidArgument(name: "resamples", detail: "\(resamples) must be in 1...\(Self.maxResamples)")
        }
        guard (1...Self.maxPriorCandidates).contains(priorCandidates) else {
            throw UnCLIPError.invalidArgument(name: "prior candidates", detail: "\(priorCandidates) must be in 1...\(Self.maxPriorCandidates)")
        }
        if let m = maxBatch, !(1...Self.maxCount).contains(m) {
            throw UnCLIPError.invalidArgument(name: "max batch", detail: "\(m) must be in 1...\(Self.maxCount)")
        }
    }
}

/// Each stage's result, in the reference's layouts (the --dump contract).
public struct StageOutputs: Sendable {
    public var textEmbeds: Tensor?        // [B, E] (the prompt's)
    public var textHidden: Tensor?        // [B, L, D]
    public var imageEmbeds: Tensor?       // [B, E]
    public var decoderImage: Tensor?      // [B, h, w, 3] NHWC, clamped
    public var superResImage: Tensor?     // [B, H, W, 3] NHWC, in [−1, 1]
    public var imageEmbedsName = "prior.image_embeds"
    public init() {}

    /// Writes the stages as F32 safetensors, images NCHW ([B, 3, h, w]).
    public func write(_ path: String) throws {
        var ts: [(name: String, shape: [Int], values: [Float])] = []
        if let t = textEmbeds { ts.append(("text.embeds", t.shape, t.toArray())) }
        if let t = textHidden { ts.append(("text.hidden", t.shape, t.toArray())) }
        if let t = imageEmbeds { ts.append((imageEmbedsName, t.shape, t.toArray())) }
        for (name, t) in [("decoder.image", decoderImage), ("super_res.image", superResImage)] {
            if let t { ts.append((name, [t.shape[0], t.shape[3], t.shape[1], t.shape[2]], NoiseLayout.nhwcToNCHW(t))) }
        }
        try SafeTensorsWriter.write(path, tensors: ts)
    }
}

/// diffusers' UnCLIPPipeline and UnCLIPImageVariationPipeline (pipelines/deprecated/unclip/), as compositions of
/// the stages: each stage maps its weights when it starts and releases them when it ends.
public final class UnCLIPPipeline {
    public let model: ModelFile
    public let tokenizer: CLIPTokenizer
    public var stageModel: StageModel { StageModel(model) }
    /// Called after each decoder step of text → image and variations with the first image's current sample
    /// ([side, side, 3] NHWC, about −1…1) — a live preview for a server; edits run their own per-step hook and give none.
    public var decoderPreview: ((_ step: Int, _ total: Int, _ sample: ArraySlice<Float>, _ side: Int) -> Void)?

    public init(model: ModelFile) throws {
        self.model = model
        tokenizer = try CLIPTokenizer(file: model.gguf)
    }

    /// Text → `options.count` images of `prompt` (uint8 RGB at the super-res resolution). `noise` is one source for
    /// the whole batch (e.g. a noise file recorded with that batch); `noises` gives each image its own.
    public func generate(prompt: String, options: GenerationOptions = GenerationOptions(), noise: NoiseSource,
                         progress: ProgressHandler? = nil) throws -> (images: [PNGImage], stages: StageOutputs) {
        try generate(prompt: prompt, options: options, noises: try NoiseSet([noise], batch: options.count), progress: progress)
    }

    public func generate(prompt: String, options: GenerationOptions = GenerationOptions(), noises: NoiseSet,
                         progress: ProgressHandler? = nil) throws -> (images: [PNGImage], stages: StageOutputs) {
        try checkPrompted(options, noises: noises, for: "text-to-image")
        let (text, imageEmbeds, stages) = try encodeAndPrior(prompt: prompt, options: options, noises: noises, progress: progress)
        return try decodeAndUpscale(imageEmbeds: imageEmbeds, text: text, options: options, noises: noises, progress: progress, stages: stages)
    }

    /// Variations of each image in `images` (one output per input; diffusers' UnCLIPImageVariationPipeline): the
    /// image's CLIP embedding replaces the prior's; the prompt is "".
    public func vary(image: PNGImage, options: GenerationOptions = GenerationOptions(), noise: NoiseSource,
                     progress: ProgressHandler? = nil) throws -> (images: [PNGImage], stages: StageOutputs) {
        try vary(images: [PNGImage](repeating: image, count: options.count), options: options,
                 noises: try NoiseSet([noise], batch: options.count), progress: progress)
    }

    public func vary(images: [PNGImage], options: GenerationOptions = GenerationOptions(), noises: NoiseSet,
                     progress: ProgressHandler? = nil) throws -> (images: [PNGImage], stages: StageOutputs) {
        try options.validate()
        try stageModel.require(Self.decoderComponents + ["image_encoder", "feature_extractor"], for: "image variations")
        try checkSchedules(options, prior: false)
        try require(noises.batch == images.count, "pipeline", "noise for \(noises.batch) images, \(images.count) given")
        var stages = StageOutputs()
        stages.imageEmbedsName = "image_encoder.image_embeds"
        let cfg = options.decoderGuidance > 1
        let text = try TextEncoderStage(stageModel, tokenizer: tokenizer)(prompts: [String](repeating: "", count: images.count), guided: cfg)
        (stages.textEmbeds, stages.textHidden) = try text.conditional()
        let imageEmbeds = try ImageEncoderStage(stageModel)(images)                                          // [B, E]
        stages.imageEmbeds = imageEmbeds
        return try decodeAndUpscale(imageEmbeds: imageEmbeds, text: text, options: options, noises: noises, progress: progress, stages: stages)
    }

    /// The checks of every prompted pipeline (text → image, edits), before any work.
    func checkPrompted(_ options: GenerationOptions, noises: NoiseSet, for what: String) throws {
        try options.validate()
        try stageModel.require(Self.decoderComponents + ["prior", "prior_scheduler"], for: what)
        try checkSchedules(options, prior: true)
        try require(noises.batch == options.count, "pipeline", "noise for \(noises.batch) images, \(options.count) asked")
    }

    /// The text encoder and the prior for `options.count` images of `prompt`; the stage outputs so far.
    /// With `reference` and `options.priorCandidates` K > 1, the prior runs K times (candidate k > 0 on the draws
    /// `noises.fork("prior.candidate.<k>")`) and each image keeps the candidate closest to the reference's embedding.
    func encodeAndPrior(prompt: String, options: GenerationOptions, noises: NoiseSet, reference: PNGImage? = nil,
                        progress: ProgressHandler?) throws -> (TextConditioning, Tensor, StageOutputs) {
        // diffusers: do_classifier_free_guidance = prior_guidance_scale > 1 or decoder_guidance_scale > 1
        let cfg = options.priorGuidance > 1 || options.decoderGuidance > 1
        var stages = StageOutputs()
        let text = try TextEncoderStage(stageModel, tokenizer: tokenizer)(prompts: [String](repeating: prompt, count: options.count), guided: cfg)
        (stages.textEmbeds, stages.textHidden) = try text.conditional()
        var imageEmbeds = try PriorStage(stageModel)(text, settings: options.prior(guided: cfg), noise: noises, progress: progress)
        if let reference, options.priorCandidates > 1 {
            try stageModel.require(["image_encoder", "feature_extractor"], for: "ranking the prior's candidates")
            let target = try ImageEncoderStage(stageModel)([reference]).toArray()                            // [E]
            var best = imageEmbeds.toArray()                                                                 // [B, E]
            let e = target.count, b = options.count
            func cosine(_ v: ArraySlice<Float>) -> Float {
                var dot: Float = 0, vv: Float = 0, tt: Float = 0
                for (x, y) in zip(v, target) { dot += x * y; vv += x * x; tt += y * y }
                return dot / max((vv * tt).squareRoot(), .leastNormalMagnitude)
            }
            var score = (0..<b).map { cosine(best[($0 * e)..<(($0 + 1) * e)]) }
            for k in 1..<options.priorCandidates {
                let c = try PriorStage(stageModel)(text, settings: options.prior(guided: cfg), noise: try noises.fork("prior.candidate.\(k)"),
                                                   progress: progress).toArray()                             // [B, E]
                for j in 0..<b {
                    let sc = cosine(c[(j * e)..<((j + 1) * e)])
                    if sc > score[j] { score[j] = sc; best.replaceSubrange((j * e)..<((j + 1) * e), with: c[(j * e)..<((j + 1) * e)]) }
                }
            }
            imageEmbeds = try Tensor(shape: [b, e], values: best)
        }
        stages.imageEmbeds = imageEmbeds
        return (text, imageEmbeds, stages)
    }

    /// Every stage's schedule is built before any work, so a bad step count or sampler setting fails at once.
    func checkSchedules(_ options: GenerationOptions, prior: Bool) throws {
        var stages = [("decoder_scheduler", options.decoderSteps), ("super_res_scheduler", options.superResSteps)]
        if prior { stages.insert(("prior_scheduler", options.priorSteps), at: 0) }
        for (component, steps) in stages {
            _ = try options.sampler.scheduler(config: try stageModel.config(component)).timesteps(steps)
        }
    }

    static let decoderComponents = ["text_encoder", "text_proj", "decoder", "super_res_first", "super_res_last",
                                    "decoder_scheduler", "super_res_scheduler"]

    /// The stages both pipelines share: text_proj + decoder, then super-resolution and conversion to uint8.
    func decodeAndUpscale(imageEmbeds: Tensor, text: TextConditioning, options: GenerationOptions, noises: NoiseSet,
                          progress: ProgressHandler?, stages: StageOutputs) throws -> (images: [PNGImage], stages: StageOutputs) {
        var stages = stages
        let preview: StepHook? = decoderPreview.map { show in
            { info, sample in
                guard info.images.lowerBound == 0, !info.images.isEmpty, info.resample == 0 else { return }
                let per = sample.count / info.images.count
                let side = Int(Double(per / 3).squareRoot())
                if side * side * 3 == per { show(info.index + 1, info.timesteps.count, sample[0..<per], side) }
            }
        }
        let small = try DecoderStage(stageModel)(imageEmbeds: imageEmbeds, text: text, settings: options.decoder(guided: text.guided),
                                                 noise: noises, progress: progress, onStep: preview)
        stages.decoderImage = small
        let final = try SuperResStage(stageModel)(small, settings: options.superRes, noise: noises, progress: progress)
        stages.superResImage = final
        return (try UnCLIPPipeline.toImages(final), stages)
    }

    /// (x·0.5 + 0.5) clamped to [0, 1], ×255, rounded half to even (numpy) → uint8 RGB; non-finite values are an error.
    public static func toImages(_ x: Tensor) throws -> [PNGImage] {
        let (b, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let v = x.toArray(), per = h * w * c
        try requireFinite(v, stage: "image", "the final image")  // UInt8(NaN) would trap
        return try (0..<b).map { n in
            let px = (0..<per).map { i -> UInt8 in
                let y = min(max(v[n * per + i] * 0.5 + 0.5, 0), 1)
                return UInt8((y * 255).rounded(.toNearestOrEven))
            }
            return try PNGImage(width: w, height: h, channels: c, pixels: px)
        }
    }
}
