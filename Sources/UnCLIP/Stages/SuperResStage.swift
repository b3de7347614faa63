import Foundation

/// Super-resolution (diffusers' UnCLIPPipeline): the decoder's image, upscaled (antialiased bicubic), is the
/// condition of super_res_first for every step but the last and of super_res_last on the last.
public struct SuperResStage {
    public let model: StageModel

    public init(_ model: StageModel) { self.model = model }

    public var firstConfig: UNet.Config { get throws { try UNet.Config(try model.config("super_res_first"), conditioned: false) } }

    /// `lowRes`: [B, h, w, c] in [−1, 1]; `latents`: x_T [B, H, W, c] NHWC (default: the draw `super_res.latents` ×
    /// init sigma). Returns the last sample [B, H, W, c] (not clamped).
    public func callAsFunction(_ lowRes: Tensor, settings: SamplingSettings, noise: NoiseSet, latents: [Float]? = nil,
                               progress: ProgressHandler? = nil, onStep: StepHook? = nil) throws -> Tensor {
        try model.require(["super_res_first", "super_res_last", "super_res_scheduler"], for: "super-resolution")
        try require(settings.guidance == nil, "super-res", "super-resolution takes no guidance")
        let (b, c) = (lowRes.shape[0], lowRes.shape[3])
        try require(noise.batch == lowRes.shape[0], "super-res", "noise for \(noise.batch) images, the batch has \(lowRes.shape[0])")
        let scheduler = try settings.sampler.scheduler(config: try model.config("super_res_scheduler"))
        let cfgFirst = try firstConfig
        let size = cfgFirst.sampleSize
        try require(cfgFirst.inChannels == 2 * c, "super-res", "in_channels \(cfgFirst.inChannels) must be twice the image's \(c)")
        let up = try Ops.resizeBicubicAntialias(lowRes, height: size, width: size)                          // [B, H, W, c]
        var loop = try DenoisingLoop(stage: "super_res", scheduler: scheduler, steps: settings.steps, guidance: nil,
                                     itemShape: [size, size, c], noiseShape: [c, size, size], progress: progress, onStep: onStep)
        loop.resamples = settings.resamples
        let xT = try latents ?? noise.draw("super_res.latents", itemShape: [c, size, size]).map { $0 * scheduler.initNoiseSigma }
        try require(xT.count == b * size * size * c, "super-res", "initial latents: \(xT.count) values for \(b) × \(size)×\(size)×\(c)")
        // super_res_first for every step but the last, over every chunk; then super_res_last for the last step
        // (super_res_first is released before super_res_last is mapped)
        let n = loop.timesteps.count, per = size * size * c
        let limit = settings.batchLimit(pixels: size * size)
        var x = xT
        // progress counts every (chunk, step): chunks·(n − 1) first-model steps, then chunks last-model steps
        let chunkCount = BatchChunks.chunks(batch: b, limit: limit, noise: noise).count
        func pass(_ steps: Range<Int>, _ unet: UNet) throws {
            guard !steps.isEmpty else { return }
            x = try BatchChunks.run(batch: b, limit: limit, noise: noise) { k, _, r in
                let upR = r == 0..<b ? up : try up.slice(dim: 0, r).contiguous()                            // [b', H, W, c]
                let done = steps.lowerBound * chunkCount + k * steps.count
                return try loop.run(latents: Array(x[(r.lowerBound * per)..<(r.upperBound * per)]), batch: r.count,
                                    noise: try noise.slice(r), steps: steps, images: r,
                                    progressIndex: { (done + $0 - steps.lowerBound + 1, chunkCount * n) }) { input, t in
                    try unet(try Ops.concatLast(input, upR), timestep: Float(t))                           // [b', H, W, c]
                }
            }
        }
        try pass(0..<(n - 1), try model.build("super_res_first") { try UNet(scope: $0, config: cfgFirst) })
        try pass((n - 1)..<n, try model.build("super_res_last") { try UNet(scope: $0, config: try .init(try model.config("super_res_last"), conditioned: false)) })
        return try Tensor(shape: [b, size, size, c], values: x)
    }

    /// DDIM inversion of super-resolution: the high-resolution image x₀ [B, H, W, c] with its low-resolution condition
    /// [B, h, w, c] → x_T [B, H, W, c] (DDIMInverseScheduler over super_res_scheduler's config). The inverse runs the
    /// schedule from the low timesteps up, so its first step is the sampler's last: super_res_last there,
    /// super_res_first for the others.
    public func invert(image: Tensor, lowRes: Tensor, steps: Int, options: DDIMScheduler.Options = .init(),
                       progress: ProgressHandler? = nil, onStep: StepHook? = nil) throws -> [Float] {
        try model.require(["super_res_first", "super_res_last", "super_res_scheduler"], for: "super-resolution inversion")
        let (b, c) = (lowRes.shape[0], lowRes.shape[3])
        let cfgFirst = try firstConfig
        let size = cfgFirst.sampleSize
        try require(image.shape == [b, size, size, c], "super-res inversion", "image \(image.shape), super-resolution makes \([b, size, size, c])")
        let scheduler = try DDIMInverseScheduler(config: try model.config("super_res_scheduler"), options: options)
        let loop = try DenoisingLoop(stage: "super_res_inversion", scheduler: scheduler, steps: steps, guidance: nil,
                                     itemShape: [size, size, c], noiseShape: [c, size, size], progress: progress, onStep: onStep)
        let up = try Ops.resizeBicubicAntialias(lowRes, height: size, width: size)                          // [B, H, W, c]
        let noise = try NoiseSet([SeededNoise(seed: 0)], batch: b)  // never drawn: an inverse step adds no noise
        var x = image.toArray()
        func pass(_ steps: Range<Int>, _ unet: UNet) throws {
            x = try loop.run(latents: x, batch: b, noise: noise, steps: steps) { input, t in
                try unet(try Ops.concatLast(input, up), timestep: Float(t))                                  // [B, H, W, c]
            }
        }
        try pass(0..<1, try model.build("super_res_last") { try UNet(scope: $0, config: try .init(try model.config("super_res_last"), conditioned: false)) })
        try pass(1..<loop.timesteps.count, try model.build("super_res_first") { try UNet(scope: $0, config: cfgFirst) })
        return x
    }
}
