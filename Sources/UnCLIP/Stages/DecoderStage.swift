import Foundation

/// text_proj + the decoder UNet + its scheduler: CLIP image embeddings and text conditioning → the decoder's
/// image [B, s, s, 3] (NHWC, clamped to [−1, 1]) — diffusers' UnCLIPPipeline decoder loop. Also the loop's inverse
/// (DDIMInverseScheduler): an image → its x_T under the same conditioning.
public struct DecoderStage {
    public let model: StageModel

    public init(_ model: StageModel) { self.model = model }

    /// The loaded decoder with its conditioning computed, for callers that drive single steps.
    public struct Loaded {
        public let unet: UNet
        public let context: Tensor              // [B', extra + L, cross]
        public let contextMask: [[Bool]]        // [B'][extra + L]
        public let additive: Tensor             // [B', time]
        public let schedulerConfig: JSON
        public var sampleSize: Int { unet.config.sampleSize }

        /// The conditioning rows of images `r` (of a batch of `text`).
        func rows(_ r: Range<Int>, of text: TextConditioning) throws -> Loaded {
            if r == 0..<text.batch { return self }
            let idx = text.rowIndex(r)
            return Loaded(unet: unet, context: try TextEncoderStage.gather(context, idx), contextMask: idx.map { contextMask[$0] },
                          additive: try TextEncoderStage.gather(additive, idx), schedulerConfig: schedulerConfig)
        }
        public var channels: Int { unet.config.inChannels }

        /// One model call: x_t [B', s, s, c] at t → [B', s, s, oc] (ε, and the variance channels of learned_range).
        public func denoise(_ x: Tensor, timestep: Int) throws -> Tensor {
            try unet(x, timestep: Float(timestep), context: context, contextMask: contextMask, classLabels: additive)
        }
    }

    /// Maps text_proj (computing the conditioning, then releasing it) and the decoder.
    public func load(imageEmbeds: Tensor, text: TextConditioning) throws -> Loaded {
        try model.require(["text_proj", "decoder", "decoder_scheduler"], for: "the decoder")
        try require(imageEmbeds.rank == 2 && imageEmbeds.shape[0] == text.batch, "decoder",
                    "image embeddings \(imageEmbeds.shape) for a batch of \(text.batch)")
        let (context, additive, contextMask): (Tensor, Tensor, [[Bool]]) = try {
            let tp = try model.build("text_proj") { try UnCLIPTextProjModel(scope: $0, config: try .init(try model.config("text_proj"))) }
            let (ctx, add) = try tp(imageEmbeddings: imageEmbeds, promptEmbeds: text.promptEmbeds, textHiddenStates: text.hidden,
                                    classifierFreeGuidance: text.guided)
            return (ctx, add, text.mask.map { [Bool](repeating: true, count: tp.config.extraTokens) + $0 })
        }()
        let unet = try model.build("decoder") { try UNet(scope: $0, config: try .init(try model.config("decoder"), conditioned: true)) }
        return Loaded(unet: unet, context: context, contextMask: contextMask, additive: additive,
                      schedulerConfig: try model.config("decoder_scheduler"))
    }

