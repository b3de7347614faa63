/// diffusers' PriorTransformer (models/transformers/prior_transformer.py) with Karlo's options: linear
/// encoder_hidden_states_proj, added_emb_type "prd", no norm_in, no embedding_proj_norm.
/// Tokens: [text (L), proj_embedding, time embedding, proj_in(x_t), prd] + positional embedding; the mask is
/// (1 − text_mask)·−10000 padded with zeros for the 4 extra tokens plus −10000 above the diagonal.
public final class PriorTransformer: @unchecked Sendable {
    public struct Config: Sendable {
        public let heads, headDim, layers, embeddingDim, numEmbeddings, additionalEmbeddings: Int
        public var inner: Int { heads * headDim }

        public init(_ c: JSON) throws {
            func int(_ k: String, _ d: Int) throws -> Int { try c.positiveInt(k, in: "prior", fallback: d) }
            heads = try int("num_attention_heads", 32)
            headDim = try int("attention_head_dim", 64)
            layers = try int("num_layers", 20)
            embeddingDim = try int("embedding_dim", 768)
            numEmbeddings = try int("num_embeddings", 77)
            additionalEmbeddings = try int("additional_embeddings", 4)
            for (k, want) in [("added_emb_type", "prd"), ("encoder_hid_proj_type", "linear")] where (c[k]?.string ?? want) != want {
                throw UnCLIPError.invalidArgument(name: "prior config", detail: "\(k) must be \"\(want)\" (Karlo's)")
            }
            for k in ["norm_in_type", "embedding_proj_norm_type", "time_embed_dim", "embedding_proj_dim", "clip_embed_dim"] {
                if let v = c[k], v != .null { throw UnCLIPError.invalidArgument(name: "prior config", detail: "\(k) = \(v.text) is not supported (Karlo's is null)") }
            }
            guard additionalEmbeddings == 4 else { throw UnCLIPError.invalidArgument(name: "prior config", detail: "additional_embeddings must be 4") }
        }
    }

    public let config: Config
    let time: TimestepEmbedding
    let projIn, embeddingProj, encoderHiddenStatesProj, projToClip: LinearWeight
    let positional, prd, normOutG, normOutB, clipMean, clipStd: Tensor
    let blocks: [BasicTransformerBlock]

    public init(scope s: ComponentScope, config: Config) throws {
        self.config = config
        time = try TimestepEmbedding(scope: s, prefix: "time_embedding", channels: config.inner)
        projIn = try s.linear("proj_in")
        embeddingProj = try s.linear("embedding_proj")
        encoderHiddenStatesProj = try s.linear("encoder_hidden_states_proj")
        projToClip = try s.linear("proj_to_clip_embeddings")
        positional = try s.tensor("positional_embedding")
        prd = try s.tensor("prd_embedding")
        normOutG = try s.tensor("norm_out.weight")
        normOutB = try s.tensor("norm_out.bias")
        clipMean = try s.tensor("clip_mean")
        clipStd = try s.tensor("clip_std")
        let n = config.numEmbeddings + config.additionalEmbeddings
        try require(positional.shape == [1, n, config.inner], "PriorTransformer", "positional_embedding \(positional.shape)")
        blocks = try (0..<config.layers).map { try BasicTransformerBlock(scope: s, prefix: "transformer_blocks.\($0).", heads: config.heads) }
    }

    /// x_t [B, E], t, proj_embedding [B, E], text hidden states [B, L, E], text mask [B][L] → predicted x₀ [B, E].
    public func callAsFunction(_ x: Tensor, timestep: Float, projEmbedding: Tensor, encoderHiddenStates: Tensor,
                               textMask: [[Bool]]) throws -> Tensor {
        let b = x.shape[0], l = encoderHiddenStates.shape[1], d = config.inner
        let seq = l + 4
        try require(seq == positional.shape[1] && textMask.count == b && textMask.allSatisfy({ $0.count == l }), "PriorTransformer",
                    "text length \(l) with mask \(textMask.map(\.count)) vs positional embedding \(positional.shape)")
        let text = try Ops.linear(encoderHiddenStates, encoderHiddenStatesProj)              // [B, L, D]
        let proj = try Ops.linear(projEmbedding, embeddingProj)                              // [B, D]
        let temb = try time([Float](repeating: timestep, count: b))                          // [B, D]
        let xin = try Ops.linear(x, projIn)                                                  // [B, D]
        // [B, L+4, D] = cat(text, proj, time, x_t, prd) + positional
        var tokens = [Float](repeating: 0, count: b * seq * d)
        let (tv, pv, tev, xv, prdv, pos) = (text.toArray(), proj.toArray(), temb.toArray(), xin.toArray(), prd.toArray(), positional.toArray())
        for n in 0..<b {
            let base = n * seq * d
            for i in 0..<(l * d) { tokens[base + i] = tv[n * l * d + i] }
            for i in 0..<d {
                tokens[base + l * d + i] = pv[n * d + i]
                tokens[base + (l + 1) * d + i] = tev[n * d + i]
                tokens[base + (l + 2) * d + i] = xv[n * d + i]
                tokens[base + (l + 3) * d + i] = prdv[i]
            }
            for i in 0..<(seq * d) { tokens[base + i] += pos[i] }
        }
        var h = try Tensor(shape: [b, seq, d], values: tokens)
        // additive mask [B, S, S]: key padding (−10000 where the text mask is false) + causal −10000 above the diagonal
        var mask = [Float](repeating: 0, count: b * seq * seq)
        for n in 0..<b {
            for i in 0..<seq {
                for j in 0..<seq {
                    let pad: Float = j < l && !textMask[n][j] ? -10000 : 0
                    mask[(n * seq + i) * seq + j] = pad + (j > i ? -10000 : 0)
                }
            }
        }
        let m = try Tensor(shape: [b, seq, seq], values: mask)
        for block in blocks { h = try block(h, mask: m) }                                   // [B, S, D]
        h = try Ops.layerNorm(h, gamma: normOutG, beta: normOutB)
        let last = try h.slice(dim: 1, (seq - 1)..<seq).contiguous().reshaped([b, d])         // [B, D] (the prd token)
        return try Ops.linear(last, projToClip)                                              // [B, E]
    }

    /// x₀ · clip_std + clip_mean (after the denoising loop).
    public func postProcessLatents(_ x: Tensor) throws -> Tensor {
        try Ops.addBroadcastRows(try Ops.mulBroadcastRows(x, clipStd.reshaped([clipStd.count])), clipMean.reshaped([clipMean.count]))
    }
}
