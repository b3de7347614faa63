import Foundation

/// diffusers' DDIMInverseScheduler (schedulers/scheduling_ddim_inverse.py, 0.42.1): deterministic DDIM run
/// backwards, x₀ → x_T, on Karlo's squaredcos_cap_v2 betas. Timesteps ascend; the step at t moves the sample from
/// s = min(t − T / n, T − 1) (ᾱ_s = 1 with set_alpha_to_one when s < 0, else ᾱ₀) up to t, with the model evaluated
/// at t — diffusers' arithmetic, float32.
public struct DDIMInverseScheduler: Scheduler {
    public static let reference = "diffusers.DDIMInverseScheduler (0.42.1)"

    public let numTrainTimesteps: Int
    public let predictionType: PredictionType
    public let clipSample: Bool
    public let clipSampleRange: Float
    public let setAlphaToOne: Bool
    public let stepsOffset: Int
    public let timestepSpacing: TimestepSpacing
    public let alphasCumprod: [Float]
    public let initialAlphaCumprod: Float

    public init(numTrainTimesteps: Int = 1000, predictionType: PredictionType = .epsilon, clipSample: Bool = true,
                clipSampleRange: Float = 1, setAlphaToOne: Bool = true, stepsOffset: Int = 0,
                timestepSpacing: TimestepSpacing = .leading) throws {
        try CosineSchedule.checkTrainTimesteps(numTrainTimesteps)
        guard timestepSpacing != .linspace else {
            throw UnCLIPError.invalidArgument(name: "timestep_spacing", detail: "DDIMInverseScheduler supports leading and trailing")
        }
        guard (0...1000).contains(stepsOffset) else { throw UnCLIPError.invalidArgument(name: "steps_offset", detail: "\(stepsOffset) must be in 0...1000") }
        self.numTrainTimesteps = numTrainTimesteps
        self.predictionType = predictionType
        self.clipSample = clipSample
        self.clipSampleRange = clipSampleRange
        self.setAlphaToOne = setAlphaToOne
        self.stepsOffset = stepsOffset
        self.timestepSpacing = timestepSpacing
        alphasCumprod = CosineSchedule.cumprod(CosineSchedule.betas(numTrainTimesteps).map { 1 - $0 })
        initialAlphaCumprod = setAlphaToOne ? 1 : alphasCumprod[0]
    }

    /// The inverse of a DDIM sampler over the same stage config: its spacing, offset and set_alpha_to_one.
    public init(config: JSON, options: DDIMScheduler.Options = .init()) throws {
        try CosineSchedule.checkBetaSchedule(config, for: "DDIMInverseScheduler")
        try self.init(numTrainTimesteps: Int(config["num_train_timesteps"]?.int ?? 1000),
                      predictionType: try options.predictionType ?? PredictionType.parse(config),
                      clipSample: options.clipSample ?? config["clip_sample"]?.bool ?? true,
                      clipSampleRange: Float(config["clip_sample_range"]?.double ?? 1), setAlphaToOne: options.setAlphaToOne,
                      stepsOffset: options.stepsOffset, timestepSpacing: options.timestepSpacing)
    }

    public var initNoiseSigma: Float { 1 }
    public var usesPredictedVariance: Bool { false }

    public func timesteps(_ count: Int) throws -> [Int] {
        try DDIMTimesteps.check(count, train: numTrainTimesteps)
        switch timestepSpacing {
        case .leading:
            let ratio = numTrainTimesteps / count
            return (0..<count).map { $0 * ratio + stepsOffset }
        case .trailing, .linspace:
            return try DDIMTimesteps.trailingArange(count, train: numTrainTimesteps).reversed().map { Int($0.rounded(.toNearestOrEven)) - 1 }
        }
    }

    public func drawsNoise(step index: Int, timesteps: [Int]) -> Bool { false }

    /// The inverse step lands on the timestep it was called with.
    public func targetTimestep(step index: Int, timesteps: [Int]) -> Int { timesteps[index] }

    public func step(modelOutput: [Float], predictedVariance: [Float]?, step index: Int, timesteps: [Int], sample: [Float],
                     noise: [Float]?) throws -> [Float] {
        try checkCounts(modelOutput, sample, noise, needsNoise: false)
        let target = timesteps[index]
        guard (0..<numTrainTimesteps).contains(target) else {
            throw UnCLIPError.invalidArgument(name: "timestep", detail: "\(target) is outside 0..<\(numTrainTimesteps)")
        }
        let from = min(target - numTrainTimesteps / timesteps.count, numTrainTimesteps - 1)
        let alphaProdT = from >= 0 ? alphasCumprod[from] : initialAlphaCumprod
        let alphaProdNext = alphasCumprod[target]
        let betaProdT = 1 - alphaProdT
        guard predictionType == .epsilon || betaProdT > 0 else {
            throw UnCLIPError.invalidArgument(name: "set_alpha_to_one", detail: "with prediction_type sample the first inverse step divides by 1 − ᾱ = 0 (diffusers returns NaN there); invert with set_alpha_to_one false")
        }
        return DDIMUpdate(predictionType: predictionType, clipSample: clipSample, clipSampleRange: clipSampleRange, alphaProdT: alphaProdT)(
            modelOutput: modelOutput, sample: sample, sqrtTarget: alphaProdNext.squareRoot(), dirCoeff: (1 - alphaProdNext).squareRoot())
    }
}
