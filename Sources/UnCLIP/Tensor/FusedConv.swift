import CKernels

/// A GroupNorm folded into per-(image, channel) values: GN(x)[n, ·, c] = (x − μ[n, c])·a[n, c] + b[n, c]
/// (ck_group_norm_fold: ck_group_norm's statistics and affine map, so applying it gives GroupNorm's bits).
public struct GroupNormFold {
    let mu, a, b: Tensor   // [N, C]
}

/// What a fused convolution reads (ck_conv_input): the channel concatenation of one or two NHWC operands (f32 or
/// f16), an optional per-image channel bias, an optional folded GroupNorm, optional SiLU, then an optional 2×
/// resampling — the operations in front of a ResnetBlock2D's convolutions, none of them materialised.
public struct ConvInput {
    public enum Resample: Int32, Sendable {
        case none = 0, up = 1, down = 2   // nearest 2×, 2×2 average (CK_RESAMPLE_*)
    }

    public var sources: [Tensor]
    public var channelBias: Tensor?
    public var norm: GroupNormFold?
    public var silu: Bool
    public var resample: Resample

    public init(_ sources: [Tensor], channelBias: Tensor? = nil, norm: GroupNormFold? = nil, silu: Bool = false,
                resample: Resample = .none) {
        (self.sources, self.channelBias, self.norm, self.silu, self.resample) = (sources, channelBias, norm, silu, resample)
    }

    var channels: Int { sources.reduce(0) { $0 + $1.lastDim } }
    /// Plain: one f32 operand read as it is.
    var isPlain: Bool { sources.count == 1 && sources[0].dtype == .f32 && channelBias == nil && norm == nil && !silu && resample == .none }

    /// [N, H, W] of the operands after the resampling (what the convolution sees).
    func checkedGeometry(_ op: String) throws -> (n: Int, h: Int, w: Int) {
        try require((1...2).contains(sources.count), op, "takes one or two operands, got \(sources.count)")
        let s0 = sources[0]
        for s in sources {
            try require(s.rank == 4 && s.isContiguous, op, "operands must be contiguous NHWC, got \(s.shape)")
            try require(s.dtype == .f32 || s.dtype == .f16, op, "operands must be f32 or f16, got \(s.dtype)")
            try require(Array(s.shape.prefix(3)) == Array(s0.shape.prefix(3)), op, "operands \(s0.shape) and \(s.shape) differ in N, H, W")
        }
        let (n, c) = (s0.shape[0], channels)
        for (name, t) in [("channel bias", channelBias), ("μ", norm?.mu), ("a", norm?.a), ("b", norm?.b)] {
            if let t { try require(t.dtype == .f32 && t.isContiguous && t.count == n * c, op, "\(name) must be f32 [\(n), \(c)], got \(t.shape)") }
        }
        switch resample {
        case .none: return (n, s0.shape[1], s0.shape[2])
        case .up: return (n, 2 * s0.shape[1], 2 * s0.shape[2])
        case .down:
            try require(s0.shape[1] >= 2 && s0.shape[2] >= 2, op, "2×2 average needs H, W ≥ 2, got \(s0.shape)")
            return (n, s0.shape[1] / 2, s0.shape[2] / 2)
        }
    }

    /// The C description; valid while `self`'s tensors live (they do for the call's duration).
    func withC<R>(_ body: (UnsafePointer<ck_conv_input>) throws -> R) rethrows -> R {
        func act(_ t: Tensor?) -> ck_act {
            guard let t else { return ck_act(data: nil, C: 0, f16: 0) }
            return ck_act(data: t.dtype == .f16 ? UnsafeRawPointer(t.f16) : UnsafeRawPointer(t.f32), C: Int32(t.lastDim),
                          f16: t.dtype == .f16 ? 1 : 0)
        }
        var c = ck_conv_input(src: (act(sources[0]), act(sources.count > 1 ? sources[1] : nil)), nsrc: Int32(sources.count),
                              H: Int32(sources[0].shape[1]), W: Int32(sources[0].shape[2]), cbias: channelBias.map { UnsafePointer($0.f32) },
                              mu: norm.map { UnsafePointer($0.mu.f32) }, a: norm.map { UnsafePointer($0.a.f32) },
                              b: norm.map { UnsafePointer($0.b.f32) }, silu: silu ? 1 : 0, resample: resample.rawValue)
        return try body(&c)
    }
}

