/// diffusers' BasicTransformerBlock as the PriorTransformer builds it (models/attention.py): layer_norm type,
/// self-attention only, attention_bias, GELU (erf) feed-forward: x += Attn(LN1 x); x += W2·GELU(W1·LN3 x).
struct BasicTransformerBlock {
    let norm1g, norm1b, norm3g, norm3b: Tensor
    let q, k, v, out, ff1, ff2: LinearWeight
    let heads: Int

    init(scope s: ComponentScope, prefix p: String, heads: Int) throws {
        norm1g = try s.tensor(p + "norm1.weight"); norm1b = try s.tensor(p + "norm1.bias")
        norm3g = try s.tensor(p + "norm3.weight"); norm3b = try s.tensor(p + "norm3.bias")
        q = try s.linear(p + "attn1.to_q"); k = try s.linear(p + "attn1.to_k"); v = try s.linear(p + "attn1.to_v")
        out = try s.linear(p + "attn1.to_out.0")
        ff1 = try s.linear(p + "ff.net.0.proj"); ff2 = try s.linear(p + "ff.net.2")
        self.heads = heads
    }

    /// x [B, L, D], mask additive [B, L, L] → [B, L, D]
    func callAsFunction(_ x: Tensor, mask: Tensor?) throws -> Tensor {
        var h = try Ops.layerNorm(x, gamma: norm1g, beta: norm1b)                            // [B, L, D]
        h = try Ops.attention(q: try Ops.linear(h, q), k: try Ops.linear(h, k), v: try Ops.linear(h, v),
                              heads: heads, mask: mask)                                     // [B, L, D]
        let x = try Ops.add(x, try Ops.linear(h, out))                                       // [B, L, D]
        h = try Ops.layerNorm(x, gamma: norm3g, beta: norm3b)
        h = try Ops.activation(try Ops.linear(h, ff1), .geluErf)                             // [B, L, 4D]
        return try Ops.add(x, try Ops.linear(h, ff2))                                        // [B, L, D]
    }
}
