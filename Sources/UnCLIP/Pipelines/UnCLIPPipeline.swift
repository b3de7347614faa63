import Foundation

/// Generation settings; defaults are diffusers' UnCLIPPipeline's.
public struct GenerationOptions: Sendable {
    public var priorSteps = 25
    public var decoderSteps = 25
    public var superResSteps = 7
    public var priorGuidance: Float = 4.0
    public var decoderGuidance: Float = 8.0  // the signature's default (the docstring says 4.0)
    public init() {}

    func validate() throws {
        for (name, v) in [("prior steps", priorSteps), ("decoder steps", decoderSteps), ("super-res steps", superResSteps)] where !(2...1000).contains(v) {
            throw UnCLIPError.invalidArgument(name: name, detail: "\(v) must be in 2...1000")
        }
        for (name, g) in [("prior guidance", priorGuidance), ("decoder guidance", decoderGuidance)] where !(g.isFinite && g >= 0 && g <= 100) {
            throw UnCLIPError.invalidArgument(name: name, detail: "\(g) must be in 0...100")
        }
    }
}

/// Progress of a run: stage, step (1-based) and total; return false to cancel.
public typealias ProgressHandler = (_ stage: String, _ step: Int, _ total: Int) -> Bool

public struct CancelledError: Error, CustomStringConvertible {
    public var description: String { "generation cancelled" }
}

/// Each stage's result, in the reference's layouts (the --dump contract).
public struct StageOutputs: Sendable {
    public var textEmbeds: Tensor?        // [B, E] (the prompt's)
    public var textHidden: Tensor?        // [B, L, D]
    public var imageEmbeds: Tensor?       // [B, E]
    public var decoderImage: Tensor?      // [B, h, w, 3] NHWC, clamped
    public var superResImage: Tensor?     // [B, H, W, 3] NHWC, in [−1, 1]
    public var imageEmbedsName = "prior.image_embeds"

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

/// diffusers' UnCLIPPipeline (pipelines/deprecated/unclip/pipeline_unclip.py), stage by stage: each stage's
/// weights are mapped when it starts and released when it ends.
public final class UnCLIPPipeline {
    public let model: ModelFile
    public let tokenizer: CLIPTokenizer

    static let decoderComponents = ["text_encoder", "text_proj", "decoder", "super_res_first", "super_res_last",
                                    "decoder_scheduler", "super_res_scheduler"]

    public init(model: ModelFile) throws {
        self.model = model
        tokenizer = try CLIPTokenizer(file: model.gguf)
    }

    func requireComponents(_ names: [String], for what: String) throws {
        for c in names where !model.components.contains(c) {
            throw WeightsError(.malformed, file: model.path, "has no '\(c)' component, which \(what) needs (it has: \(model.components.joined(separator: ", ")))")
        }
    }

    /// Maps a component, builds its model, then lets go of the pages its packed weights were copied from.
    func build<M>(_ component: String, _ make: (ComponentScope) throws -> M) throws -> M {
        let scope = try model.load(component)
        let m = try make(scope)
        scope.releasePackedSources()
        return m
    }

    func config(_ c: String) throws -> JSON {
        guard let j = model.config(c) else { throw WeightsError(.malformed, file: model.path, "component '\(c)' has no config") }
        return j
    }

    func scheduler(_ c: String) throws -> UnCLIPScheduler { try UnCLIPScheduler(config: try config(c)) }

