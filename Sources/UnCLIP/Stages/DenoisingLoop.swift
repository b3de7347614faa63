import Foundation

/// Progress of a run: stage, step (1-based) and total; return false to cancel.
public typealias ProgressHandler = (_ stage: String, _ step: Int, _ total: Int) -> Bool

public struct CancelledError: Error, CustomStringConvertible {
    public init() {}
    public var description: String { "generation cancelled" }
}

/// Where a step of the loop is: its index, the timestep the model saw, the timestep the new sample is at
/// (−1: x₀), the schedule, and which images of the stage's batch the sample holds (a batch may run in chunks).
public struct StepInfo: Sendable {
    public let index: Int
    public let timestep: Int
    public let target: Int
    public let timesteps: [Int]
    public let images: Range<Int>
    /// Which run of the step this is (0 without resampling; 0…r−1 with `resamples` = r).
    public let resample: Int
}

/// Called after every step with the new sample (B images in the engine's layout); may change it — known-region
/// replacement and resampling for inpainting plug in here.
public typealias StepHook = (_ step: StepInfo, _ sample: inout [Float]) throws -> Void

/// The denoising loop every stage runs (diffusers' pipelines write it out per stage): classifier-free guidance
/// over a [uncond; cond] batch, the scheduler's step, named noise draws `<stage>.noise.<i>` (the noise-file
/// contract), progress and cancellation, and a per-step hook.
public struct DenoisingLoop {
    public let stage: String
    public let scheduler: any Scheduler
    public let timesteps: [Int]
    /// Classifier-free guidance scale, or nil: the model sees the B samples alone.
    public let guidance: Float?
    /// One image's shape in the engine's layout: [E] for embeddings, [h, w, c] for images; its last entry is the
    /// sample's channels.
    public let itemShape: [Int]
    /// One image's shape in the noise file (NCHW): [E] or [c, h, w].
    public let noiseShape: [Int]
    public var progress: ProgressHandler?
    public var onStep: StepHook?
    /// RePaint's resampling (Lugmayr et al. 2022, jump length 1): each step but the last is run this many times; between
    /// runs the sample is noised back from the step's target timestep to its own, x_t = √(ᾱ_t/ᾱ_s)·x_s + √(1 − ᾱ_t/ᾱ_s)·z
    /// (the draw `<stage>.resample.<i>.<k>`), so the hook's known-region replacement and the model's prediction
    /// can agree. 1 = plain sampling.
    public var resamples = 1
    /// Fixed-point refinement of each step (for inversion: AIDI, Pan et al. 2023; ReNoise, Garibi et al. 2024): the
    /// model is called again at the step's own output x′ and the step redone from the same x with that prediction,
    /// n − 1 times, so the step uses ε(x′, t) — the prediction the reverse step from x′ will see — instead of ε(x, t).
    /// 1 = the plain step. Not combined with resampling.
    public var fixedPointIterations = 1

    public init(stage: String, scheduler: any Scheduler, steps: Int, guidance: Float?, itemShape: [Int], noiseShape: [Int],
                progress: ProgressHandler? = nil, onStep: StepHook? = nil) throws {
        self.stage = stage
        self.scheduler = scheduler
        timesteps = try scheduler.timesteps(steps)
        self.guidance = guidance
        self.itemShape = itemShape
        self.noiseShape = noiseShape
        self.progress = progress
        self.onStep = onStep
    }

