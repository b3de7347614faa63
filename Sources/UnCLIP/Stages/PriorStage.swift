import Foundation

/// The prior (PriorTransformer + its scheduler): text conditioning → CLIP image embeddings [B, E], through
/// post_process_latents. diffusers' UnCLIPPipeline prior loop.
public struct PriorStage {
    public let model: StageModel

    public init(_ model: StageModel) { self.model = model }

    /// The loaded prior, for callers that drive single steps (the benchmark).
    public struct Loaded {
        public let prior: PriorTransformer
        public let schedulerConfig: JSON
        /// One model call: x_t [B', E] at timestep t → predicted x₀ [B', E].
        public func denoise(_ x: Tensor, timestep: Int, text: TextConditioning) throws -> Tensor {
            try prior(x, timestep: Float(timestep), projEmbedding: text.promptEmbeds, encoderHiddenStates: text.hidden, textMask: text.mask)
        }
    }

    public func load() throws -> Loaded {
        try model.require(["prior", "prior_scheduler"], for: "the prior")
        let prior = try model.build("prior") { try PriorTransformer(scope: $0, config: try .init(try model.config("prior"))) }
        return Loaded(prior: prior, schedulerConfig: try model.config("prior_scheduler"))
    }

    /// `latents`: x_T [B, E] (default: the draw `prior.latents` × the scheduler's init sigma).
    public func callAsFunction(_ text: TextConditioning, settings: SamplingSettings, noise: NoiseSet, latents: [Float]? = nil,
                               progress: ProgressHandler? = nil, onStep: StepHook? = nil) throws -> Tensor {
        try require(text.guided == (settings.guidance != nil), "prior", "guided text conditioning goes with a guidance scale")
        let m = try load()
        try require(noise.batch == text.batch, "prior", "noise for \(noise.batch) images, the batch has \(text.batch)")
        let e = m.prior.config.embeddingDim, b = text.batch
        let scheduler = try settings.sampler.scheduler(config: m.schedulerConfig)
        let loop = try DenoisingLoop(stage: "prior", scheduler: scheduler, steps: settings.steps, guidance: settings.guidance,
                                     itemShape: [e], noiseShape: [e], progress: progress, onStep: onStep)
        let x0 = try latents ?? noise.draw("prior.latents", itemShape: [e]).map { $0 * scheduler.initNoiseSigma }   // [B, E]
        try require(x0.count == b * e, "prior", "initial latents: \(x0.count) values for \(b) × \(e)")
        let n = loop.timesteps.count
        let x = try BatchChunks.run(batch: b, limit: settings.maxBatch ?? 16, noise: noise) { k, chunks, r in
            let tr = try text.rows(r)
            return try loop.run(latents: Array(x0[(r.lowerBound * e)..<(r.upperBound * e)]), batch: r.count, noise: try noise.slice(r),
                                images: r, progressIndex: { (k * n + $0 + 1, chunks * n) }) { input, t in
                try m.denoise(input, timestep: t, text: tr)
            }
        }
        let embeds = try m.prior.postProcessLatents(try Tensor(shape: [b, e], values: x))                  // [B, E]
        try requireFinite(embeds.toArray(), stage: "prior", "the image embeddings")
        return embeds
    }
}
