import Foundation

/// Interpolations and text diffs (Ramesh et al. 2022, §3): an image is the pair (z_i, x_T) of its CLIP image
/// embedding and the decoder's DDIM-inverted latent; frames move z_i (and slerp or fix x_T) and decode each with DDIM
/// (eta 0, clip_sample off: clamping x₀ is not invertible). Super-resolution runs per frame with the same draws for
/// every frame, so frames differ only where their decoder images do.
public struct MorphOptions: Sendable {
    /// Steps, guidance and the super-res sampler; `count` and the decoder's sampler are set per command.
    public var generation = GenerationOptions()
    public var frames = 8
    public static let maxFrames = 120
    /// Fixed-point iterations of each inversion step (1 = plain DDIM inversion). 5: on three generated scenes the
    /// unguided 25-step round trip measured 21.1 / 29.5 / 26.4 dB plain, 26.9 / 44.1 / 49.4 dB with 3 and
    /// 48.6 / 44.1 / 46.5 dB with 5 — the super-resolution ceiling (44–49 dB) — so the end frames are the inputs.
    public var inversionIterations = 5
    public static let maxInversionIterations = 10
    public init() {}

    func validate() throws {
        try generation.validate()
        guard (1...Self.maxInversionIterations).contains(inversionIterations) else {
            throw UnCLIPError.invalidArgument(name: "inversion iterations", detail: "\(inversionIterations) must be in 1...\(Self.maxInversionIterations)")
        }
        guard (2...Self.maxFrames).contains(frames) else {
            throw UnCLIPError.invalidArgument(name: "frames", detail: "\(frames) must be in 2...\(Self.maxFrames)")
        }
    }

    /// The decoder's sampler for inversion and decoding: DDIM, eta 0, clip_sample off (DDIMScheduler's other defaults).
    static let decoderDDIM = DDIMScheduler.Options(eta: 0, clipSample: false)
}

/// An image as unCLIP encodes it: the CLIP image embedding and the decoder's x_T (NHWC) that regenerates it.
public struct ImageLatent: Sendable {
    public let embedding: [Float]      // [E]
    public let noise: [Float]          // [s, s, c]
}

/// The frames of a morph and what they were made from.
public struct MorphResult {
    public let frames: [PNGImage]
    /// Text diffs: frame 0 against the input at the output's size (dB); interpolations: both ends.
    public let reconstructionPSNR: [Double]
    /// θ of each frame.
    public let thetas: [Float]
}

/// Every image of a batch gets the same draws: the first image's draw of each name is replayed to the others (a
/// frame's super-resolution noise equals every other frame's).
final class SharedDraws: NoiseSource {
    let source: NoiseSource
    var drawn: [String: [Float]] = [:]
    init(_ source: NoiseSource) { self.source = source }
    func draw(_ name: String, shape: [Int]) throws -> [Float] {
        if let v = drawn[name] { return v }
        let v = try source.draw(name, shape: shape)
        drawn[name] = v
        return v
    }
    var replayed: Bool { source.replayed }
}

extension UnCLIPPipeline {
    /// `frames` draws that are all the same (`SharedDraws` over `noise`).
    static func sharedNoise(_ noise: NoiseSource, frames: Int) throws -> NoiseSet {
        try sharedNoise(SharedDraws(noise), frames: frames)
    }

    /// `frames` images that all replay `draws` (one SharedDraws can serve several stages' batches).
    static func sharedNoise(_ draws: SharedDraws, frames: Int) throws -> NoiseSet {
        try NoiseSet([NoiseSource](repeating: draws, count: frames), batch: frames)
    }

    /// The empty prompt's conditioning for `batch` frames (the decoder is conditioned on the embedding alone, as in
    /// variations).
    func emptyText(batch: Int, guided: Bool) throws -> TextConditioning {
        try TextEncoderStage(stageModel, tokenizer: tokenizer)(prompts: [String](repeating: "", count: batch), guided: guided)
    }

    func decoderSettings(_ o: MorphOptions, guided: Bool) -> SamplingSettings {
        SamplingSettings(steps: o.generation.decoderSteps, sampler: .ddim(MorphOptions.decoderDDIM),
                         guidance: guided ? o.generation.decoderGuidance : nil, maxBatch: o.generation.maxBatch)
    }

