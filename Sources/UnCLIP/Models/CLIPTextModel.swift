/// transformers' CLIPTextModelWithProjection (models/clip/modeling_clip.py): token + position embeddings, pre-LN
/// transformer layers with causal self-attention and a quick_gelu MLP, final LayerNorm; the pooled output is the
/// hidden state at the first EOS token, projected without bias.
public final class CLIPTextModelWithProjection: @unchecked Sendable {
    public struct Config: Sendable {
        public let hiddenSize, heads, layers, maxPositions, projectionDim: Int
        public let eps: Float
        public let eosTokenID: Int32
        public let activation: Ops.Activation

        public init(_ c: JSON) throws {
            func int(_ k: String) throws -> Int {
                guard let v = c[k]?.int, v > 0, v < 1 << 20 else { throw UnCLIPError.invalidArgument(name: "text_encoder config", detail: "\(k) is missing or invalid") }
                return Int(v)
            }
            hiddenSize = try int("hidden_size")
            heads = try int("num_attention_heads")
            layers = try int("num_hidden_layers")
            maxPositions = try int("max_position_embeddings")
            projectionDim = try int("projection_dim")
            eps = Float(c["layer_norm_eps"]?.double ?? 1e-5)
            eosTokenID = Int32(c["eos_token_id"]?.int ?? 49407)
            switch c["hidden_act"]?.string ?? "quick_gelu" {
            case "quick_gelu": activation = .quickGelu
            case "gelu": activation = .geluErf
            case let a: throw UnCLIPError.invalidArgument(name: "text_encoder config", detail: "hidden_act '\(a)' is not supported")
            }
            guard hiddenSize % heads == 0 else { throw UnCLIPError.invalidArgument(name: "text_encoder config", detail: "hidden_size is not divisible by num_attention_heads") }
        }
    }

    struct Layer {
        let ln1g, ln1b, ln2g, ln2b: Tensor
        let q, k, v, o, fc1, fc2: LinearWeight
    }

    public let config: Config
    let tokenEmbedding, positionEmbedding, finalLNg, finalLNb: Tensor
    let layers: [Layer]
    let projection: LinearWeight

    public init(scope s: ComponentScope, config: Config) throws {
        self.config = config
        tokenEmbedding = try s.tensor("text_model.embeddings.token_embedding.weight")
        positionEmbedding = try s.tensor("text_model.embeddings.position_embedding.weight")
        try require(positionEmbedding.shape == [config.maxPositions, config.hiddenSize], "CLIPTextModel", "position_embedding \(positionEmbedding.shape)")
        layers = try (0..<config.layers).map { i in
            let p = "text_model.encoder.layers.\(i)."
            return Layer(ln1g: try s.tensor(p + "layer_norm1.weight"), ln1b: try s.tensor(p + "layer_norm1.bias"),
                         ln2g: try s.tensor(p + "layer_norm2.weight"), ln2b: try s.tensor(p + "layer_norm2.bias"),
                         q: try s.linear(p + "self_attn.q_proj"), k: try s.linear(p + "self_attn.k_proj"),
                         v: try s.linear(p + "self_attn.v_proj"), o: try s.linear(p + "self_attn.out_proj"),
                         fc1: try s.linear(p + "mlp.fc1"), fc2: try s.linear(p + "mlp.fc2"))
        }
        finalLNg = try s.tensor("text_model.final_layer_norm.weight")
        finalLNb = try s.tensor("text_model.final_layer_norm.bias")
        projection = try s.linear("text_projection")
    }

    /// ids [B][L] → (text_embeds [B, projectionDim], last_hidden_state [B, L, hidden]).
    public func callAsFunction(_ ids: [[Int32]]) throws -> (textEmbeds: Tensor, lastHiddenState: Tensor) {
        let b = ids.count, l = ids.first?.count ?? 0, d = config.hiddenSize
        guard b > 0, l > 0, l <= config.maxPositions, ids.allSatisfy({ $0.count == l }) else {
            throw UnCLIPError.invalidArgument(name: "token ids", detail: "need B ≥ 1 rows of the same length 1...\(config.maxPositions)")
        }
        var x = try Ops.embedding(tokenEmbedding, ids: ids.flatMap { $0 }).reshaped([b, l, d])        // [B, L, D]
        let pos = try positionEmbedding.slice(dim: 0, 0..<l).contiguous()                             // [L, D]
        x = try Ops.addBroadcastRows(x, pos)                                                          // [B, L, D]
        for layer in layers {
            var h = try Ops.layerNorm(x, eps: config.eps, gamma: layer.ln1g, beta: layer.ln1b)       // [B, L, D]
            let q = try Ops.linear(h, layer.q), k = try Ops.linear(h, layer.k), v = try Ops.linear(h, layer.v)
            h = try Ops.attention(q: q, k: k, v: v, heads: config.heads, causal: true)               // [B, L, D]
            x = try Ops.add(x, try Ops.linear(h, layer.o))                                           // [B, L, D]
            h = try Ops.layerNorm(x, eps: config.eps, gamma: layer.ln2g, beta: layer.ln2b)
            h = try Ops.activation(try Ops.linear(h, layer.fc1), config.activation)                  // [B, L, 4D]
            x = try Ops.add(x, try Ops.linear(h, layer.fc2))                                         // [B, L, D]
        }
        let last = try Ops.layerNorm(x, eps: config.eps, gamma: finalLNg, beta: finalLNb)            // [B, L, D]
        // pooled = hidden state at the first EOS (transformers: argmax(input_ids == eos_token_id))
        var pooled = [Float]()
        pooled.reserveCapacity(b * d)
        let all = last.toArray()
        for (r, row) in ids.enumerated() {
            let at = row.firstIndex(of: config.eosTokenID) ?? 0
            pooled += all[((r * l + at) * d)..<((r * l + at + 1) * d)]
        }
        let embeds = try Ops.linear(try Tensor(shape: [b, d], values: pooled), projection)           // [B, P]
        return (embeds, last)
    }
}
