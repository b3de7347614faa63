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
            switch key {
            case "prior_num_inference_steps", "decoder_num_inference_steps", "super_res_num_inference_steps":
                guard let v = value.int, (2...1000).contains(v) else { throw bad("\(key) must be an integer in 2...1000") }
                switch key {
                case "prior_num_inference_steps": priorSteps = Int(v)
                case "decoder_num_inference_steps": decoderSteps = Int(v)
                default: superResSteps = Int(v)
                }
            case "prior_guidance_scale", "decoder_guidance_scale":
                guard let v = value.double, v.isFinite, (0...100).contains(v) else { throw bad("\(key) must be a number in 0...100") }
                if key == "prior_guidance_scale" { priorGuidance = Float(v) } else { decoderGuidance = Float(v) }
            default:
                throw bad("unknown key \"\(key)\" (known: the UnCLIPPipeline argument names of steps and guidance)")
            }
        }
    }
}
