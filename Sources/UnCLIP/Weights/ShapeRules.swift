import Foundation

/// Tensors whose shapes follow from a component's config.json: checked at conversion so that a config and its
/// weights that disagree are refused by name. Keyed by the class name in model_index.json.
enum ShapeRules {
    static func expected(className: String, config c: JSON) -> [(String, [Int])] {
        func i(_ k: String) -> Int? { c[k]?.int.map(Int.init) }
        func ints(_ k: String) -> [Int]? { c[k]?.array?.compactMap { $0.int.map(Int.init) } }
        var out: [(String, [Int])] = []
        switch className {
        case "CLIPTextModelWithProjection", "CLIPTextModel":
            if let v = i("vocab_size"), let h = i("hidden_size") { out.append(("text_model.embeddings.token_embedding.weight", [v, h])) }
            if let p = i("max_position_embeddings"), let h = i("hidden_size") { out.append(("text_model.embeddings.position_embedding.weight", [p, h])) }
            if let m = i("intermediate_size"), let h = i("hidden_size"), let l = i("num_hidden_layers"), l > 0 {
                out.append(("text_model.encoder.layers.\(l - 1).mlp.fc1.weight", [m, h]))
            }
            if let p = i("projection_dim"), let h = i("hidden_size"), className.hasSuffix("Projection") { out.append(("text_projection.weight", [p, h])) }
        case "CLIPVisionModelWithProjection", "CLIPVisionModel":
            if let h = i("hidden_size"), let p = i("patch_size"), let ch = i("num_channels") ?? 3 as Int? {
                out.append(("vision_model.embeddings.patch_embedding.weight", [h, ch, p, p]))
            }
            if let m = i("intermediate_size"), let h = i("hidden_size"), let l = i("num_hidden_layers"), l > 0 {
                out.append(("vision_model.encoder.layers.\(l - 1).mlp.fc1.weight", [m, h]))
            }
            if let p = i("projection_dim"), let h = i("hidden_size"), className.hasSuffix("Projection") { out.append(("visual_projection.weight", [p, h])) }
        case "PriorTransformer":
            if let heads = i("num_attention_heads"), let d = i("attention_head_dim"), let e = i("embedding_dim") {
                let inner = heads * d
                out.append(("proj_in.weight", [inner, e]))
                out.append(("proj_to_clip_embeddings.weight", [e, inner]))
                if let n = i("num_embeddings"), let a = i("additional_embeddings") { out.append(("positional_embedding", [1, n + a, inner])) }
                if let l = i("num_layers"), l > 0 { out.append(("transformer_blocks.\(l - 1).attn1.to_q.weight", [inner, inner])) }
            }
        case "UnCLIPTextProjModel":
            if let t = i("clip_extra_context_tokens"), let x = i("cross_attention_dim"), let e = i("clip_embeddings_dim") {
                out.append(("clip_extra_context_tokens_proj.weight", [t * x, e]))
            }
            if let tm = i("time_embed_dim"), let e = i("clip_embeddings_dim") { out.append(("embedding_proj.weight", [tm, e])) }
        case "UNet2DConditionModel", "UNet2DModel":
            if let ch = ints("block_out_channels"), let c0 = ch.first, let inC = i("in_channels"), let outC = i("out_channels") {
                out.append(("conv_in.weight", [c0, inC, 3, 3]))
                out.append(("conv_out.weight", [outC, c0, 3, 3]))
                out.append(("time_embedding.linear_1.weight", [i("time_embedding_dim") ?? 4 * c0, c0]))
            }
        default: break
        }
        return out
    }
}