    /// Text → [B, H, W, 3] uint8 images (B = 1 per prompt).
    public func generate(prompt: String, options: GenerationOptions = GenerationOptions(), noise: NoiseSource,
                         progress: ProgressHandler? = nil) throws -> (images: [PNGImage], stages: StageOutputs) {
        try options.validate()
        try requireComponents(UnCLIPPipeline.decoderComponents + ["prior", "prior_scheduler"], for: "text-to-image")
        var stages = StageOutputs()
        let cfg = options.priorGuidance > 1 || options.decoderGuidance > 1
        let (condIDs, condMask) = tokenizer.encode(prompt)
        let (uncondIDs, uncondMask) = tokenizer.encode("")
        let b = 1

        // Text encoder: [uncond; cond] with guidance.
        let (promptEmbeds, textHidden): (Tensor, Tensor) = try {
            let enc = try build("text_encoder") { try CLIPTextModelWithProjection(scope: $0, config: try .init(try config("text_encoder"))) }
            return try enc(cfg ? [uncondIDs, condIDs] : [condIDs])
        }()
        let textMask = (cfg ? [uncondMask, condMask] : [condMask]).map { $0.map { $0 != 0 } }
        let e = promptEmbeds.shape[1]
        stages.textEmbeds = try promptEmbeds.slice(dim: 0, (cfg ? b : 0)..<(cfg ? 2 * b : b)).contiguous()
        stages.textHidden = try textHidden.slice(dim: 0, (cfg ? b : 0)..<(cfg ? 2 * b : b)).contiguous()

        // Prior.
        let imageEmbeds: Tensor = try {
            let prior = try build("prior") { try PriorTransformer(scope: $0, config: try .init(try config("prior"))) }
            let sched = try scheduler("prior_scheduler")
            let ts = try sched.timesteps(options.priorSteps)
            var x = try noise.draw("prior.latents", shape: [b, prior.config.embeddingDim])                 // [B, E]
            for (i, t) in ts.enumerated() {
                if let progress, !progress("prior", i + 1, ts.count) { throw CancelledError() }
                let xt = try Tensor(shape: [b, e], values: x)
                let input = cfg ? try Tensor(shape: [2 * b, e], values: x + x) : xt                          // [2B, E]
                let pred = try prior(input, timestep: Float(t), projEmbedding: promptEmbeds, encoderHiddenStates: textHidden,
                                     textMask: textMask).toArray()
                let guided = cfg ? Self.guide(pred, rows: b * e, scale: options.priorGuidance) : pred
                let prev = i + 1 < ts.count ? ts[i + 1] : t - 1
                let z = t > 0 ? try noise.draw("prior.noise.\(i)", shape: [b, e]) : nil
                x = try sched.step(modelOutput: guided, predictedVariance: nil, t: t, prev: prev, sample: x, noise: z)
            }
            return try prior.postProcessLatents(try Tensor(shape: [b, e], values: x))                       // [B, E]
        }()
        stages.imageEmbeds = imageEmbeds

        return try decodeAndUpscale(imageEmbeds: imageEmbeds, promptEmbeds: promptEmbeds, textHidden: textHidden, textMask: textMask,
                                    cfg: cfg, options: options, noise: noise, progress: progress, stages: stages)
    }

    /// diffusers' UnCLIPImageVariationPipeline: the image's CLIP embedding replaces the prior's; the prompt is "".
    public func vary(image: PNGImage, options: GenerationOptions = GenerationOptions(), noise: NoiseSource,
                     progress: ProgressHandler? = nil) throws -> (images: [PNGImage], stages: StageOutputs) {
        try options.validate()
        try requireComponents(UnCLIPPipeline.decoderComponents + ["image_encoder", "feature_extractor"], for: "image variations")
        var stages = StageOutputs()
        stages.imageEmbedsName = "image_encoder.image_embeds"
        let cfg = options.decoderGuidance > 1
        let (ids, mask) = tokenizer.encode("")
        let (promptEmbeds, textHidden): (Tensor, Tensor) = try {
            let enc = try build("text_encoder") { try CLIPTextModelWithProjection(scope: $0, config: try .init(try config("text_encoder"))) }
            return try enc(cfg ? [ids, ids] : [ids])
        }()
        let textMask = Array(repeating: mask.map { $0 != 0 }, count: cfg ? 2 : 1)
        stages.textEmbeds = try promptEmbeds.slice(dim: 0, 0..<1).contiguous()
        stages.textHidden = try textHidden.slice(dim: 0, 0..<1).contiguous()
        let imageEmbeds: Tensor = try {
            let pixels = try CLIPImageProcessor(config: try config("feature_extractor"))(image)                     // [1, S, S, 3]
            let enc = try build("image_encoder") { try CLIPVisionModelWithProjection(scope: $0, config: try .init(try config("image_encoder"))) }
            return try enc(pixels)                                                                                 // [1, E]
        }()
        stages.imageEmbeds = imageEmbeds
        return try decodeAndUpscale(imageEmbeds: imageEmbeds, promptEmbeds: promptEmbeds, textHidden: textHidden, textMask: textMask,
                                    cfg: cfg, options: options, noise: noise, progress: progress, stages: stages)
    }