    /// (z_i, x_T) of each image (any size: resized, antialiased, to the decoder's resolution), inverted as one batch.
    /// `partialSteps`: invert only that many of the decoder's steps (the latent is then the sample at that step).
    public func encode(images: [PNGImage], options: MorphOptions, partialSteps: Int? = nil,
                       progress: ProgressHandler? = nil) throws -> [ImageLatent] {
        try stageModel.require(Self.decoderComponents + ["image_encoder", "feature_extractor"], for: "image inversion")
        let b = images.count
        let embeddings = try ImageEncoderStage(stageModel)(images)                                         // [B, E]
        let guided = options.generation.decoderGuidance > 1
        let size = try UNet.Config(try stageModel.config("decoder"), conditioned: true).sampleSize
        let x0 = try Tensor(shape: [b, size, size, 3], values: try images.flatMap { try Self.imageTensor($0, size: size).toArray() })  // [B, s, s, 3]
        let noise = try DecoderStage(stageModel).invert(image: x0, imageEmbeds: embeddings, text: try emptyText(batch: b, guided: guided),
                                                        steps: options.generation.decoderSteps,
                                                        guidance: guided ? options.generation.decoderGuidance : nil,
                                                        options: MorphOptions.decoderDDIM, iterations: options.inversionIterations,
                                                        partialSteps: partialSteps, progress: progress)                                 // [B, s, s, 3]
        let (e, per) = (embeddings.shape[1], noise.count / b)
        let z = embeddings.toArray()
        return (0..<b).map { ImageLatent(embedding: Array(z[($0 * e)..<(($0 + 1) * e)]), noise: Array(noise[($0 * per)..<(($0 + 1) * per)])) }
    }

    /// An image as values in [−1, 1], resized to size × size: [1, size, size, 3].
    static func imageTensor(_ image: PNGImage, size: Int) throws -> Tensor {
        let t = try Tensor(shape: [1, image.height, image.width, 3], values: image.rgbFloats.map { $0 / 127.5 - 1 })
        return image.width == size && image.height == size ? t : try Ops.resizeBicubicAntialias(t, height: size, width: size)
    }

    /// Decodes frame k with decoder guidance `guidances[k]` (≤ 1: unguided; frames with the same scale share one
    /// batch) and upscales every frame with the same draws.
    func decodeFrames(embeddings: [[Float]], latents: [[Float]], guidances: [Float], fromStep: Int = 0, options: MorphOptions,
                      noise: NoiseSource, progress: ProgressHandler?) throws -> [PNGImage] {
        let n = embeddings.count
        precondition(guidances.count == n && latents.count == n, "one guidance scale and one x_T per frame")
        let draws = SharedDraws(noise)
        var small = [[Float]](repeating: [], count: n), itemShape: [Int] = []
        var scales: [Float] = []
        for g in guidances where !scales.contains(g) { scales.append(g) }
        for g in scales {
            let idx = (0..<n).filter { guidances[$0] == g }
            var o = options
            o.generation.decoderGuidance = max(g, 1)
            let guided = g > 1
            let embeds = try Tensor(shape: [idx.count, embeddings[0].count], values: idx.flatMap { embeddings[$0] })   // [b, E]
            let out = try DecoderStage(stageModel)(imageEmbeds: embeds, text: try emptyText(batch: idx.count, guided: guided),
                                                   settings: decoderSettings(o, guided: guided),
                                                   noise: try Self.sharedNoise(draws, frames: idx.count),
                                                   latents: idx.flatMap { latents[$0] }, fromStep: fromStep, progress: progress)  // [b, s, s, 3]
            itemShape = Array(out.shape.dropFirst())
            let v = out.toArray(), per = v.count / idx.count
            for (j, k) in idx.enumerated() { small[k] = Array(v[(j * per)..<((j + 1) * per)]) }
        }
        let all = try Tensor(shape: [n] + itemShape, values: small.flatMap { $0 })                          // [N, s, s, 3]
        let final = try SuperResStage(stageModel)(all, settings: options.generation.superRes,
                                                  noise: try Self.sharedNoise(draws, frames: n), progress: progress)
        return try Self.toImages(final)
    }

    /// Decodes one frame per (embedding, x_T) with DDIM at the options' guidance and upscales each with the same draws.
    func decodeFrames(embeddings: [[Float]], latents: [[Float]], fromStep: Int = 0, options: MorphOptions, noise: NoiseSource,
                      progress: ProgressHandler?) throws -> [PNGImage] {
        try decodeFrames(embeddings: embeddings, latents: latents,
                         guidances: [Float](repeating: options.generation.decoderGuidance, count: embeddings.count),
                         fromStep: fromStep, options: options, noise: noise, progress: progress)
    }

