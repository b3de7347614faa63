import Foundation

/// diffusers' UnCLIPScheduler (schedulers/scheduling_unclip.py, 0.42.1), in the same float32 arithmetic:
/// squaredcos_cap_v2 betas computed in double and stored as float, alphas_cumprod a cumulative product
/// accumulated in double (PyTorch's CPU cumprod) and stored as float, every step coefficient a float32
/// operation in the reference's order.
public struct UnCLIPScheduler: Sendable {
    public enum VarianceType: String, Sendable { case fixedSmallLog = "fixed_small_log", learnedRange = "learned_range" }
    public enum PredictionType: String, Sendable { case epsilon, sample }

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
        guard (2...100_000).contains(numTrainTimesteps) else {
            throw UnCLIPError.invalidArgument(name: "num_train_timesteps", detail: "\(numTrainTimesteps) must be in 2...100000")
        }
        self.numTrainTimesteps = numTrainTimesteps
        self.varianceType = varianceType
        self.predictionType = predictionType
        self.clipSample = clipSample
        self.clipSampleRange = clipSampleRange
        // betas_for_alpha_bar(cosine), max_beta 0.999 (diffusers scheduling_ddpm.py)
        func alphaBar(_ t: Double) -> Double { pow(cos((t + 0.008) / 1.008 * Double.pi / 2), 2) }
        let n = numTrainTimesteps
        betas = (0..<n).map { i in Float(min(1 - alphaBar(Double(i + 1) / Double(n)) / alphaBar(Double(i) / Double(n)), 0.999)) }
        alphas = betas.map { 1 - $0 }
        var acc = 1.0
        alphasCumprod = alphas.map { a in
            acc *= Double(a)
            return Float(acc)
        }
    }

    /// From a scheduler_config.json (unknown keys ignored; known keys validated).
    public init(config: JSON) throws {
        func str(_ k: String) -> String? { config[k]?.string }
        let vt = try str("variance_type").map { s -> VarianceType in
            guard let v = VarianceType(rawValue: s) else { throw UnCLIPError.invalidArgument(name: "variance_type", detail: "'\(s)' is not fixed_small_log or learned_range") }
            return v
        } ?? .fixedSmallLog
        let pt = try str("prediction_type").map { s -> PredictionType in
            guard let v = PredictionType(rawValue: s) else { throw UnCLIPError.invalidArgument(name: "prediction_type", detail: "'\(s)' is not epsilon or sample") }
            return v
        } ?? .epsilon
        if let b = str("beta_schedule"), b != "squaredcos_cap_v2" {
            throw UnCLIPError.invalidArgument(name: "beta_schedule", detail: "'\(b)' is not supported by UnCLIPScheduler (squaredcos_cap_v2)")
        }
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
