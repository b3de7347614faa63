import Foundation

/// How a DDIM schedule spaces its timesteps over the training range (diffusers' `timestep_spacing`).
public enum TimestepSpacing: String, Sendable, CaseIterable { case leading, trailing, linspace }

/// diffusers' DDIMScheduler (schedulers/scheduling_ddim.py, 0.42.1) on Karlo's squaredcos_cap_v2 betas, in the same
/// float32 arithmetic: prediction types epsilon and sample, clip_sample, set_alpha_to_one, steps_offset,
/// timestep_spacing, and eta (0: deterministic; > 0: every step draws noise, as diffusers' `variance_noise`).
/// It reads no predicted variance: a learned_range decoder's variance channels are ignored (Song et al. 2021).
public struct DDIMScheduler: Scheduler {
    public static let reference = "diffusers.DDIMScheduler (0.42.1)"

    /// The sampler's own settings (the rest comes from the stage's scheduler config).
    public struct Options: Sendable, Equatable {
        public var eta: Float = 0
        public var timestepSpacing: TimestepSpacing = .leading
        public var stepsOffset = 0
        public var setAlphaToOne = true
        /// nil: the stage config's clip_sample / prediction_type.
        public var clipSample: Bool? = nil
        public var predictionType: PredictionType? = nil
        public init(eta: Float = 0, timestepSpacing: TimestepSpacing = .leading, stepsOffset: Int = 0, setAlphaToOne: Bool = true,
                    clipSample: Bool? = nil, predictionType: PredictionType? = nil) {
            (self.eta, self.timestepSpacing, self.stepsOffset, self.setAlphaToOne) = (eta, timestepSpacing, stepsOffset, setAlphaToOne)
            (self.clipSample, self.predictionType) = (clipSample, predictionType)
        }

        func validate() throws {
            guard eta.isFinite, (0...1).contains(eta) else { throw UnCLIPError.invalidArgument(name: "eta", detail: "\(eta) must be in 0...1") }
            guard (0...1000).contains(stepsOffset) else { throw UnCLIPError.invalidArgument(name: "steps_offset", detail: "\(stepsOffset) must be in 0...1000") }
        }
    }

    public let numTrainTimesteps: Int
    public let options: Options
    public let predictionType: PredictionType
    public let clipSample: Bool
    public let clipSampleRange: Float
    public let alphasCumprod: [Float]
    /// ᾱ after the last step: 1 with set_alpha_to_one, else ᾱ₀.
    public let finalAlphaCumprod: Float

    public init(numTrainTimesteps: Int = 1000, predictionType: PredictionType = .epsilon, clipSample: Bool = true,
                clipSampleRange: Float = 1, options: Options = Options()) throws {
        try CosineSchedule.checkTrainTimesteps(numTrainTimesteps)
        try options.validate()
        self.numTrainTimesteps = numTrainTimesteps
        self.options = options
        self.predictionType = options.predictionType ?? predictionType
        self.clipSample = options.clipSample ?? clipSample
        self.clipSampleRange = clipSampleRange
        alphasCumprod = CosineSchedule.cumprod(CosineSchedule.betas(numTrainTimesteps).map { 1 - $0 })
        finalAlphaCumprod = options.setAlphaToOne ? 1 : alphasCumprod[0]
    }

    /// From a stage's scheduler_config.json (an UnCLIPScheduler's: its num_train_timesteps, clip_sample,
    /// clip_sample_range and prediction_type carry over, as `DDIMScheduler.from_config` does), plus `options`.
    public init(config: JSON, options: Options = Options()) throws {
        try CosineSchedule.checkBetaSchedule(config, for: "DDIMScheduler")
        try self.init(numTrainTimesteps: Int(config["num_train_timesteps"]?.int ?? 1000), predictionType: try PredictionType.parse(config),
                      clipSample: config["clip_sample"]?.bool ?? true, clipSampleRange: Float(config["clip_sample_range"]?.double ?? 1),
                      options: options)
    }

    public var initNoiseSigma: Float { 1 }
    public var usesPredictedVariance: Bool { false }

