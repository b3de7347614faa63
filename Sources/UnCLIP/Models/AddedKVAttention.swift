/// diffusers' Attention with added_kv_proj_dim and AttnAddedKVProcessor2_0 (models/attention_processor.py), the
/// decoder's SimpleCrossAttn attention: q, k, v from GroupNorm(x); context k, v from add_k_proj / add_v_proj;
/// keys = [context; image tokens]; additive mask −10000 on padded text keys (prepare_attention_mask pads the rest
/// with zeros); out projection; + residual.
struct AddedKVAttention {
    let normG, normB: Tensor
    let q, k, v, addK, addV, out: LinearWeight
    let heads, groups: Int
    let eps: Float

    init(scope s: ComponentScope, prefix p: String, heads: Int, groups: Int, eps: Float) throws {
        normG = try s.tensor(p + "group_norm.weight"); normB = try s.tensor(p + "group_norm.bias")
        q = try s.linear(p + "to_q"); k = try s.linear(p + "to_k"); v = try s.linear(p + "to_v")
        addK = try s.linear(p + "add_k_proj"); addV = try s.linear(p + "add_v_proj")
        out = try s.linear(p + "to_out.0")
        self.heads = heads
        self.groups = groups
        self.eps = eps
    }

    /// x [N, H, W, C], context [N, Lc, X], contextMask additive [N, Lc] → [N, H, W, C]
    func callAsFunction(_ x: Tensor, context: Tensor, contextMask: Tensor?) throws -> Tensor {
        let x = try Ops.cast(x, to: .f32)                                                                 // f16 blocks' outputs
        let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let tokens = try Ops.groupNorm(x, groups: groups, eps: eps, gamma: normG, beta: normB).reshaped([n, h * w, c])  // [N, HW, C]
        let lc = context.shape[1]
        var mask: Tensor? = nil
        if let contextMask {
            // [N, Lc + HW]: the context mask, then zeros for the image tokens
            let mv = contextMask.toArray()
            var full = [Float](repeating: 0, count: n * (lc + h * w))
            for i in 0..<n { for j in 0..<lc { full[i * (lc + h * w) + j] = mv[i * lc + j] } }
            mask = try Tensor(shape: [n, lc + h * w], values: full)
        }
        let a = try Ops.attention(q: try Ops.linear(tokens, q), k: try Ops.linear(context, addK), v: try Ops.linear(context, addV),
                                  k2: try Ops.linear(tokens, k), v2: try Ops.linear(tokens, v), heads: heads, mask: mask)  // [N, HW, C]
        return try Ops.add(try Ops.linear(a, out).reshaped([n, h, w, c]), x)
    }
}