    /// The stages both pipelines share: text_proj + decoder, then super-resolution and conversion to uint8.
    func decodeAndUpscale(imageEmbeds: Tensor, promptEmbeds: Tensor, textHidden: Tensor, textMask: [[Bool]], cfg: Bool,
                          options: GenerationOptions, noise: NoiseSource, progress: ProgressHandler?,
                          stages: StageOutputs) throws -> (images: [PNGImage], stages: StageOutputs) {
        var stages = stages
        let small = try decode(imageEmbeds: imageEmbeds, promptEmbeds: promptEmbeds, textHidden: textHidden, textMask: textMask,
                               cfg: cfg, options: options, noise: noise, progress: progress)
        stages.decoderImage = small
        let final = try superResolve(small, options: options, noise: noise, progress: progress)
        stages.superResImage = final
        return (try UnCLIPPipeline.toImages(final), stages)
    }

    /// u + g·(c − u) over the two halves of a [2·rows] batch.
    static func guide(_ v: [Float], rows: Int, scale: Float) -> [Float] {
        (0..<rows).map { v[$0] + scale * (v[rows + $0] - v[$0]) }
    }

    /// text_proj + the decoder loop → the clamped 64×64 (sample_size) image [B, h, w, 3].
    func decode(imageEmbeds: Tensor, promptEmbeds: Tensor, textHidden: Tensor, textMask: [[Bool]], cfg: Bool,
                options: GenerationOptions, noise: NoiseSource, progress: ProgressHandler?) throws -> Tensor {
        let b = imageEmbeds.shape[0]
        let tp = try build("text_proj") { try UnCLIPTextProjModel(scope: $0, config: try .init(try config("text_proj"))) }
        let (context, additive) = try tp(imageEmbeddings: imageEmbeds, promptEmbeds: promptEmbeds, textHiddenStates: textHidden,
                                         classifierFreeGuidance: cfg)
        let contextMask = textMask.map { [Bool](repeating: true, count: tp.config.extraTokens) + $0 }
        let unet = try build("decoder") { try UNet(scope: $0, config: try .init(try config("decoder"), conditioned: true)) }
        let sched = try scheduler("decoder_scheduler")
        let ts = try sched.timesteps(options.decoderSteps)
        let (s, c) = (unet.config.sampleSize, unet.config.inChannels)
        try require(unet.config.outChannels == 2 * c || sched.varianceType != .learnedRange, "decoder",
                    "learned_range needs out_channels = 2 × in_channels")
        var x = try noise.draw("decoder.latents", shape: [b, c, s, s])                                       // [B, s, s, c] NHWC
        let n = b * s * s
        for (i, t) in ts.enumerated() {
            if let progress, !progress("decoder", i + 1, ts.count) { throw CancelledError() }
            let input = try Tensor(shape: [cfg ? 2 * b : b, s, s, c], values: cfg ? x + x : x)
            let out = try unet(input, timestep: Float(t), context: context, contextMask: contextMask, classLabels: additive).toArray()  // [B', s, s, 2c]
            let oc = unet.config.outChannels
            // split channels [0, c) = ε and [c, 2c) = variance, per pixel
            func channels(_ v: ArraySlice<Float>, _ lo: Int, _ hi: Int) -> [Float] {
                var r = [Float](); r.reserveCapacity(n * (hi - lo))
                let base = v.startIndex
                for p in 0..<n { for ch in lo..<hi { r.append(v[base + p * oc + ch]) } }
                return r
            }
            let half = n * oc
            var eps: [Float], variance: [Float]?
            if cfg {
                let u = channels(out[0..<half], 0, c), cond = out[half..<(2 * half)]
                eps = Self.guide(u + channels(cond, 0, c), rows: n * c, scale: options.decoderGuidance)
                variance = oc == 2 * c ? channels(cond, c, 2 * c) : nil
            } else {
                eps = channels(out[0..<half], 0, c)
                variance = oc == 2 * c ? channels(out[0..<half], c, 2 * c) : nil
            }
            let prev = i + 1 < ts.count ? ts[i + 1] : t - 1
            let z = t > 0 ? try noise.draw("decoder.noise.\(i)", shape: [b, c, s, s]) : nil
            x = try sched.step(modelOutput: eps, predictedVariance: variance, t: t, prev: prev, sample: x, noise: z)
        }
        return try Ops.clamp(try Tensor(shape: [b, s, s, c], values: x), min: -1, max: 1)
    }

