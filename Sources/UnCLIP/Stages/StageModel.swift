import Foundation

/// What every stage needs from a model file: its configs, and building a module from a component (mapped when the
/// stage starts; the pages its packed weights were copied from are released at once, the rest when the module goes).
public struct StageModel: @unchecked Sendable {
    public let file: ModelFile

    public init(_ file: ModelFile) { self.file = file }

    public func config(_ c: String) throws -> JSON {
        guard let j = file.config(c) else { throw WeightsError(.malformed, file: file.path, "component '\(c)' has no config") }
        return j
    }

    public func require(_ components: [String], for what: String) throws {
        for c in components where !file.components.contains(c) {
            throw WeightsError(.malformed, file: file.path,
                               "has no '\(c)' component, which \(what) needs (it has: \(file.components.joined(separator: ", ")))")
        }
    }

    /// Maps a component, builds its module, then lets go of the pages its packed weights were copied from.
    public func build<M>(_ component: String, _ make: (ComponentScope) throws -> M) throws -> M {
        let scope = try file.load(component)
        let m = try make(scope)
        scope.releasePackedSources()
        return m
    }
}

/// Which sampler a stage runs: the model's own UnCLIPScheduler (its scheduler config), or DDIM over the same
/// betas and config.
public enum Sampler: Sendable, Equatable {
    case unclip
    case ddim(DDIMScheduler.Options)

    public var name: String {
        switch self {
        case .unclip: return "unclip"
        case .ddim: return "ddim"
        }
    }

    /// The settings that reproduce the sampler (recorded in image metadata), in diffusers' names.
    public var settings: [(String, String)] {
        switch self {
        case .unclip: return []
        case .ddim(let o):
            var s = [("eta", "\(o.eta)"), ("timestep_spacing", o.timestepSpacing.rawValue), ("steps_offset", "\(o.stepsOffset)"),
                     ("set_alpha_to_one", "\(o.setAlphaToOne)")]
            if let c = o.clipSample { s.append(("clip_sample", "\(c)")) }
            if let p = o.predictionType { s.append(("prediction_type", p.rawValue)) }
            return s
        }
    }

    /// name and settings in one line: "ddim (eta 0.5, timestep_spacing trailing, …)".
    public var description: String {
        settings.isEmpty ? name : name + " (" + settings.map { "\($0.0) \($0.1)" }.joined(separator: ", ") + ")"
    }

    public func scheduler(config: JSON) throws -> any Scheduler {
        switch self {
        case .unclip: return try UnCLIPScheduler(config: config)
        case .ddim(let o): return try DDIMScheduler(config: config, options: o)
        }
    }
}

/// One stage's sampling settings.
public struct SamplingSettings: Sendable {
    public var steps: Int
    public var sampler: Sampler
    /// Classifier-free guidance scale; nil runs the model on the samples alone.
    public var guidance: Float?
    /// The most images one model call takes (larger batches run in chunks); nil: the stage's default
    /// (`SamplingSettings.defaultBatchPixels` rows × pixels).
    public var maxBatch: Int?
    /// RePaint resampling per step (DenoisingLoop.resamples; 1 = none).
    public var resamples = 1
    public init(steps: Int, sampler: Sampler = .unclip, guidance: Float? = nil, maxBatch: Int? = nil, resamples: Int = 1) {
        (self.steps, self.sampler, self.guidance, self.maxBatch, self.resamples) = (steps, sampler, guidance, maxBatch, resamples)
    }

    /// The default chunk: at most 8 images of 64×64 per call (8 at the decoder's 64², 1 at super-res 256²).
    public static let defaultBatchPixels = 8 * 64 * 64

    func batchLimit(pixels: Int) -> Int { maxBatch ?? max(1, Self.defaultBatchPixels / max(pixels, 1)) }
}