extension Ops {
    /// GroupNorm of the channel concatenation of `sources` (+ channelBias [N, C]) with optional affine and
    /// scale-shift, folded for `ConvInput.norm`.
    public static func groupNormFold(_ sources: [Tensor], channelBias: Tensor? = nil, groups: Int, eps: Float = 1e-5,
                                     gamma: Tensor? = nil, beta: Tensor? = nil, scale: Tensor? = nil,
                                     shift: Tensor? = nil) throws -> GroupNormFold {
        try Profiler.measure("groupNormFold") {
            let probe = ConvInput(sources, channelBias: channelBias)
            let (n, h, w) = try probe.checkedGeometry("groupNormFold")
            let c = probe.channels
            guard groups >= 1, c % groups == 0 else {
                throw UnCLIPError.invalidArgument(name: "groups", detail: "\(c) channels are not divisible into \(groups) groups")
            }
            for (name, t, count) in [("gamma", gamma, c), ("beta", beta, c), ("scale", scale, n * c), ("shift", shift, n * c)] {
                if let t { try require(t.dtype == .f32 && t.isContiguous && t.count == count, "groupNormFold", "\(name) must have \(count) f32 values, has \(t.shape)") }
            }
            let fold = GroupNormFold(mu: try Tensor(uninitialized: [n, c]), a: try Tensor(uninitialized: [n, c]), b: try Tensor(uninitialized: [n, c]))
            probe.withC { ci in
                withUnsafePointer(to: ci.pointee.src) { src in
                    src.withMemoryRebound(to: ck_act.self, capacity: 2) { s in
                        ck_group_norm_fold(Int32(n), Int32(h * w), s, Int32(sources.count), ci.pointee.cbias, Int32(groups), eps,
                                           gamma?.f32, beta?.f32, scale?.f32, shift?.f32, fold.mu.f32, fold.a.f32, fold.b.f32)
                    }
                }
            }
            return fold
        }
    }