    /// The input as the frames show it: resized to the output's size, RGB.
    static func asFrame(_ image: PNGImage, like frame: PNGImage) throws -> PNGImage {
        if image.width == frame.width && image.height == frame.height && image.channels == 3 { return image }
        return try toImages(try imageTensor(image, size: frame.width))[0]
    }

    /// PSNR (dB, 8-bit peak) between two RGB images of one size; +∞ when they are equal.
    public static func psnr(_ a: PNGImage, _ b: PNGImage) -> Double {
        precondition(a.width == b.width && a.height == b.height, "psnr of images of different sizes")
        var se = 0.0
        for i in 0..<(a.width * a.height) {
            for c in 0..<3 {
                let d = Double(a.pixels[i * a.channels + c]) - Double(b.pixels[i * b.channels + c])
                se += d * d
            }
        }
        let mse = se / Double(a.width * a.height * 3)
        return mse == 0 ? .infinity : 10 * log10(255 * 255 / mse)
    }

    static func thetas(_ frames: Int, upTo maxTheta: Float = 1) -> [Float] {
        (0..<frames).map { maxTheta * Float($0) / Float(frames - 1) }
    }

    /// How many of the decoder's `steps` an inversion of `depth` ∈ (0, 1] runs (rounded, at least 1). Below `steps`
    /// the frames decode from step `steps − partial`, so the partial inversion's last timestep must be a timestep of
    /// the decoding schedule (true for DDIM's spacings; checked).
    func partialInversionSteps(depth: Float, steps: Int) throws -> Int {
        guard depth.isFinite, depth > 0, depth <= 1 else {
            throw UnCLIPError.invalidArgument(name: "inversion depth", detail: "\(depth) must be in (0, 1]")
        }
        let partial = max(1, min(steps, Int((depth * Float(steps)).rounded())))
        if partial < steps {
            let cfg = try stageModel.config("decoder_scheduler")
            let inv = try DDIMInverseScheduler(config: cfg, options: MorphOptions.decoderDDIM).timesteps(steps)
            let fwd = try DDIMScheduler(config: cfg, options: MorphOptions.decoderDDIM).timesteps(steps)
            guard fwd[steps - partial] == inv[partial - 1] else {
                throw UnCLIPError.invalidArgument(name: "inversion depth", detail: "the decoder's schedule does not pair inverse step \(partial) with a decoding step; use depth 1")
            }
        }
        return partial
    }

    /// How the x_T of an image interpolation's frames is chosen.
    public enum InterpolationLatents: String, Sendable, CaseIterable {
        /// slerp of the two images' inverted latents: the end frames reconstruct the inputs
        case inverted
        /// one random x_T (the draw `decoder.latents`) for every frame (the paper's figure 4)
        case fixed
    }

    /// Frames from image `a` to image `b`: z = slerp(z_a, z_b, θ), x_T by `latents`.
    ///
    /// `inversionDepth` < 1 (inverted latents only): both images are inverted through that fraction of the decoder's
    /// steps, the frames slerp those intermediate samples and decode the remaining steps.
    public func interpolate(_ a: PNGImage, _ b: PNGImage, latents: InterpolationLatents, options: MorphOptions,
                            inversionDepth: Float = 1, noise: NoiseSource, progress: ProgressHandler? = nil) throws -> MorphResult {
        try options.validate()
        try checkSchedules(options.generation, prior: false)
        let steps = options.generation.decoderSteps
        let partial = try partialInversionSteps(depth: inversionDepth, steps: steps)
        guard partial == steps || latents == .inverted else {
            throw UnCLIPError.invalidArgument(name: "inversion depth", detail: "a partial inversion needs inverted latents (got \(latents.rawValue))")
        }
        let encoded = try encode(images: [a, b], options: options, partialSteps: partial < steps ? partial : nil, progress: progress)
        let (la, lb) = (encoded[0], encoded[1])
        let th = Self.thetas(options.frames)
        let embeds = try th.map { try Slerp.interpolate(la.embedding, lb.embedding, $0) }
        let xT: [[Float]]
        switch latents {
        case .inverted:
            xT = try th.map { try Slerp.interpolate(la.noise, lb.noise, $0) }
        case .fixed:
            let size = try UNet.Config(try stageModel.config("decoder"), conditioned: true).sampleSize
            let z = try noise.draw("decoder.latents", shape: [1, 3, size, size])                             // [s, s, 3]
            let sigma = try options.generation.sampler.scheduler(config: try stageModel.config("decoder_scheduler")).initNoiseSigma
            xT = [[Float]](repeating: z.map { $0 * sigma }, count: th.count)
        }
        let frames = try decodeFrames(embeddings: embeds, latents: xT, fromStep: steps - partial, options: options, noise: noise,
                                      progress: progress)
        let ends = [Self.psnr(frames[0], try Self.asFrame(a, like: frames[0])), Self.psnr(frames[frames.count - 1], try Self.asFrame(b, like: frames[0]))]
        return MorphResult(frames: frames, reconstructionPSNR: ends, thetas: th)
    }

