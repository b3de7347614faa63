import CKernels

/// Thin typed functions over the C kernels. Every shape is checked here (typed errors), so the kernels only
/// ever see consistent sizes. Outputs are new tensors, from `arena` when one is given.
public enum Ops {
    /// An op's output. Every op here writes all of its output, so its memory is not zero-filled first.
    static func output(_ shape: [Int], _ arena: Arena?) throws -> Tensor {
        if let a = arena { return try a.tensor(shape) }
        return try Tensor(uninitialized: shape)
    }

    static func withScratch<R>(_ bytes: Int, _ arena: Arena?, _ body: (UnsafeMutableRawPointer) throws -> R) throws -> R {
        if let a = arena { return try body(try a.scratch(bytes)) }
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 1), alignment: TensorStorage.alignment)
        defer { p.deallocate() }
        return try body(p)
    }

    static func checkF32(_ t: Tensor, _ op: String) throws {
        try require(t.dtype == .f32, op, "expects f32, got \(t.dtype)")
    }

    // MARK: GEMM

    /// y[..., N] = x[..., K] · Wᵀ + b. x may have a row stride (e.g. a slice of a wider tensor).
    public static func linear(_ x: Tensor, _ w: LinearWeight, arena: Arena? = nil) throws -> Tensor {
        try Profiler.measure("linear") {
            try checkF32(x, "linear")
            try require(x.lastDim == w.inFeatures, "linear", "input \(x.shape) has \(x.lastDim) features, weight expects \(w.inFeatures)")
            let lda = try x.matrixRowStride("linear")
            let m = x.rows, n = w.outFeatures, k = w.inFeatures
            let y = try output(Array(x.shape.dropLast()) + [n], arena)
            if m == 0 { return y }
            Profiler.count(macs: m * n * k)
            try (w.bias ?? []).withUnsafeBufferPointer { bias in
                let b = w.bias == nil ? nil : bias.baseAddress
                let mat = w.matrix
                switch mat.kind {
                case .f32:
                    ck_gemm_f32(Int32(m), Int32(n), Int32(k), x.f32, Int32(lda), mat.f32, b, y.f32, Int32(n))
                case .q8:
                    try withScratch(ck_gemm_q8_scratch_size(Int32(m), Int32(k), Int32(Runtime.threads)), arena) { s in
                        ck_gemm_q8(Int32(m), Int32(n), Int32(k), x.f32, Int32(lda), mat.q8, mat.scale, mat.colsum, b, y.f32, Int32(n), s)
                    }
                }
            }
            w.matrix.releaseIfStreaming()
            return y
        }
    }

    // MARK: Convolution

    /// NHWC convolution: x [N, H, W, Cin] → [N, Ho, Wo, Cout].
    public static func conv2d(_ x: Tensor, _ w: Conv2dWeight, arena: Arena? = nil) throws -> Tensor {
        try Profiler.measure("conv2d") {
            try checkF32(x, "conv2d")
            try require(x.rank == 4 && x.isContiguous, "conv2d", "input must be contiguous NHWC, got \(x.shape)")
            try require(x.shape[3] == w.inChannels, "conv2d", "input has \(x.shape[3]) channels, weight expects \(w.inChannels)")
            var p = ck_conv2d_params(N: Int32(x.shape[0]), H: Int32(x.shape[1]), W: Int32(x.shape[2]), Cin: Int32(w.inChannels),
                                     Cout: Int32(w.outChannels), kh: Int32(w.kernel.h), kw: Int32(w.kernel.w),
                                     stride: Int32(w.stride), pad: Int32(w.padding), Ho: 0, Wo: 0)
            guard ck_conv2d_shape(&p) == 0 else {
                throw UnCLIPError.shapeMismatch(operation: "conv2d",
                                                detail: "input \(x.shape) is smaller than the \(w.kernel.h)x\(w.kernel.w) kernel")
            }
            let y = try output([x.shape[0], Int(p.Ho), Int(p.Wo), w.outChannels], arena)
            Profiler.count(macs: y.count * w.inChannels * w.kernel.h * w.kernel.w)
            let nt = Int32(Runtime.threads)
            try (w.bias ?? []).withUnsafeBufferPointer { bias in
                let b = w.bias == nil ? nil : bias.baseAddress
                let mat = w.matrix
                switch mat.kind {
                case .f32:
                    try withScratch(ck_conv2d_f32_scratch_size(&p, nt), arena) { s in ck_conv2d_f32(&p, x.f32, mat.f32, b, y.f32, s) }
                case .q8:
                    try withScratch(ck_conv2d_q8_scratch_size(&p, nt), arena) { s in
                        ck_conv2d_q8(&p, x.f32, mat.q8, mat.scale, mat.colsum, b, y.f32, s)
                    }
                }
            }
            w.matrix.releaseIfStreaming()
            return y
        }
    }

    // MARK: Normalisation

    /// GroupNorm over x [N, H, W, C] (or [N, L, C]): optional affine (γ, β [C]), optional scale-shift
    /// `GN(x)·(1+scale)+shift` (scale/shift [N, C]) and optional fused SiLU.
    public static func groupNorm(_ x: Tensor, groups: Int, eps: Float = 1e-5, gamma: Tensor? = nil, beta: Tensor? = nil,
                                 scale: Tensor? = nil, shift: Tensor? = nil, silu: Bool = false,
                                 arena: Arena? = nil) throws -> Tensor {
        try Profiler.measure("groupNorm") {
            try checkF32(x, "groupNorm")
            try require(x.rank >= 2 && x.isContiguous, "groupNorm", "input must be contiguous [N, ..., C], got \(x.shape)")
            let n = x.shape[0], c = x.lastDim, hw = x.count / max(n * c, 1)
            guard groups >= 1, c % groups == 0 else {
                throw UnCLIPError.invalidArgument(name: "groups", detail: "\(c) channels are not divisible into \(groups) groups")
            }
            for (name, t) in [("gamma", gamma), ("beta", beta)] {
                if let t { try require(t.count == c && t.dtype == .f32, "groupNorm", "\(name) must have \(c) values, has \(t.count)") }
            }
            for (name, t) in [("scale", scale), ("shift", shift)] {
                if let t { try require(t.count == n * c && t.dtype == .f32 && t.isContiguous, "groupNorm", "\(name) must be [\(n), \(c)], got \(t.shape)") }
            }
            let y = try output(x.shape, arena)
            let g = try gamma?.contiguous(), b = try beta?.contiguous()
            ck_group_norm(Int32(n), Int32(hw), Int32(c), Int32(groups), eps, x.f32, g?.f32, b?.f32, scale?.f32, shift?.f32,
                          silu ? 1 : 0, y.f32)
            return y
        }
    }

    /// LayerNorm over the last dimension.
    public static func layerNorm(_ x: Tensor, eps: Float = 1e-5, gamma: Tensor? = nil, beta: Tensor? = nil,
                                 arena: Arena? = nil) throws -> Tensor {
        try Profiler.measure("layerNorm") {
            try checkF32(x, "layerNorm")
            let ldx = try x.matrixRowStride("layerNorm")
            let c = x.lastDim
            for (name, t) in [("gamma", gamma), ("beta", beta)] {
                if let t { try require(t.count == c && t.dtype == .f32, "layerNorm", "\(name) must have \(c) values, has \(t.count)") }
            }
            let y = try output(x.shape, arena)
            let g = try gamma?.contiguous(), b = try beta?.contiguous()
            ck_layer_norm(Int32(x.rows), Int32(c), eps, x.f32, Int32(ldx), g?.f32, b?.f32, y.f32, Int32(c))
            return y
        }
    }

    // MARK: Attention

    /// Multi-head attention. q [B, Lq, H·D]; keys/values [B, L0, H·D], optionally followed by a second segment
    /// [B, L1, H·D] (the decoder's context-then-image keys). mask: additive, [B, Lk] (key padding) or
    /// [B, Lq, Lk]. Returns [B, Lq, H·D].
    public static func attention(q: Tensor, k: Tensor, v: Tensor, k2: Tensor? = nil, v2: Tensor? = nil, heads: Int,
                                 mask: Tensor? = nil, causal: Bool = false, scale: Float? = nil,
                                 arena: Arena? = nil) throws -> Tensor {
        try Profiler.measure("attention") {
            for t in [q, k, v] + [k2, v2].compactMap({ $0 }) {
                try checkF32(t, "attention")
                try require(t.rank == 3, "attention", "expects [B, L, H·D] tensors, got \(t.shape)")
            }
            let (bsz, lq, hd) = (q.shape[0], q.shape[1], q.shape[2])
            guard heads >= 1, hd % heads == 0 else {
                throw UnCLIPError.invalidArgument(name: "heads", detail: "\(hd) features are not divisible into \(heads) heads")
            }
            try require(k.shape == v.shape && k.shape[0] == bsz && k.shape[2] == hd, "attention", "k \(k.shape) / v \(v.shape) vs q \(q.shape)")
            try require((k2 == nil) == (v2 == nil), "attention", "k2 and v2 come together")
            if let k2, let v2 {
                try require(k2.shape == v2.shape && k2.shape[0] == bsz && k2.shape[2] == hd, "attention", "k2 \(k2.shape) / v2 \(v2.shape) vs q \(q.shape)")
            }
            let l0 = k.shape[1], l1 = k2?.shape[1] ?? 0, lk = l0 + l1
            var maskQS = 0
            if let mask {
                try require(mask.dtype == .f32 && mask.isContiguous && mask.shape[0] == bsz, "attention", "mask \(mask.shape)")
                if mask.shape == [bsz, lk] { maskQS = 0 } else if mask.shape == [bsz, lq, lk] { maskQS = lk } else {
                    throw UnCLIPError.shapeMismatch(operation: "attention", detail: "mask must be [\(bsz), \(lk)] or [\(bsz), \(lq), \(lk)], got \(mask.shape)")
                }
            }
            let ldq = try q.matrixRowStride("attention"), ld0 = try k.matrixRowStride("attention")
            try require(try v.matrixRowStride("attention") == ld0, "attention", "k and v must share a layout")
            let ld1 = try k2?.matrixRowStride("attention") ?? 0
            if let v2 { try require(try v2.matrixRowStride("attention") == ld1, "attention", "k2 and v2 must share a layout") }
            let d = hd / heads
            let o = try output([bsz, lq, hd], arena)
            Profiler.count(macs: 2 * bsz * lq * lk * hd)                                                  // Q·Kᵀ and P·V
            var p = ck_attention_params()
            p.B = Int32(bsz); p.H = Int32(heads); p.D = Int32(d); p.Lq = Int32(lq); p.L0 = Int32(l0); p.L1 = Int32(l1)
            p.scale = scale ?? 1 / Float(d).squareRoot()
            p.q = UnsafePointer(q.f32); p.q_bs = q.strides[0]; p.ldq = Int32(ldq)
            p.k0 = UnsafePointer(k.f32); p.v0 = UnsafePointer(v.f32); p.kv0_bs = k.strides[0]; p.ldkv0 = Int32(ld0)
            try require(v.strides[0] == k.strides[0], "attention", "k and v must share a layout")
            if let k2, let v2 {
                try require(v2.strides[0] == k2.strides[0], "attention", "k2 and v2 must share a layout")
                p.k1 = UnsafePointer(k2.f32); p.v1 = UnsafePointer(v2.f32); p.kv1_bs = k2.strides[0]; p.ldkv1 = Int32(ld1)
            }
            if let mask { p.mask = UnsafePointer(mask.f32); p.mask_bs = mask.strides[0]; p.mask_qs = Int32(maskQS) }
            p.causal = causal ? 1 : 0
            p.o = o.f32; p.o_bs = o.strides[0]; p.ldo = Int32(hd)
            try withScratch(ck_attention_scratch_size(&p, Int32(Runtime.threads)), arena) { s in ck_attention(&p, s) }
            return o
        }
    }

    // MARK: Elementwise

    public enum Activation: Sendable { case silu, geluErf, quickGelu }

    public static func activation(_ x: Tensor, _ kind: Activation, arena: Arena? = nil) throws -> Tensor {
        try Profiler.measure("activation") {
            try checkF32(x, "activation")
            let x = try x.contiguous()
            let y = try output(x.shape, arena)
            let n = x.count
            switch kind {
            case .silu: ck_silu(n, x.f32, y.f32)
            case .geluErf: ck_gelu_erf(n, x.f32, y.f32)
            case .quickGelu: ck_quick_gelu(n, x.f32, y.f32)
            }
            return y
        }
    }

    public static func add(_ a: Tensor, _ b: Tensor, arena: Arena? = nil) throws -> Tensor {
        try Profiler.measure("add") {
            try binary(a, b, "add", arena) { ck_add($0, $1, $2, $3) }
        }
    }

    public static func mul(_ a: Tensor, _ b: Tensor, arena: Arena? = nil) throws -> Tensor {
        try Profiler.measure("mul") {
            try binary(a, b, "mul", arena) { ck_mul($0, $1, $2, $3) }
        }
    }

    static func binary(_ a: Tensor, _ b: Tensor, _ op: String, _ arena: Arena?,
                       _ f: (Int, UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void) throws -> Tensor {
        try checkF32(a, op)
        try checkF32(b, op)
        try require(a.shape == b.shape, op, "\(a.shape) vs \(b.shape)")
        let a = try a.contiguous(), b = try b.contiguous()
        let y = try output(a.shape, arena)
        f(a.count, a.f32, b.f32, y.f32)
        return y
    }

    /// x [..., R, C] + rows [R, C], broadcast over the leading dimensions.
    public static func addBroadcastRows(_ x: Tensor, _ rows: Tensor, arena: Arena? = nil) throws -> Tensor {
        try Profiler.measure("addBroadcastRows") {
            try broadcastRows(x, rows, "addBroadcastRows", arena) { ck_add($0, $1, $2, $3) }
        }
    }

    /// x [..., R, C] · rows [R, C], broadcast over the leading dimensions.
    public static func mulBroadcastRows(_ x: Tensor, _ rows: Tensor, arena: Arena? = nil) throws -> Tensor {
        try Profiler.measure("mulBroadcastRows") {
            try broadcastRows(x, rows, "mulBroadcastRows", arena) { ck_mul($0, $1, $2, $3) }
        }
    }

    static func broadcastRows(_ x: Tensor, _ rows: Tensor, _ op: String, _ arena: Arena?,
                              _ f: (Int, UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void) throws -> Tensor {
        try checkF32(x, op)
        try checkF32(rows, op)
        let x = try x.contiguous(), r = try rows.contiguous()
        try require(r.count > 0 && x.count % r.count == 0 && Array(x.shape.suffix(r.rank)) == r.shape, op, "\(x.shape) with \(r.shape)")
        let y = try output(x.shape, arena)
        for i in 0..<(x.count / r.count) { f(r.count, x.f32 + i * r.count, r.f32, y.f32 + i * r.count) }
        return y
    }

    /// NHWC x [N, H, W, C] + b [N, C] (a per-image, per-channel bias, e.g. a time embedding).
    public static func addChannelBias(_ x: Tensor, _ b: Tensor, arena: Arena? = nil) throws -> Tensor {
        try Profiler.measure("addChannelBias") {
            try checkF32(x, "addChannelBias")
            let x = try x.contiguous(), b = try b.contiguous()
            let n = x.shape[0], c = x.lastDim
            try require(b.count == n * c, "addChannelBias", "bias \(b.shape) for \(x.shape)")
            let y = try output(x.shape, arena)
            let per = x.count / n
            for i in 0..<n { ck_add_bias(Int32(per / c), Int32(c), x.f32 + i * per, b.f32 + i * c, y.f32 + i * per) }
            return y
        }
    }

    /// Concatenation along the last (channel) dimension: [..., Ca] ++ [..., Cb] → [..., Ca+Cb].
    public static func concatLast(_ a: Tensor, _ b: Tensor, arena: Arena? = nil) throws -> Tensor {
        try Profiler.measure("concatLast") {
            try checkF32(a, "concatLast")
            try checkF32(b, "concatLast")
            let a = try a.contiguous(), b = try b.contiguous()
            try require(Array(a.shape.dropLast()) == Array(b.shape.dropLast()), "concatLast", "\(a.shape) ++ \(b.shape)")
            let (ca, cb) = (a.lastDim, b.lastDim)
            let y = try output(Array(a.shape.dropLast()) + [ca + cb], arena)
            for r in 0..<a.rows {
                (y.f32 + r * (ca + cb)).update(from: a.f32 + r * ca, count: ca)
                (y.f32 + r * (ca + cb) + ca).update(from: b.f32 + r * cb, count: cb)
            }
            return y
        }
    }

    /// y = α·x + β
    public static func scaleAdd(_ x: Tensor, alpha: Float, beta: Float = 0, arena: Arena? = nil) throws -> Tensor {
        try Profiler.measure("scaleAdd") {
            try checkF32(x, "scaleAdd")
            let x = try x.contiguous()
            let y = try output(x.shape, arena)
            ck_scale_add(x.count, x.f32, alpha, beta, y.f32)
            return y
        }
    }

    public static func clamp(_ x: Tensor, min lo: Float, max hi: Float, arena: Arena? = nil) throws -> Tensor {
        try Profiler.measure("clamp") {
            try checkF32(x, "clamp")
            guard lo <= hi else { throw UnCLIPError.invalidArgument(name: "clamp", detail: "min \(lo) > max \(hi)") }
            let x = try x.contiguous()
            let y = try output(x.shape, arena)
            ck_clamp(x.count, x.f32, lo, hi, y.f32)
            return y
        }
    }

    /// Softmax over the last dimension.
    public static func softmax(_ x: Tensor, arena: Arena? = nil) throws -> Tensor {
        try Profiler.measure("softmax") {
            try checkF32(x, "softmax")
            let ldx = try x.matrixRowStride("softmax")
            let y = try output(x.shape, arena)
            ck_softmax_rows(Int32(x.rows), Int32(x.lastDim), x.f32, Int32(ldx), y.f32, Int32(x.lastDim))
            return y
        }
    }

    // MARK: Resampling (NHWC)

    public static func avgPool2x2(_ x: Tensor, arena: Arena? = nil) throws -> Tensor {
        try Profiler.measure("avgPool2x2") {
            try checkF32(x, "avgPool2x2")
            try require(x.rank == 4 && x.isContiguous && x.shape[1] >= 2 && x.shape[2] >= 2, "avgPool2x2", "needs contiguous NHWC with H, W ≥ 2, got \(x.shape)")
            let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
            let y = try output([n, h / 2, w / 2, c], arena)
            ck_avg_pool2x2(Int32(n), Int32(h), Int32(w), Int32(c), x.f32, y.f32)
            return y
        }
    }

    public static func upsampleNearest2x(_ x: Tensor, arena: Arena? = nil) throws -> Tensor {
        try Profiler.measure("upsampleNearest2x") {
            try checkF32(x, "upsampleNearest2x")
            try require(x.rank == 4 && x.isContiguous, "upsampleNearest2x", "needs contiguous NHWC, got \(x.shape)")
            let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
            let y = try output([n, 2 * h, 2 * w, c], arena)
            ck_upsample_nearest2x(Int32(n), Int32(h), Int32(w), Int32(c), x.f32, y.f32)
            return y
        }
    }

    /// PyTorch `interpolate(mode="bicubic", antialias=True, align_corners=False)` to [N, height, width, C].
    public static func resizeBicubicAntialias(_ x: Tensor, height: Int, width: Int, arena: Arena? = nil) throws -> Tensor {
        try Profiler.measure("resizeBicubicAntialias") {
            try checkF32(x, "resizeBicubicAntialias")
            try require(x.rank == 4 && x.isContiguous, "resizeBicubicAntialias", "needs contiguous NHWC, got \(x.shape)")
            guard height >= 1, width >= 1, height <= 16384, width <= 16384 else {
                throw UnCLIPError.invalidArgument(name: "size", detail: "\(width)x\(height) must be within 1...16384")
            }
            let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
            let y = try output([n, height, width, c], arena)
            try withScratch(ck_resize_bicubic_aa_scratch_size(Int32(h), Int32(w), Int32(height), Int32(width), Int32(c)), arena) { s in
                ck_resize_bicubic_aa(Int32(n), Int32(h), Int32(w), Int32(c), x.f32, Int32(height), Int32(width), y.f32, s)
            }
            return y
        }
    }

    // MARK: Embedding lookup

    /// Rows `ids` of `table` [V, D] → [ids.count, D]; every id must be in 0..<V.
    public static func embedding(_ table: Tensor, ids: [Int32], arena: Arena? = nil) throws -> Tensor {
        try Profiler.measure("embedding") {
            try checkF32(table, "embedding")
            try require(table.rank == 2 && table.isContiguous, "embedding", "table must be contiguous [V, D], got \(table.shape)")
            let (v, d) = (table.shape[0], table.shape[1])
            if let bad = ids.first(where: { $0 < 0 || Int($0) >= v }) {
                throw UnCLIPError.invalidArgument(name: "token id", detail: "\(bad) is outside the \(v)-entry embedding table")
            }
            let y = try output([ids.count, d], arena)
            for (r, id) in ids.enumerated() { (y.f32 + r * d).update(from: table.f32 + Int(id) * d, count: d) }
            return y
        }
    }

    // MARK: Timestep embedding

    /// diffusers get_timestep_embedding(t, dim, flip_sin_to_cos=True, downscale_freq_shift=0) → [B, dim].
    public static func timestepEmbedding(_ t: [Float], dim: Int, arena: Arena? = nil) throws -> Tensor {
        try Profiler.measure("timestepEmbedding") {
            guard dim >= 2 else { throw UnCLIPError.invalidArgument(name: "dim", detail: "\(dim) must be ≥ 2") }
            let y = try output([t.count, dim], arena)
            ck_timestep_embedding(Int32(t.count), t, Int32(dim), y.f32)
            return y
        }
    }
}
