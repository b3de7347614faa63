import Foundation

/// diffusers' UnCLIPScheduler (schedulers/scheduling_unclip.py, 0.42.1), in the same float32 arithmetic:
/// the cosine betas and ᾱ of `CosineSchedule`, every step coefficient a float32 operation in the reference's order.
/// A step at t > 0 always draws noise; the last step (t = 0) does not.
public struct UnCLIPScheduler: Scheduler {
    public static let reference = "diffusers.UnCLIPScheduler (0.42.1)"
    public enum VarianceType: String, Sendable { case fixedSmallLog = "fixed_small_log", learnedRange = "learned_range" }
    public typealias PredictionType = UnCLIP.PredictionType

    public let numTrainTimesteps: Int
    public let varianceType: VarianceType
    public let predictionType: PredictionType
    public let clipSample: Bool
    public let clipSampleRange: Float
    public let betas: [Float]
    public let alphas: [Float]
    public let alphasCumprod: [Float]

    public init(numTrainTimesteps: Int = 1000, varianceType: VarianceType = .fixedSmallLog, predictionType: PredictionType = .epsilon,
                clipSample: Bool = true, clipSampleRange: Float = 1.0) throws {
        try CosineSchedule.checkTrainTimesteps(numTrainTimesteps)
        self.numTrainTimesteps = numTrainTimesteps
        self.varianceType = varianceType
        self.predictionType = predictionType
        self.clipSample = clipSample
        self.clipSampleRange = clipSampleRange
        betas = CosineSchedule.betas(numTrainTimesteps)
        alphas = betas.map { 1 - $0 }
        alphasCumprod = CosineSchedule.cumprod(alphas)
    }

    /// From a scheduler_config.json (unknown keys ignored; known keys validated).
    public init(config: JSON) throws {
        func str(_ k: String) -> String? { config[k]?.string }
        let vt = try str("variance_type").map { s -> VarianceType in
            guard let v = VarianceType(rawValue: s) else { throw UnCLIPError.invalidArgument(name: "variance_type", detail: "'\(s)' is not fixed_small_log or learned_range") }
            return v
        } ?? .fixedSmallLog
        let pt = try PredictionType.parse(config)
        try CosineSchedule.checkBetaSchedule(config, for: "UnCLIPScheduler")
        try self.init(numTrainTimesteps: Int(config["num_train_timesteps"]?.int ?? 1000), varianceType: vt, predictionType: pt,
                      clipSample: config["clip_sample"]?.bool ?? true, clipSampleRange: Float(config["clip_sample_range"]?.double ?? 1.0))
    }

    /// round(k·(T−1)/(n−1)) for k = n−1 … 0, numpy's round-half-even.
    public func timesteps(_ steps: Int) throws -> [Int] {
        guard steps >= 2, steps <= numTrainTimesteps else {
            throw UnCLIPError.invalidArgument(name: "steps", detail: "\(steps) must be in 2...\(numTrainTimesteps)")
        }
        let ratio = Double(numTrainTimesteps - 1) / Double(steps - 1)
        return (0..<steps).map { Int((Double($0) * ratio).rounded(.toNearestOrEven)) }.reversed()
    }

    public var initNoiseSigma: Float { 1 }
    public var usesPredictedVariance: Bool { varianceType == .learnedRange }

    public func drawsNoise(step index: Int, timesteps: [Int]) -> Bool { timesteps[index] > 0 }

    /// The next timestep of the list, and t − 1 after the last (the pipeline's prev_timestep).
    public func targetTimestep(step index: Int, timesteps: [Int]) -> Int {
        index + 1 < timesteps.count ? timesteps[index + 1] : timesteps[index] - 1
    }

    public func step(modelOutput: [Float], predictedVariance: [Float]?, step index: Int, timesteps: [Int], sample: [Float],
                     noise: [Float]?) throws -> [Float] {
        try step(modelOutput: modelOutput, predictedVariance: predictedVariance, t: timesteps[index],
                 prev: targetTimestep(step: index, timesteps: timesteps), sample: sample, noise: noise)
    }

    /// The float32 coefficients of one step t → prev (prev < 0: the final step to x₀).
    public struct StepCoefficients: Sendable {
        public let sqrtBetaProdT: Float, sqrtAlphaProdT: Float
        public let predOriginalCoeff: Float, currentSampleCoeff: Float
        /// fixed_small_log: σ; learned_range: log σ²_min and log β (the variance interpolates between them).
        public let sigma: Float, minLog: Float, maxLog: Float
    }

    public func coefficients(t: Int, prev: Int) -> StepCoefficients {
        let alphaProdT = alphasCumprod[t]
        let alphaProdPrev: Float = prev >= 0 ? alphasCumprod[prev] : 1
        let betaProdT = 1 - alphaProdT, betaProdPrev = 1 - alphaProdPrev
        let beta: Float, alpha: Float
        if prev == t - 1 {
            beta = betas[t]
            alpha = alphas[t]
        } else {
            beta = 1 - alphaProdT / alphaProdPrev
            alpha = 1 - beta
        }
        let variance = betaProdPrev / betaProdT * beta
        return StepCoefficients(
            sqrtBetaProdT: betaProdT.squareRoot(), sqrtAlphaProdT: alphaProdT.squareRoot(),
            predOriginalCoeff: (alphaProdPrev.squareRoot() * beta) / betaProdT,
            currentSampleCoeff: alpha.squareRoot() * betaProdPrev / betaProdT,
            sigma: expf(0.5 * logf(max(variance, 1e-20))),
            minLog: logf(variance), maxLog: logf(beta))
    }

    /// One step: x_prev from the model output (ε or x₀), the sample x_t, and (t > 0) the noise z; for learned_range
    /// the predicted variance v ∈ [−1, 1] per element. All arrays have the sample's element count and layout.
    public func step(modelOutput: [Float], predictedVariance: [Float]?, t: Int, prev: Int, sample: [Float], noise: [Float]?) throws -> [Float] {
        guard modelOutput.count == sample.count else {
            throw UnCLIPError.shapeMismatch(operation: "UnCLIPScheduler.step", detail: "model output \(modelOutput.count) vs sample \(sample.count)")
        }
        let c = coefficients(t: t, prev: prev)
        let range = clipSampleRange
        var out = [Float](repeating: 0, count: sample.count)
        if t > 0 {
            guard let noise, noise.count == sample.count else {
                throw UnCLIPError.shapeMismatch(operation: "UnCLIPScheduler.step", detail: "step \(t) needs \(sample.count) noise values")
            }
            if varianceType == .learnedRange, predictedVariance?.count != sample.count {
                throw UnCLIPError.shapeMismatch(operation: "UnCLIPScheduler.step", detail: "learned_range needs the predicted variance")
            }
        }
        for i in 0..<sample.count {
            var x0: Float
            switch predictionType {
            case .epsilon: x0 = (sample[i] - c.sqrtBetaProdT * modelOutput[i]) / c.sqrtAlphaProdT
            case .sample: x0 = modelOutput[i]
            }
            if clipSample { x0 = min(max(x0, -range), range) }
            var x = c.predOriginalCoeff * x0 + c.currentSampleCoeff * sample[i]
            if t > 0, let noise {
                let sigma: Float
                switch varianceType {
                case .fixedSmallLog: sigma = c.sigma
                case .learnedRange:
                    let frac = (predictedVariance![i] + 1) / 2
                    sigma = expf(0.5 * (frac * c.maxLog + (1 - frac) * c.minLog))
                }
                x = x + sigma * noise[i]
            }
            out[i] = x
        }
        return out
    }
}
