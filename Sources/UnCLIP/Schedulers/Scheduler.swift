import Foundation

/// A diffusion sampler over a model's training schedule (diffusers' SchedulerMixin, reduced to what the
/// denoising loop needs). Schedulers are values: `timesteps(_:)` is diffusers' `set_timesteps` and returns the
/// timesteps the loop visits in order; `step` is one update of the sample at `timesteps[index]`.
/// Every array is a sample's values in the engine's layout (NHWC images, [B, E] embeddings); the arithmetic is
/// elementwise, so the layout does not matter to a scheduler.
public protocol Scheduler: Sendable {
    /// The diffusers class this type reproduces, with the version its arithmetic was checked against.
    static var reference: String { get }
    var numTrainTimesteps: Int { get }
    /// ᾱ_t for t in 0..<numTrainTimesteps, float32 as the reference stores them.
    var alphasCumprod: [Float] { get }
    /// The initial noise's scale (1 for every scheduler here).
    var initNoiseSigma: Float { get }
    /// Whether `step` reads the model's predicted variance (a learned_range decoder's extra channels).
    var usesPredictedVariance: Bool { get }

    /// diffusers' `set_timesteps(count)`: the timesteps in the order the loop visits them.
    func timesteps(_ count: Int) throws -> [Int]
    /// Whether step `index` adds fresh noise, so the loop must draw `<stage>.noise.<index>` for it.
    func drawsNoise(step index: Int, timesteps: [Int]) -> Bool
    /// The timestep the sample is at after step `index` (−1: the clean sample x₀).
    func targetTimestep(step index: Int, timesteps: [Int]) -> Int
    /// One update: the model's output (ε or x₀, as the config's prediction type says) at `timesteps[index]`,
    /// the current sample and, where `drawsNoise`, the noise draw → the next sample.
    func step(modelOutput: [Float], predictedVariance: [Float]?, step index: Int, timesteps: [Int], sample: [Float],
              noise: [Float]?) throws -> [Float]
}

extension Scheduler {
    /// Forward noising q(x_t | x₀) = √ᾱ_t·x₀ + √(1 − ᾱ_t)·ε (diffusers' `add_noise`, float32; t = −1 returns x₀).
    public func addNoise(_ original: [Float], noise: [Float], timestep t: Int) throws -> [Float] {
        guard original.count == noise.count else {
            throw UnCLIPError.shapeMismatch(operation: "\(Self.self).addNoise", detail: "\(original.count) values vs \(noise.count) noise values")
        }
        guard t < numTrainTimesteps else {
            throw UnCLIPError.invalidArgument(name: "timestep", detail: "\(t) must be below \(numTrainTimesteps)")
        }
        if t < 0 { return original }
        let a = alphasCumprod[t].squareRoot(), s = (1 - alphasCumprod[t]).squareRoot()
        return (0..<original.count).map { a * original[$0] + s * noise[$0] }
    }

    func checkCounts(_ modelOutput: [Float], _ sample: [Float], _ noise: [Float]?, needsNoise: Bool) throws {
        guard modelOutput.count == sample.count else {
            throw UnCLIPError.shapeMismatch(operation: "\(Self.self).step", detail: "model output \(modelOutput.count) vs sample \(sample.count)")
        }
        if needsNoise, noise?.count != sample.count {
            throw UnCLIPError.shapeMismatch(operation: "\(Self.self).step", detail: "this step needs \(sample.count) noise values")
        }
    }
}

/// The betas every Karlo scheduler uses: squaredcos_cap_v2 (betas_for_alpha_bar with the cosine transform,
/// max_beta 0.999 — diffusers scheduling_ddpm.py), computed in double and stored as float; ᾱ a cumulative
/// product accumulated in double (PyTorch's CPU cumprod) and stored as float.
enum CosineSchedule {
    static func betas(_ n: Int) -> [Float] {
        func alphaBar(_ t: Double) -> Double { pow(cos((t + 0.008) / 1.008 * Double.pi / 2), 2) }
        return (0..<n).map { i in Float(min(1 - alphaBar(Double(i + 1) / Double(n)) / alphaBar(Double(i) / Double(n)), 0.999)) }
    }

    static func cumprod(_ alphas: [Float]) -> [Float] {
        var acc = 1.0
        return alphas.map { a in
            acc *= Double(a)
            return Float(acc)
        }
    }

    static func checkTrainTimesteps(_ n: Int) throws {
        guard (2...100_000).contains(n) else {
            throw UnCLIPError.invalidArgument(name: "num_train_timesteps", detail: "\(n) must be in 2...100000")
        }
    }

    /// The config's beta_schedule must be Karlo's (the only one implemented).
    static func checkBetaSchedule(_ config: JSON, for type: String) throws {
        if let b = config["beta_schedule"]?.string, b != "squaredcos_cap_v2" {
            throw UnCLIPError.invalidArgument(name: "beta_schedule", detail: "'\(b)' is not supported by \(type) (squaredcos_cap_v2)")
        }
    }
}

/// DDIM's shared step (DDIMScheduler and DDIMInverseScheduler, float32 in diffusers' order): from the model output
/// at ᾱ_t, x₀ and ε (one derived from the other as the prediction type says), x₀ clipped, then
/// x' = √ᾱ'·x₀ + dirCoeff·ε (+ std·noise).
struct DDIMUpdate {
    let predictionType: PredictionType
    let clipSample: Bool, clipSampleRange: Float
    let alphaProdT: Float

    func callAsFunction(modelOutput: [Float], sample: [Float], sqrtTarget: Float, dirCoeff: Float,
                        std: Float = 0, noise: [Float]? = nil) -> [Float] {
        let sqrtA = alphaProdT.squareRoot(), sqrtB = (1 - alphaProdT).squareRoot()
        var out = [Float](repeating: 0, count: sample.count)
        for i in 0..<sample.count {
            var x0: Float, eps: Float
            switch predictionType {
            case .epsilon:
                x0 = (sample[i] - sqrtB * modelOutput[i]) / sqrtA
                eps = modelOutput[i]
            case .sample:
                x0 = modelOutput[i]
                eps = (sample[i] - sqrtA * x0) / sqrtB
            }
            if clipSample { x0 = min(max(x0, -clipSampleRange), clipSampleRange) }
            var x = sqrtTarget * x0 + dirCoeff * eps
            if let noise { x = x + std * noise[i] }
            out[i] = x
        }
        return out
    }
}

/// ε or x₀, as a scheduler config's prediction_type names them.
public enum PredictionType: String, Sendable { case epsilon, sample }

extension PredictionType {
    static func parse(_ config: JSON) throws -> PredictionType {
        guard let s = config["prediction_type"]?.string else { return .epsilon }
        guard let v = PredictionType(rawValue: s) else {
            throw UnCLIPError.invalidArgument(name: "prediction_type", detail: "'\(s)' is not epsilon or sample")
        }
        return v
    }
}