    /// Anti-aliased bicubic upscale + the super-resolution loop (super_res_last on the final step).
    func superResolve(_ small: Tensor, options: GenerationOptions, noise: NoiseSource, progress: ProgressHandler?) throws -> Tensor {
        let b = small.shape[0], c = small.shape[3]
        let sched = try scheduler("super_res_scheduler")
        let ts = try sched.timesteps(options.superResSteps)
        let cfgFirst = try UNet.Config(try config("super_res_first"), conditioned: false)
        let size = cfgFirst.sampleSize
        try require(cfgFirst.inChannels == 2 * c, "super-res", "in_channels \(cfgFirst.inChannels) must be twice the image's \(c)")
        let up = try Ops.resizeBicubicAntialias(small, height: size, width: size)                          // [B, H, W, 3]
        var x = try noise.draw("super_res.latents", shape: [b, c, size, size])
        var first: UNet? = try build("super_res_first") { try UNet(scope: $0, config: cfgFirst) }
        for (i, t) in ts.enumerated() {
            if let progress, !progress("super_res", i + 1, ts.count) { throw CancelledError() }
            let last = i == ts.count - 1
            let unet: UNet
            if last {
                first = nil  // release super_res_first before mapping super_res_last
                unet = try build("super_res_last") { try UNet(scope: $0, config: try .init(try config("super_res_last"), conditioned: false)) }
            } else {
                unet = first!
            }
            let input = try Ops.concatLast(try Tensor(shape: [b, size, size, c], values: x), up)              // [B, H, W, 6]
            let eps = try unet(input, timestep: Float(t)).toArray()                                         // [B, H, W, 3]
            let prev = i + 1 < ts.count ? ts[i + 1] : t - 1
            let z = t > 0 ? try noise.draw("super_res.noise.\(i)", shape: [b, c, size, size]) : nil
            x = try sched.step(modelOutput: eps, predictedVariance: nil, t: t, prev: prev, sample: x, noise: z)
        }
        return try Tensor(shape: [b, size, size, c], values: x)
    }

    /// (x·0.5 + 0.5) clamped to [0, 1], ×255, rounded half to even (numpy) → uint8 RGB.
    public static func toImages(_ x: Tensor) throws -> [PNGImage] {
        let (b, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let v = x.toArray(), per = h * w * c
        return try (0..<b).map { n in
            let px = (0..<per).map { i -> UInt8 in
                let y = min(max(v[n * per + i] * 0.5 + 0.5, 0), 1)
                return UInt8((y * 255).rounded(.toNearestOrEven))
            }
            return try PNGImage(width: w, height: h, channels: c, pixels: px)
        }
    }
}