    /// Frames between two prompts through the prior: the prompts' text embeddings and hidden states are slerped
    /// (per token; the token mask is the union of the two), the prior and the decoder start from one x_T for every
    /// frame (the draws are shared), so the frames differ only by their conditioning.
    public func interpolate(fromPrompt: String, toPrompt: String, options: MorphOptions, noise: NoiseSource,
                            progress: ProgressHandler? = nil) throws -> MorphResult {
        try options.validate()
        var one = options.generation
        one.count = 1
        try checkPrompted(one, noises: try NoiseSet([noise], batch: 1), for: "prompt interpolation")
        let g = options.generation
        let guided = g.priorGuidance > 1 || g.decoderGuidance > 1
        let n = options.frames, th = Self.thetas(n)
        let ends = try TextEncoderStage(stageModel, tokenizer: tokenizer)(prompts: [fromPrompt, toPrompt], guided: guided)
        let (embeds, hidden) = try ends.conditional()                                                      // [2, E], [2, L, D]
        let e = embeds.shape[1], (l, d) = (hidden.shape[1], hidden.shape[2])
        let ev = embeds.toArray(), hv = hidden.toArray()
        var frameEmbeds: [Float] = [], frameHidden: [Float] = []
        for t in th {
            frameEmbeds += try Slerp.interpolate(Array(ev[0..<e]), Array(ev[e..<(2 * e)]), t)
            for k in 0..<l {
                let x = Array(hv[(k * d)..<((k + 1) * d)]), y = Array(hv[((l + k) * d)..<((l + k + 1) * d)])
                frameHidden += Slerp.norm(x) > 0 && Slerp.norm(y) > 0 ? try Slerp.interpolate(x, y, t) : zip(x, y).map { (1 - t) * $0 + t * $1 }
            }
        }
        let condRow = guided ? 2 : 0
        let mask = zip(ends.mask[condRow], ends.mask[condRow + 1]).map { $0 || $1 }
        var promptEmbeds = frameEmbeds, hiddenAll = frameHidden, masks = [[Bool]](repeating: mask, count: n)
        if guided {   // the unconditional ("") rows first, as TextEncoderStage lays them out
            let ue = ends.promptEmbeds.toArray(), uh = ends.hidden.toArray()
            promptEmbeds = Array(repeating: Array(ue[0..<e]), count: n).flatMap { $0 } + frameEmbeds
            hiddenAll = Array(repeating: Array(uh[0..<(l * d)]), count: n).flatMap { $0 } + frameHidden
            masks = [[Bool]](repeating: ends.mask[0], count: n) + masks
        }
        let rows = guided ? 2 * n : n
        let text = TextConditioning(promptEmbeds: try Tensor(shape: [rows, e], values: promptEmbeds),
                                    hidden: try Tensor(shape: [rows, l, d], values: hiddenAll), mask: masks, batch: n, guided: guided)
        let shared = try Self.sharedNoise(noise, frames: n)
        var frameOptions = g
        frameOptions.count = n
        // the two prompts' image embeddings from the prior (the same draws for both), slerped
        let endEmbeds = try PriorStage(stageModel)(ends, settings: frameOptions.prior(guided: guided), noise: try Self.sharedNoise(noise, frames: 2),
                                                   progress: progress).toArray()                            // [2, E']
        let ie = endEmbeds.count / 2
        let imageEmbeds = try Tensor(shape: [n, ie], values: try th.flatMap { try Slerp.interpolate(Array(endEmbeds[0..<ie]), Array(endEmbeds[ie...]), $0) })
        let small = try DecoderStage(stageModel)(imageEmbeds: imageEmbeds, text: text, settings: frameOptions.decoder(guided: guided),
                                                 noise: shared, progress: progress)
        let final = try SuperResStage(stageModel)(small, settings: frameOptions.superRes, noise: shared, progress: progress)
        return MorphResult(frames: try Self.toImages(final), reconstructionPSNR: [], thetas: th)
    }

