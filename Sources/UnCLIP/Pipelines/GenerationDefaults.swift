import Foundation

/// A model's own generation defaults: an optional `"_unclip_generation_defaults"` object in its model_index.json
/// (stored in the GGUF as `unclip.model_index`), keyed by the UnCLIPPipeline argument names —
/// `prior_num_inference_steps`, `decoder_num_inference_steps`, `super_res_num_inference_steps`,
/// `prior_guidance_scale`, `decoder_guidance_scale`. diffusers ignores keys that start with "_", so the hub directory
/// stays loadable there. Flags given on the command line override these; absent keys keep diffusers' defaults.
extension GenerationOptions {
    public static let modelDefaultsKey = "_unclip_generation_defaults"

    /// diffusers' defaults overridden by the model file's own, if it has any (a bad value is a typed error).
    public init(defaultsOf model: ModelFile) throws {
        self.init()
        guard let text = model.gguf.value(UnCLIPGGUF.modelIndex)?.string else { return }
        let bad = { (detail: String) in WeightsError(.malformed, file: model.path, "\(Self.modelDefaultsKey) in its model_index.json: \(detail)") }
        guard let index = try? JSON.parse(text), let d = index[Self.modelDefaultsKey] else { return }
        guard let members = d.object else { throw bad("is not a JSON object") }
        for (key, value) in members {
            func integer() throws -> Int {
                guard let v = value.int else { throw bad("\(key) must be an integer") }
                return Int(v)
            }
            func number() throws -> Float {
                guard let v = value.double else { throw bad("\(key) must be a number") }
                return Float(v)
            }
            switch key {
            case "prior_num_inference_steps": priorSteps = try integer()
            case "decoder_num_inference_steps": decoderSteps = try integer()
            case "super_res_num_inference_steps": superResSteps = try integer()
            case "prior_guidance_scale": priorGuidance = try number()
            case "decoder_guidance_scale": decoderGuidance = try number()
            default: throw bad("unknown key \"\(key)\" (known: the UnCLIPPipeline argument names of steps and guidance)")
            }
        }
        // The ranges the pipeline accepts (GenerationOptions.validate), reported against the model file.
        do { try validate() } catch { throw bad("\(error)") }
    }
}