    /// The fused convolution: conv(input) + bias + resampled residual, stored as `out` (f32 or f16). int8 weights
    /// run ck_conv2d_q8_fused (nothing materialised); f32 weights materialise the input and run the f32 kernels,
    /// the same arithmetic as GroupNorm → SiLU → resample → conv2d → add.
    /// `residualInPlace`: the result is stored over the residual's own buffer (int8 weights; it must be a plain
    /// residual of the output's shape and type that no input shares), which saves a tensor of the output's size.
    public static func conv2d(_ input: ConvInput, _ w: Conv2dWeight, residual: Tensor? = nil,
                              residualResample: ConvInput.Resample = .none, residualInPlace: Bool = false,
                              out: DType = .f32) throws -> Tensor {
        try Profiler.measure("conv2dFused") {
            let (n, h, wd) = try input.checkedGeometry("conv2d")
            try require(input.channels == w.inChannels, "conv2d", "input has \(input.channels) channels, weight expects \(w.inChannels)")
            try require(out == .f32 || out == .f16, "conv2d", "stores f32 or f16, not \(out)")
            var p = ck_conv2d_params(N: Int32(n), H: Int32(h), W: Int32(wd), Cin: Int32(w.inChannels), Cout: Int32(w.outChannels),
                                     kh: Int32(w.kernel.h), kw: Int32(w.kernel.w), stride: Int32(w.stride), pad: Int32(w.padding), Ho: 0, Wo: 0)
            guard ck_conv2d_shape(&p) == 0 else {
                throw UnCLIPError.shapeMismatch(operation: "conv2d", detail: "input \([n, h, wd]) is smaller than the \(w.kernel.h)x\(w.kernel.w) kernel")
            }
            let yShape = [n, Int(p.Ho), Int(p.Wo), w.outChannels]
            if let r = residual {
                let f = residualResample == .up ? (1, 2) : residualResample == .down ? (2, 1) : (1, 1)
                let expect = [n, yShape[1] * f.0 / f.1, yShape[2] * f.0 / f.1, w.outChannels]
                try require(r.shape == expect && r.isContiguous && (r.dtype == .f32 || r.dtype == .f16) &&
                            (residualResample != .up || (yShape[1] % 2 == 0 && yShape[2] % 2 == 0)),
                            "conv2d", "residual \(r.shape) \(r.dtype) does not match the output \(yShape) (\(residualResample))")
            }
            if residualInPlace, let r = residual {      // checked for every weight kind, used by the int8 kernel
                try require(residualResample == .none && r.dtype == out && r.offset == 0 &&
                            !input.sources.contains(where: { $0.storage === r.storage }),
                            "conv2d", "an in-place residual must be a plain \(out) tensor of the output's shape that no input shares")
            }
            guard w.kind == .q8 else { return try unfusedConv2d(input, w, residual: residual, residualResample, out: out) }
            let y = try (residualInPlace ? residual : nil) ?? Tensor(uninitialized: yShape, dtype: out)
            let winograd = usesWinograd(&p)
            // the multiply-accumulates performed: Winograd's 16 per 2×2 tile and channel pair (4/9 of direct's)
            Profiler.count(macs: winograd ? n * winogradTiles(p) * 16 * w.inChannels * w.outChannels
                                          : y.count * w.inChannels * w.kernel.h * w.kernel.w)
            let nt = Int32(Runtime.threads)
            try input.withC { ci in
                let res = residual.map { r in
                    ck_conv_residual(data: r.dtype == .f16 ? UnsafeRawPointer(r.f16) : UnsafeRawPointer(r.f32), f16: r.dtype == .f16 ? 1 : 0,
                                     resample: residualResample.rawValue)
                }
                // Winograd's transformed weights: kept with the weight under MemoryPlan.fast; with streamed weights
                // made chunk by chunk inside the call, in the scratch (the whole copy is 32/9 of the int8 weight)
                let wino = winograd && !MemoryPlan.streamWeights ? w.winograd.weights(for: w) : nil
                let chunk = winograd && wino == nil ? ck_winograd_chunk_cols(p.Cout, p.Cin) : 0
                let bytes = !winograd ? ck_conv2d_q8_fused_scratch_size(&p, ci, nt)
                    : wino != nil ? ck_conv2d_q8_winograd_scratch_size(&p, ci, nt)
                    : ck_conv2d_q8_winograd_streamed_scratch_size(&p, ci, chunk, nt)
                try withScratch(bytes, nil) { s in
                    (w.bias ?? []).withUnsafeBufferPointer { bias in
                        let mat = w.matrix
                        let (yp, b, f16) = (out == .f16 ? UnsafeMutableRawPointer(y.f16) : UnsafeMutableRawPointer(y.f32),
                                            w.bias == nil ? nil : bias.baseAddress, Int32(out == .f16 ? 1 : 0))
                        func run(_ rp: UnsafePointer<ck_conv_residual>?) {
                            if let wino {
                                ck_conv2d_q8_winograd(&p, ci, wino.w16, wino.scale, wino.colsum, b, rp, yp, f16, s)
                            } else if winograd {
                                ck_conv2d_q8_winograd_streamed(&p, ci, mat.q8, mat.scale, b, rp, yp, f16, chunk, s)
                            } else {
                                ck_conv2d_q8_fused(&p, ci, mat.q8, mat.scale, mat.colsum, b, rp, yp, f16, s)
                            }
                        }
                        if var r = res { run(&r) } else { run(nil) }
                    }
                }
            }
            w.matrix.releaseIfStreaming()
            return y
        }
    }