    /// Runs the loop from `latents` (B items). `model` gets the model input [B', itemShape] (B' = 2B with guidance:
    /// the samples twice, unconditional rows first) and the timestep, and returns [B', positions…, oc] with oc = the
    /// sample's channels or twice that (ε and a predicted variance, channel-last).
    /// `steps`: a sub-range of the schedule (a stage that changes models part-way runs it in pieces); `images`: which
    /// images of the stage's batch these are (for the hook); `progressIndex`: the (done, total) progress reports for
    /// a step when the stage runs the loop in several pieces (default: step i + 1 of the schedule).
    public func run(latents: [Float], batch b: Int, noise: NoiseSet, steps: Range<Int>? = nil, images: Range<Int>? = nil,
                    progressIndex: ((_ step: Int) -> (done: Int, total: Int))? = nil,
                    model: (_ input: Tensor, _ timestep: Int) throws -> Tensor) throws -> [Float] {
        let per = itemShape.reduce(1, *), c = itemShape.last!
        let n = b * per
        precondition(latents.count == n, "\(stage): latents \(latents.count) for \(b) × \(itemShape)")
        var x = latents
        try requireFinite(x, stage: stage, "the initial latents")
        for i in steps ?? timesteps.indices {
            let t = timesteps[i]
            if let progress {
                let (done, total) = progressIndex?(i) ?? (i + 1, timesteps.count)
                if !progress(stage, done, total) { throw CancelledError() }
            }
            for k in 0..<max(1, resamples) {
                let rows = guidance == nil ? b : 2 * b
                let z = scheduler.drawsNoise(step: i, timesteps: timesteps)
                    ? try noise.draw(k == 0 ? "\(stage).noise.\(i)" : "\(stage).noise.\(i).\(k)", itemShape: noiseShape) : nil
                let target = scheduler.targetTimestep(step: i, timesteps: timesteps)
                var next = x
                for j in 0..<max(1, fixedPointIterations) {
                    let at = j == 0 ? x : next
                    let input = try Tensor(shape: [rows] + itemShape, values: guidance == nil ? at : at + at)  // [B', …, c]
                    let out = try model(input, t).toArray()                                                 // [B', …, oc]
                    let oc = out.count / (rows * per / c)
                    try require(out.count == rows * (per / c) * oc && (oc == c || oc == 2 * c), stage,
                                "the model returned \(out.count) values for \(rows) × \(itemShape)")
                    let (eps, variance) = try Self.split(out, positions: n / c, channels: c, outChannels: oc, guidance: guidance)
                    next = try scheduler.step(modelOutput: eps, predictedVariance: scheduler.usesPredictedVariance ? variance : nil,
                                              step: i, timesteps: timesteps, sample: x, noise: z)
                }
                x = next
                try requireFinite(x, stage: stage, "the sample after step \(i + 1) of \(timesteps.count) (timestep \(t))")
                if let onStep {
                    try onStep(StepInfo(index: i, timestep: t, target: target, timesteps: timesteps, images: images ?? 0..<b, resample: k), &x)
                }
                guard k + 1 < resamples, target >= 0, target < t else { break }
                // back up the chain from `target` to t (q(x_t | x_target))
                let ratio = scheduler.alphasCumprod[t] / scheduler.alphasCumprod[target]
                let (a, s) = (ratio.squareRoot(), (1 - ratio).squareRoot())
                let r = try noise.draw("\(stage).resample.\(i).\(k)", itemShape: noiseShape)
                x = (0..<x.count).map { a * x[$0] + s * r[$0] }
            }
        }
        return x
    }

    /// The model output's first `channels` per position (ε or x₀), guided as u + g·(c − u) over the two halves,
    /// and its other channels (the predicted variance, from the conditional half) when it has them.
    static func split(_ out: [Float], positions n: Int, channels c: Int, outChannels oc: Int,
                      guidance: Float?) throws -> (eps: [Float], variance: [Float]?) {
        func channels(_ base: Int, _ lo: Int, _ hi: Int) -> [Float] {
            if lo == 0 && hi == oc { return Array(out[base..<(base + n * oc)]) }
            var r = [Float]()
            r.reserveCapacity(n * (hi - lo))
            for p in 0..<n { for ch in lo..<hi { r.append(out[base + p * oc + ch]) } }
            return r
        }
        let half = n * oc
        guard let g = guidance else {
            return (channels(0, 0, c), oc == 2 * c ? channels(0, c, 2 * c) : nil)
        }
        let u = channels(0, 0, c), cond = channels(half, 0, c)
        let guided = (0..<(n * c)).map { u[$0] + g * (cond[$0] - u[$0]) }
        return (guided, oc == 2 * c ? channels(half, c, 2 * c) : nil)
    }
}

/// The noise of a batch: one source per image (seeds s, s+1, …: an image's draws do not depend on the others in
/// its batch), or one source for the whole batch (a noise file recorded with batch B).
public struct NoiseSet {
    public let sources: [NoiseSource]
    public let batch: Int

    public init(_ sources: [NoiseSource], batch: Int) throws {
        guard sources.count == batch || sources.count == 1 else {
            throw UnCLIPError.invalidArgument(name: "noise", detail: "\(sources.count) noise sources for \(batch) images")
        }
        self.sources = sources
        self.batch = batch
    }