    /// z_d = normalize(to − from), a unit vector; a typed error when the two embeddings are (numerically) the same.
    public static func textDiffDirection(from: [Float], to: [Float]) throws -> [Float] {
        precondition(from.count == to.count, "text embeddings of different sizes")
        let diff = zip(to, from).map { Double($0) - Double($1) }
        let length = diff.reduce(0) { $0 + $1 * $1 }.squareRoot(), scale = Slerp.norm(to)
        guard length > 1e-6 * max(scale, 1e-30) else {
            throw UnCLIPError.invalidArgument(name: "to", detail: "the two captions have the same text embedding: a text diff needs two different captions")
        }
        return diff.map { Float($0 / length) }
    }

    /// The most a text diff turns the image embedding (θ, a fraction of the angle to z_d).
    public static let maxTextDiffTheta: Float = 1

    /// A text diff: z_d = normalize(z_t(to) − z_t(from)) (`from` nil: the empty caption is the baseline); frame k
    /// decodes slerp(z_i, |z_i|·z_d, θ_k) with θ rising linearly from 0 to `maxTheta`, from the image's inverted x_T
    /// (the same for every frame). Frame 0 reconstructs the input.
    ///
    /// `guidanceRamp` G > 1: the decoder's guidance rises with θ, from 1 at frame 0 (unguided, so it still
    /// reconstructs) to G at the last frame; the image is inverted unguided.
    public func textDiff(image: PNGImage, from: String?, to: String, maxTheta: Float, options: MorphOptions,
                         guidanceRamp: Float? = nil, inversionDepth: Float = 1, noise: NoiseSource,
                         progress: ProgressHandler? = nil) throws -> MorphResult {
        try options.validate()
        guard maxTheta.isFinite, maxTheta > 0, maxTheta <= Self.maxTextDiffTheta else {
            throw UnCLIPError.invalidArgument(name: "max theta", detail: "\(maxTheta) must be in (0, \(Self.maxTextDiffTheta)]")
        }
        try checkSchedules(options.generation, prior: false)
        let captions = try TextEncoderStage(stageModel, tokenizer: tokenizer)(prompts: [from ?? "", to], guided: false)
        let z = captions.promptEmbeds.toArray(), e = captions.promptEmbeds.shape[1]
        let direction = try Self.textDiffDirection(from: Array(z[0..<e]), to: Array(z[e...]))
        var encodeOptions = options
        if let g = guidanceRamp {
            guard g.isFinite, g >= 1, g <= 100 else {
                throw UnCLIPError.invalidArgument(name: "guidance ramp", detail: "\(g) must be in [1, 100], as every guidance scale")
            }
            encodeOptions.generation.decoderGuidance = 1
        }
        let steps = options.generation.decoderSteps
        let partial = try partialInversionSteps(depth: inversionDepth, steps: steps)
        let latent = try encode(images: [image], options: encodeOptions, partialSteps: partial < steps ? partial : nil, progress: progress)[0]
        let zi = Slerp.norm(latent.embedding)
        let zd = direction.map { Float(Double($0) * zi) }                                                   // |z_i|·z_d
        let th = Self.thetas(options.frames, upTo: maxTheta)
        let embeds = try th.map { try Slerp.interpolate(latent.embedding, zd, $0) }
        let xT = [[Float]](repeating: latent.noise, count: th.count)
        // the ramp: 1 at frame 0 up to G at the last; else the options' guidance for every frame
        let guidances = guidanceRamp.map { g in th.map { 1 + (g - 1) * $0 / maxTheta } }
            ?? [Float](repeating: options.generation.decoderGuidance, count: th.count)
        let frames = try decodeFrames(embeddings: embeds, latents: xT, guidances: guidances, fromStep: steps - partial,
                                      options: options, noise: noise, progress: progress)
        return MorphResult(frames: frames, reconstructionPSNR: [Self.psnr(frames[0], try Self.asFrame(image, like: frames[0]))], thetas: th)
    }
}