    /// Tiles of 2×2 outputs per image below which `auto` keeps the direct convolution: the per-call weight
    /// transform (≈ 16·Cout·Cin additions) must stay small against the 16·Cout·Cin·tiles multiply-accumulates.
    /// Per image, not per batch, so that an image's result never depends on what it is batched with.
    static let winogradMinTiles = 256

    /// Tiles of 2×2 outputs per image (partial tiles at odd sizes count).
    static func winogradTiles(_ p: ck_conv2d_params) -> Int { ((Int(p.Ho) + 1) / 2) * ((Int(p.Wo) + 1) / 2) }

    /// Whether an int8 convolution of geometry `p` runs as Winograd F(2×2, 3×3): a 3×3, stride-1, padding-1
    /// kernel, and under `auto` enough tiles and the AVX2 path, whose int8 kernel widens both operands to int16
    /// (vpmaddwd), so 2.25× fewer multiply-accumulates are 2.25× fewer instructions (on VNNI/AMX hosts it has not
    /// been measured, and the scalar path stays the plain reference).
    static func usesWinograd(_ p: inout ck_conv2d_params) -> Bool {
        guard ck_conv2d_winograd_applies(&p) != 0 else { return false }
        switch Runtime.convAlgorithm {
        case .direct: return false
        case .winograd: return true
        case .auto:
            return winogradTiles(p) >= winogradMinTiles && Runtime.path == .avx2
        }
    }

    /// f32 weights: the input materialised (or used as it is when plain), the f32 convolution, the residual added.
    private static func unfusedConv2d(_ input: ConvInput, _ w: Conv2dWeight, residual: Tensor?, _ rr: ConvInput.Resample,
                                      out: DType) throws -> Tensor {
        let x: Tensor
        if input.isPlain {
            x = input.sources[0]
        } else {
            let (n, h, wd) = try input.checkedGeometry("conv2d")
            x = try Tensor(uninitialized: [n, h, wd, input.channels])
            input.withC { ck_conv_input_materialize(Int32(n), $0, x.f32) }
        }
        var y = try conv2d(x, w)                                                                      // [N, Ho, Wo, Cout]
        if var r = residual {
            r = try cast(r, to: .f32)
            switch rr {
            case .none: break
            case .up: r = try upsampleNearest2x(r)
            case .down: r = try avgPool2x2(r)
            }
            y = try add(r, y)
        }
        return try cast(y, to: out)
    }

    /// The same values as `dtype` (f32 ↔ f16; binary16 rounds to nearest even, overflow gives ±∞); self when it is already.
    public static func cast(_ x: Tensor, to dtype: DType) throws -> Tensor {
        if x.dtype == dtype { return x }
        return try Profiler.measure("cast") {
            let x = try x.dtype == .f32 ? x.contiguous() : x
            try require(x.isContiguous, "cast", "needs a contiguous tensor, got strides \(x.strides)")
            let y = try Tensor(uninitialized: x.shape, dtype: dtype)
            switch (x.dtype, dtype) {
            case (.f32, .f16): ck_f32_to_f16(x.count, x.f32, y.f16)
            case (.f16, .f32): ck_f16_to_f32(x.count, x.f16, y.f32)
            default: throw UnCLIPError.invalidArgument(name: "cast", detail: "\(x.dtype) → \(dtype) is not supported")
            }
            return y
        }
    }
}

extension PackedMatrix {
    /// Under MemoryPlan.streamWeights, drops a mapped int8 weight's pages once its layer ran.
    func releaseIfStreaming() {
        if kind == .q8, MemoryPlan.streamWeights { storage.dropMappedPages() }
    }
}
