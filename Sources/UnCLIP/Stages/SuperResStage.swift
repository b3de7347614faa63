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
        let scheduler = try settings.sampler.scheduler(config: try model.config("super_res_scheduler"))
        let cfgFirst = try firstConfig
        let size = cfgFirst.sampleSize
        try require(cfgFirst.inChannels == 2 * c, "super-res", "in_channels \(cfgFirst.inChannels) must be twice the image's \(c)")
        let up = try Ops.resizeBicubicAntialias(lowRes, height: size, width: size)                          // [B, H, W, c]
        let loop = try DenoisingLoop(stage: "super_res", scheduler: scheduler, steps: settings.steps, guidance: nil,
                                     itemShape: [size, size, c], noiseShape: [c, size, size], progress: progress, onStep: onStep)
        let xT = try latents ?? noise.draw("super_res.latents", itemShape: [c, size, size]).map { $0 * scheduler.initNoiseSigma }
        try require(xT.count == b * size * size * c, "super-res", "initial latents: \(xT.count) values for \(b) × \(size)×\(size)×\(c)")
        var first: UNet? = try model.build("super_res_first") { try UNet(scope: $0, config: cfgFirst) }
        var last: UNet?
        let lastT = loop.timesteps.last!, lastIndex = loop.timesteps.count - 1
        var calls = 0
        let x = try loop.run(latents: xT, batch: b, noise: noise) { input, t in
            defer { calls += 1 }
            let unet: UNet
            if calls == lastIndex && t == lastT {
                first = nil  // release super_res_first before mapping super_res_last
                last = try model.build("super_res_last") { try UNet(scope: $0, config: try .init(try model.config("super_res_last"), conditioned: false)) }
                unet = last!
            } else {
                unet = first!
            }
            return try unet(try Ops.concatLast(input, up), timestep: Float(t))                               // [B, H, W, c]
        }
        return try Tensor(shape: [b, size, size, c], values: x)
    }
}
