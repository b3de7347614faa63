/// transformers' CLIPEncoderLayer (models/clip/modeling_clip.py): pre-LN self-attention and MLP with residuals.
struct CLIPEncoderLayer {
    let ln1g, ln1b, ln2g, ln2b: Tensor
    let q, k, v, o, fc1, fc2: LinearWeight
    let heads: Int
    let eps: Float
    let activation: Ops.Activation

    init(scope s: ComponentScope, prefix p: String, heads: Int, eps: Float, activation: Ops.Activation) throws {
        ln1g = try s.tensor(p + "layer_norm1.weight"); ln1b = try s.tensor(p + "layer_norm1.bias")
        ln2g = try s.tensor(p + "layer_norm2.weight"); ln2b = try s.tensor(p + "layer_norm2.bias")
        q = try s.linear(p + "self_attn.q_proj"); k = try s.linear(p + "self_attn.k_proj")
        v = try s.linear(p + "self_attn.v_proj"); o = try s.linear(p + "self_attn.out_proj")
        fc1 = try s.linear(p + "mlp.fc1"); fc2 = try s.linear(p + "mlp.fc2")
        self.heads = heads
        self.eps = eps
        self.activation = activation
    }

    /// x [B, L, D] → [B, L, D]; causal for the text tower.
    func callAsFunction(_ x: Tensor, causal: Bool) throws -> Tensor {
        var h = try Ops.layerNorm(x, eps: eps, gamma: ln1g, beta: ln1b)                           // [B, L, D]
        h = try Ops.attention(q: try Ops.linear(h, q), k: try Ops.linear(h, k), v: try Ops.linear(h, v),
                              heads: heads, causal: causal)                                        // [B, L, D]
        let x = try Ops.add(x, try Ops.linear(h, o))
        h = try Ops.activation(try Ops.linear(try Ops.layerNorm(x, eps: eps, gamma: ln2g, beta: ln2b), fc1), activation)  // [B, L, M]
        return try Ops.add(x, try Ops.linear(h, fc2))                                             // [B, L, D]
    }
}

/// The parts of a CLIP config both towers read.
struct CLIPTowerConfig {
    let hiddenSize, heads, layers, projectionDim: Int
    let eps: Float
    let activation: Ops.Activation

    init(_ c: JSON, what: String) throws {
        func int(_ k: String) throws -> Int { try c.positiveInt(k, in: what) }
        hiddenSize = try int("hidden_size")
        heads = try int("num_attention_heads")
        layers = try int("num_hidden_layers")
        projectionDim = try int("projection_dim")
        eps = Float(c["layer_norm_eps"]?.double ?? 1e-5)
        switch c["hidden_act"]?.string ?? "quick_gelu" {
        case "quick_gelu": activation = .quickGelu
        case "gelu": activation = .geluErf
        case let a: throw UnCLIPError.invalidArgument(name: "\(what) config", detail: "hidden_act '\(a)' is not supported")
        }
        guard hiddenSize % heads == 0 else { throw UnCLIPError.invalidArgument(name: "\(what) config", detail: "hidden_size is not divisible by num_attention_heads") }
    }
}