    public func timesteps(_ count: Int) throws -> [Int] {
        try DDIMTimesteps.descending(count, train: numTrainTimesteps, spacing: options.timestepSpacing, offset: options.stepsOffset)
    }

    public func drawsNoise(step index: Int, timesteps: [Int]) -> Bool { options.eta > 0 }

    /// t − T / n, whatever the spacing (diffusers' rule); −1 stands for every negative value (x₀).
    public func targetTimestep(step index: Int, timesteps: [Int]) -> Int {
        max(timesteps[index] - numTrainTimesteps / timesteps.count, -1)
    }

    public func step(modelOutput: [Float], predictedVariance: [Float]?, step index: Int, timesteps: [Int], sample: [Float],
                     noise: [Float]?) throws -> [Float] {
        let needsNoise = drawsNoise(step: index, timesteps: timesteps)
        try checkCounts(modelOutput, sample, noise, needsNoise: needsNoise)
        let t = timesteps[index], prev = targetTimestep(step: index, timesteps: timesteps)
        guard (0..<numTrainTimesteps).contains(t) else {
            throw UnCLIPError.invalidArgument(name: "timestep", detail: "\(t) is outside 0..<\(numTrainTimesteps)")
        }
        let alphaProdT = alphasCumprod[t]
        let alphaProdPrev = prev >= 0 ? alphasCumprod[prev] : finalAlphaCumprod
        let betaProdT = 1 - alphaProdT
        let variance = ((1 - alphaProdPrev) / betaProdT) * (1 - alphaProdT / alphaProdPrev)       // _get_variance
        let std = options.eta * variance.squareRoot()
        return DDIMUpdate(predictionType: predictionType, clipSample: clipSample, clipSampleRange: clipSampleRange, alphaProdT: alphaProdT)(
            modelOutput: modelOutput, sample: sample, sqrtTarget: alphaProdPrev.squareRoot(), dirCoeff: (1 - alphaProdPrev - std * std).squareRoot(),
            std: std, noise: needsNoise ? noise : nil)
    }
}

/// diffusers' DDIM timestep rules (set_timesteps of DDIMScheduler and DDIMInverseScheduler), numpy's arithmetic.
enum DDIMTimesteps {
    static func check(_ count: Int, train: Int) throws {
        guard (1...train).contains(count) else {
            throw UnCLIPError.invalidArgument(name: "steps", detail: "\(count) must be in 1...\(train)")
        }
    }

    /// The sampling order (high t first).
    static func descending(_ n: Int, train: Int, spacing: TimestepSpacing, offset: Int) throws -> [Int] {
        try check(n, train: train)
        switch spacing {
        case .linspace:
            // np.linspace(0, T − 1, n).round()[::-1]: k·step, the last exactly T − 1, rounded half to even
            let step = n > 1 ? Double(train - 1) / Double(n - 1) : 0
            return (0..<n).map { k in k == n - 1 && n > 1 ? train - 1 : Int((Double(k) * step).rounded(.toNearestOrEven)) }.reversed()
        case .leading:
            let ratio = train / n
            return (0..<n).reversed().map { $0 * ratio + offset }
        case .trailing:
            return try trailingArange(n, train: train).map { Int($0.rounded(.toNearestOrEven)) - 1 }
        }
    }

    /// np.arange(T, 0, −T/n): numpy's length ceil((stop − start)/step), values start + i·(x₁ − x₀). For some n
    /// (61, 103, 121, …, 62 of 2...1000 with T = 1000) numpy's length comes out n + 1 and the extra timestep rounds to
    /// −1, which diffusers then runs as alphas_cumprod[−1]; that is refused here as a typed error.
    static func trailingArange(_ n: Int, train: Int) throws -> [Double] {
        let start = Double(train), step = -(Double(train) / Double(n))
        let count = Int(((0 - start) / step).rounded(.up))
        let delta = (start + step) - start
        guard count == n else {
            throw UnCLIPError.invalidArgument(name: "steps", detail: "trailing timestep spacing with \(n) steps gives \(count) timesteps in diffusers (numpy's arange rounding; the last is −1): choose another step count or spacing")
        }
        return (0..<count).map { i in i == 0 ? start : i == 1 ? start + step : start + Double(i) * delta }
    }
}