    /// Seeded sources for seed, seed+1, … (wrapping at 2⁶⁴).
    public static func seeded(_ seed: UInt64, count: Int) throws -> NoiseSet {
        try NoiseSet((0..<count).map { SeededNoise(seed: seed &+ UInt64($0)) }, batch: count)
    }

    /// The noise of images `r`: their own sources, or the rows r of a replayed batch (a seeded source shared by the
    /// batch cannot be split: its draws depend on the order).
    public func slice(_ r: Range<Int>) throws -> NoiseSet {
        if r == 0..<batch { return self }
        guard splittable, r.lowerBound >= 0, r.upperBound <= batch else {
            throw UnCLIPError.invalidArgument(name: "noise", detail: "noise for \(batch) images cannot give images \(r)")
        }
        if sources.count == batch { return try NoiseSet(Array(sources[r]), batch: r.count) }
        return try NoiseSet([RowsOfBatch(sources[0], batch: batch, rows: r)], batch: r.count)
    }

    /// Independent draws for another run of a stage (the prior's candidates), named `label`: each source's fork
    /// (`NoiseSource.fork`); the draws of `self` are not changed by it.
    public func fork(_ label: String) throws -> NoiseSet {
        try NoiseSet(sources.map { $0.fork(label) }, batch: batch)
    }

    /// Whether the batch may run in chunks (each image has its own source, or the batch's draws are replayed).
    public var splittable: Bool { sources.count == batch || sources[0].replayed }

    /// `name` for the whole batch in the engine's layout; `itemShape` is one image's NCHW shape ([E] or [c, h, w]).
    public func draw(_ name: String, itemShape: [Int]) throws -> [Float] {
        if sources.count == 1 { return try sources[0].draw(name, shape: [batch] + itemShape) }
        return try sources.flatMap { try $0.draw(name, shape: [1] + itemShape) }
    }
}

/// A batch in chunks of at most `limit` images (one chunk when the noise cannot be split): memory grows with the
/// chunk, not the batch; results do not change, since every image's computation is independent of the others.
enum BatchChunks {
    static func chunks(batch b: Int, limit: Int, noise: NoiseSet) -> [Range<Int>] {
        let step = noise.splittable ? max(1, limit) : b
        return stride(from: 0, to: b, by: step).map { $0..<min($0 + step, b) }
    }

    /// `body(chunk index, chunk count, images)`; the outputs concatenated in image order.
    static func run(batch b: Int, limit: Int, noise: NoiseSet, _ body: (Int, Int, Range<Int>) throws -> [Float]) throws -> [Float] {
        let cs = chunks(batch: b, limit: limit, noise: noise)
        var out: [Float] = []
        for (k, r) in cs.enumerated() { out += try body(k, cs.count, r) }
        return out
    }
}

/// Every draw of `source` under `prefix + name` (a replayed source's fork).
final class RenamedNoise: NoiseSource {
    let source: NoiseSource, prefix: String
    init(_ source: NoiseSource, prefix: String) { (self.source, self.prefix) = (source, prefix) }
    func draw(_ name: String, shape: [Int]) throws -> [Float] { try source.draw(prefix + name, shape: shape) }
    func fork(_ label: String) -> NoiseSource { RenamedNoise(source, prefix: prefix + label + "/") }
    var replayed: Bool { source.replayed }
}

/// Rows `rows` of every draw of a replayed batch (one image's rows are contiguous in the engine's layout).
final class RowsOfBatch: NoiseSource {
    let source: NoiseSource, batch: Int, rows: Range<Int>
    init(_ source: NoiseSource, batch: Int, rows: Range<Int>) { (self.source, self.batch, self.rows) = (source, batch, rows) }

    func draw(_ name: String, shape: [Int]) throws -> [Float] {
        let all = try source.draw(name, shape: [batch] + shape.dropFirst())
        let per = all.count / batch
        return Array(all[(rows.lowerBound * per)..<(rows.upperBound * per)])
    }
    func fork(_ label: String) -> NoiseSource { RowsOfBatch(source.fork(label), batch: batch, rows: rows) }
    var replayed: Bool { source.replayed }
}
