/// diffusers' UnCLIPTextProjModel (pipelines/deprecated/unclip/text_proj.py): the decoder's conditioning from the
/// CLIP image embedding, the prompt embedding and the text hidden states.
public final class UnCLIPTextProjModel: @unchecked Sendable {
    public struct Config: Sendable {
        public let extraTokens, clipDim, timeEmbedDim, crossAttentionDim: Int
        public init(_ c: JSON) throws {
            func int(_ k: String) throws -> Int { try c.positiveInt(k, in: "text_proj") }
            extraTokens = Int(c["clip_extra_context_tokens"]?.int ?? 4)
            clipDim = try int("clip_embeddings_dim")
            timeEmbedDim = try int("time_embed_dim")
            crossAttentionDim = try int("cross_attention_dim")
            guard (1...64).contains(extraTokens) else { throw UnCLIPError.invalidArgument(name: "text_proj config", detail: "clip_extra_context_tokens = \(extraTokens)") }
        }
    }

    public let config: Config
    let cfgEmbedding: Tensor
    let embeddingProj, imageToTime, extraTokensProj, hiddenProj: LinearWeight
    let normG, normB: Tensor

    public init(scope s: ComponentScope, config: Config) throws {
        self.config = config
        cfgEmbedding = try s.tensor("learned_classifier_free_guidance_embeddings")
        embeddingProj = try s.linear("embedding_proj")
        imageToTime = try s.linear("clip_image_embeddings_project_to_time_embeddings")
        extraTokensProj = try s.linear("clip_extra_context_tokens_proj")
        hiddenProj = try s.linear("encoder_hidden_states_proj")
        normG = try s.tensor("text_encoder_hidden_states_norm.weight")
        normB = try s.tensor("text_encoder_hidden_states_norm.bias")
        try require(cfgEmbedding.count == config.clipDim, "UnCLIPTextProjModel", "learned_classifier_free_guidance_embeddings \(cfgEmbedding.shape)")
    }

    /// image embeddings [B, E] (with guidance, the learned unconditional embedding is prepended: [2B, E]),
    /// prompt embeds [B', E] and text hidden states [B', L, E] (B' = 2B with guidance, uncond first) →
    /// (context [B', extra + L, cross], additive time embedding [B', time]).
    public func callAsFunction(imageEmbeddings: Tensor, promptEmbeds: Tensor, textHiddenStates: Tensor,
                               classifierFreeGuidance: Bool) throws -> (hidden: Tensor, additive: Tensor) {
        var img = imageEmbeddings
        if classifierFreeGuidance {
            let b = imageEmbeddings.shape[0]
            img = try Tensor(shape: [2 * b, config.clipDim],
                             values: Array(repeating: cfgEmbedding.toArray(), count: b).flatMap { $0 } + imageEmbeddings.toArray())  // [2B, E]
        }
        let bb = promptEmbeds.shape[0]
        try require(img.shape[0] == bb && textHiddenStates.shape[0] == bb, "UnCLIPTextProjModel", "batch \(img.shape[0]) vs \(bb)")
        let additive = try Ops.add(try Ops.linear(img, imageToTime), try Ops.linear(promptEmbeds, embeddingProj))  // [B', T]
        let extra = try Ops.linear(img, extraTokensProj).toArray()                            // [B', cross·k], element d·k + token
        let text = try Ops.layerNorm(try Ops.linear(textHiddenStates, hiddenProj), gamma: normG, beta: normB)  // [B', L, cross]
        let (k, x, l) = (config.extraTokens, config.crossAttentionDim, textHiddenStates.shape[1])
        var ctx = [Float](repeating: 0, count: bb * (k + l) * x)
        let tv = text.toArray()
        for n in 0..<bb {
            // reshape(B, cross, k).permute(0, 2, 1): token j, channel d = element d·k + j
            for j in 0..<k { for d in 0..<x { ctx[(n * (k + l) + j) * x + d] = extra[n * k * x + d * k + j] } }
            for i in 0..<(l * x) { ctx[(n * (k + l) + k) * x + i] = tv[n * l * x + i] }
        }
        return (try Tensor(shape: [bb, k + l, x], values: ctx), additive)
    }
}