    /// `latents`: x_T [B, s, s, c] NHWC (default: the draw `decoder.latents` × init sigma). Returns [B, s, s, c] clamped.
    /// `fromStep` > 0: `latents` is the sample at that step of the schedule (a partial inversion's output) and the loop
    /// runs the steps after it.
    public func callAsFunction(imageEmbeds: Tensor, text: TextConditioning, settings: SamplingSettings, noise: NoiseSet,
                               latents: [Float]? = nil, fromStep: Int = 0, progress: ProgressHandler? = nil,
                               onStep: StepHook? = nil) throws -> Tensor {
        try require(noise.batch == text.batch, "decoder", "noise for \(noise.batch) images, the batch has \(text.batch)")
        let m = try loadChecked(imageEmbeds: imageEmbeds, text: text, guidance: settings.guidance)
        let scheduler = try settings.sampler.scheduler(config: m.schedulerConfig)
        try requireVariance(m, scheduler)
        let (s, c, b) = (m.sampleSize, m.channels, text.batch)
        var loop = try DenoisingLoop(stage: "decoder", scheduler: scheduler, steps: settings.steps, guidance: settings.guidance,
                                     itemShape: [s, s, c], noiseShape: [c, s, s], progress: progress, onStep: onStep)
        loop.resamples = settings.resamples
        let xT = try latents ?? noise.draw("decoder.latents", itemShape: [c, s, s]).map { $0 * scheduler.initNoiseSigma }
        try require(xT.count == b * s * s * c, "decoder", "initial latents: \(xT.count) values for \(b) × \(s)×\(s)×\(c)")
        let per = s * s * c
        let n = loop.timesteps.count
        precondition((0..<n).contains(fromStep), "decoder: start step \(fromStep) outside the \(n)-step schedule")
        let x = try BatchChunks.run(batch: b, limit: settings.batchLimit(pixels: s * s), noise: noise) { k, chunks, r in
            let mr = try m.rows(r, of: text)
            return try loop.run(latents: Array(xT[(r.lowerBound * per)..<(r.upperBound * per)]), batch: r.count, noise: try noise.slice(r),
                                steps: fromStep..<n, images: r, progressIndex: { (k * n + $0 + 1, chunks * n) }) { input, t in
                try mr.denoise(input, timestep: t)
            }
        }
        return try Ops.clamp(try Tensor(shape: [b, s, s, c], values: x), min: -1, max: 1)                  // [B, s, s, c]
    }

    /// DDIM inversion: the decoder's image x₀ [B, s, s, c] (in [−1, 1]) → x_T [B, s, s, c] under the same
    /// conditioning, with diffusers' DDIMInverseScheduler over the decoder's scheduler config (`options` gives its
    /// spacing, offset and set_alpha_to_one; eta does not apply). Regenerating from x_T with DDIM (eta 0) and the
    /// same conditioning approximately reconstructs the image.
    /// `iterations` > 1: fixed-point refinement of every inversion step (`DenoisingLoop.fixedPointIterations`).
    /// `partialSteps`: only the first that many inverse steps (the sample at an intermediate timestep, for a decode that
    /// starts there: `fromStep` = steps − partialSteps).
    public func invert(image: Tensor, imageEmbeds: Tensor, text: TextConditioning, steps: Int, guidance: Float?,
                       options: DDIMScheduler.Options = .init(), iterations: Int = 1, partialSteps: Int? = nil,
                       progress: ProgressHandler? = nil, onStep: StepHook? = nil) throws -> [Float] {
        let m = try loadChecked(imageEmbeds: imageEmbeds, text: text, guidance: guidance)
        let (s, c, b) = (m.sampleSize, m.channels, text.batch)
        try require(image.shape == [b, s, s, c], "decoder inversion", "image \(image.shape), the decoder makes \([b, s, s, c])")
        let scheduler = try DDIMInverseScheduler(config: m.schedulerConfig, options: options)
        var loop = try DenoisingLoop(stage: "decoder_inversion", scheduler: scheduler, steps: steps, guidance: guidance,
                                     itemShape: [s, s, c], noiseShape: [c, s, s], progress: progress, onStep: onStep)
        loop.fixedPointIterations = iterations
        let k = partialSteps ?? loop.timesteps.count
        precondition((1...loop.timesteps.count).contains(k), "decoder inversion: \(k) of \(loop.timesteps.count) steps")
        return try loop.run(latents: image.toArray(), batch: b, noise: try NoiseSet([SeededNoise(seed: 0)], batch: b), steps: 0..<k) { input, t in
            try m.denoise(input, timestep: t)
        }
    }

    func loadChecked(imageEmbeds: Tensor, text: TextConditioning, guidance: Float?) throws -> Loaded {
        try require(text.guided == (guidance != nil), "decoder", "guided text conditioning goes with a guidance scale")
        return try load(imageEmbeds: imageEmbeds, text: text)
    }

    func requireVariance(_ m: Loaded, _ scheduler: any Scheduler) throws {
        try require(!scheduler.usesPredictedVariance || m.unet.config.outChannels == 2 * m.channels, "decoder",
                    "learned_range needs out_channels = 2 × in_channels")
    }
}
