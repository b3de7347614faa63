/// The two UNets of Karlo: diffusers' UNet2DConditionModel with the decoder's block types
/// (ResnetDownsampleBlock2D / SimpleCrossAttnDownBlock2D, UNetMidBlock2DSimpleCrossAttn, SimpleCrossAttnUpBlock2D /
/// ResnetUpsampleBlock2D, class_embed_type "identity") and UNet2DModel with ResnetDownsample/Upsample blocks and
/// an attention-free mid block (super-resolution). NHWC throughout.
public final class UNet: @unchecked Sendable {
    public struct Config: Sendable {
        public let channels: [Int]
        public let layersPerBlock: Int
        public let down: [String], up: [String]
        public let midAttention: Bool
        public let headDims: [Int]
        public let groups: Int
        public let eps: Float
        public let scaleShift: Bool
        public let inChannels, outChannels, sampleSize: Int
        public let conditioned: Bool

        static let downTypes: Set<String> = ["ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"]
        static let upTypes: Set<String> = ["ResnetUpsampleBlock2D", "SimpleCrossAttnUpBlock2D"]

        /// From a UNet2DConditionModel (`conditioned`) or UNet2DModel config.json.
        public init(_ c: JSON, conditioned: Bool) throws {
            func bad(_ d: String) -> UnCLIPError { .invalidArgument(name: conditioned ? "decoder config" : "super-res config", detail: d) }
            func int(_ k: String) throws -> Int { try c.positiveInt(k, in: conditioned ? "decoder" : "super-res") }
            guard let ch = c["block_out_channels"]?.array?.compactMap({ $0.int.map(Int.init) }), !ch.isEmpty, ch.allSatisfy({ $0 > 0 && $0 < 1 << 16 }) else {
                throw bad("block_out_channels is missing or invalid")
            }
            channels = ch
            layersPerBlock = try int("layers_per_block")
            guard let d = c["down_block_types"]?.array?.compactMap(\.string), let u = c["up_block_types"]?.array?.compactMap(\.string),
                  d.count == ch.count, u.count == ch.count else { throw bad("down/up_block_types must list one type per block") }
            for t in d where !Config.downTypes.contains(t) { throw bad("down block \(t) is not supported (Karlo uses \(Config.downTypes.sorted()))") }
            for t in u where !Config.upTypes.contains(t) { throw bad("up block \(t) is not supported (Karlo uses \(Config.upTypes.sorted()))") }
            down = d
            up = u
            let mid = c["mid_block_type"]?.string ?? "UNetMidBlock2D"
            switch mid {
            case "UNetMidBlock2DSimpleCrossAttn": midAttention = true
            case "UNetMidBlock2D":
                midAttention = false
                if c["add_attention"]?.bool ?? true { throw bad("UNetMidBlock2D with attention is not supported (Karlo's super-res has add_attention false)") }
            default: throw bad("mid block \(mid) is not supported")
            }
            if let list = c["attention_head_dim"]?.array {
                headDims = list.compactMap { $0.int.map(Int.init) }
                guard headDims.count == ch.count else { throw bad("attention_head_dim must have one value per block") }
            } else {
                headDims = Array(repeating: Int(c["attention_head_dim"]?.int ?? 8), count: ch.count)
            }
            groups = try int("norm_num_groups")
            eps = Float(c["norm_eps"]?.double ?? 1e-5)
            switch c["resnet_time_scale_shift"]?.string ?? "default" {
            case "default": scaleShift = false
            case "scale_shift": scaleShift = true
            case let s: throw bad("resnet_time_scale_shift \(s)")
            }
            inChannels = try int("in_channels")
            outChannels = try int("out_channels")
            sampleSize = try int("sample_size")
            self.conditioned = conditioned
            if conditioned, (c["class_embed_type"]?.string ?? "") != "identity" { throw bad("class_embed_type must be \"identity\" (Karlo's)") }
            if !(c["flip_sin_to_cos"]?.bool ?? true) || (c["freq_shift"]?.int ?? 0) != 0 { throw bad("only flip_sin_to_cos true, freq_shift 0") }
            for x in ch where x % groups != 0 { throw bad("\(x) channels are not divisible into \(groups) groups") }
        }
    }

    struct Down {
        let resnets: [ResnetBlock2D]
        let attentions: [AddedKVAttention]
        let downsampler: ResnetBlock2D?
    }

    struct Up {
        let resnets: [ResnetBlock2D]
        let attentions: [AddedKVAttention]
        let upsampler: ResnetBlock2D?
    }

    public let config: Config
    let time: TimestepEmbedding
    let convIn, convOut: Conv2dWeight
    let normOutG, normOutB: Tensor
    let downs: [Down]
    let midResnets: [ResnetBlock2D]
    let midAttention: AddedKVAttention?
    let ups: [Up]

    public init(scope s: ComponentScope, config c: Config) throws {
        config = c
        let (g, e, ss) = (c.groups, c.eps, c.scaleShift)
        time = try TimestepEmbedding(scope: s, prefix: "time_embedding", channels: c.channels[0])
        convIn = try s.conv2d("conv_in", padding: 1)
        convOut = try s.conv2d("conv_out", padding: 1)
        normOutG = try s.tensor("conv_norm_out.weight")
        normOutB = try s.tensor("conv_norm_out.bias")
        try require(convIn.inChannels == c.inChannels && convOut.outChannels == c.outChannels, "UNet", "conv_in/conv_out channels vs config")
        let n = c.channels.count
        downs = try (0..<n).map { i in
            let p = "down_blocks.\(i)."
            let attn = c.down[i] == "SimpleCrossAttnDownBlock2D"
            return Down(
                resnets: try (0..<c.layersPerBlock).map { try ResnetBlock2D(scope: s, prefix: p + "resnets.\($0).", groups: g, eps: e, scaleShift: ss) },
                attentions: attn ? try (0..<c.layersPerBlock).map {
                    try AddedKVAttention(scope: s, prefix: p + "attentions.\($0).", heads: c.channels[i] / c.headDims[i], groups: g, eps: e)
                } : [],
                downsampler: i < n - 1 ? try ResnetBlock2D(scope: s, prefix: p + "downsamplers.0.", groups: g, eps: e, scaleShift: ss, resample: .down) : nil)
        }
        midResnets = try (0..<2).map { try ResnetBlock2D(scope: s, prefix: "mid_block.resnets.\($0).", groups: g, eps: e, scaleShift: ss) }
        midAttention = c.midAttention
            ? try AddedKVAttention(scope: s, prefix: "mid_block.attentions.0.", heads: c.channels[n - 1] / c.headDims[n - 1], groups: g, eps: e) : nil
        let revHead = Array(c.headDims.reversed()), revCh = Array(c.channels.reversed())
        ups = try (0..<n).map { i in
            let p = "up_blocks.\(i)."
            let attn = c.up[i] == "SimpleCrossAttnUpBlock2D"
            return Up(
                resnets: try (0...c.layersPerBlock).map { try ResnetBlock2D(scope: s, prefix: p + "resnets.\($0).", groups: g, eps: e, scaleShift: ss) },
                attentions: attn ? try (0...c.layersPerBlock).map {
                    try AddedKVAttention(scope: s, prefix: p + "attentions.\($0).", heads: revCh[i] / revHead[i], groups: g, eps: e)
                } : [],
                upsampler: i < n - 1 ? try ResnetBlock2D(scope: s, prefix: p + "upsamplers.0.", groups: g, eps: e, scaleShift: ss, resample: .up) : nil)
        }
    }

    /// sample [N, H, W, Cin], timestep t, and for the decoder the context [N, Lc, X], its 0/1 mask [N][Lc] and the
    /// class embedding (text_proj's additive time embedding) [N, T] → [N, H, W, Cout].
    public func callAsFunction(_ sample: Tensor, timestep: Float, context: Tensor? = nil, contextMask: [[Bool]]? = nil,
                               classLabels: Tensor? = nil) throws -> Tensor {
        let n = sample.shape[0]
        try require(sample.rank == 4 && sample.shape[3] == config.inChannels, "UNet", "sample \(sample.shape) vs in_channels \(config.inChannels)")
        let levels = config.channels.count
        try require(sample.shape[1] % (1 << (levels - 1)) == 0 && sample.shape[2] % (1 << (levels - 1)) == 0, "UNet",
                    "spatial size \(sample.shape[1])x\(sample.shape[2]) must be divisible by \(1 << (levels - 1))")
        var emb = try time([Float](repeating: timestep, count: n))                                       // [N, T]
        var mask: Tensor? = nil
        if config.conditioned {
            guard let classLabels, let context, let contextMask else {
                throw UnCLIPError.invalidArgument(name: "decoder inputs", detail: "the conditioned UNet needs context, its mask and class labels")
            }
            emb = try Ops.add(emb, classLabels)                                                          // class_embed_type identity
            let lc = context.shape[1]
            try require(contextMask.count == n && contextMask.allSatisfy({ $0.count == lc }), "UNet", "context mask shape")
            mask = try Tensor(shape: [n, lc], values: contextMask.flatMap { $0.map { $0 ? 0 : -10000 } })  // (1 − m)·−10000
        }
        // Activations that outlive a layer (block outputs, skips) in f16 for int8 weights under MemoryPlan.small.
        // (judged by the resnets' convolutions: a small conv_in may stay f32 in a q8 file)
        let act: DType = MemoryPlan.compactActivations && midResnets[0].conv1.kind == .q8 ? .f16 : .f32
        func attend(_ a: AddedKVAttention, _ x: Tensor) throws -> Tensor {
            try Ops.cast(try a(x, context: context!, contextMask: mask), to: act)
        }
        var h = try Ops.conv2d(ConvInput([sample]), convIn, out: act)                                    // [N, H, W, C0]
        var skips = [h]
        for (b, d) in downs.enumerated() {
            for (i, r) in d.resnets.enumerated() {
                h = try Profiler.label("down_blocks.\(b).resnets.\(i)") { try r([h], emb: emb, out: act) }
                if !d.attentions.isEmpty { h = try attend(d.attentions[i], h) }
                skips.append(h)
            }
            if let ds = d.downsampler {
                h = try Profiler.label("down_blocks.\(b).downsamplers") { try ds([h], emb: emb, out: act) } // [N, H/2, W/2, C]
                skips.append(h)
            }
        }
        h = try midResnets[0]([h], emb: emb, out: act)
        if let a = midAttention { h = try attend(a, h) }
        h = try midResnets[1]([h], emb: emb, out: act)
        for (b, u) in ups.enumerated() {
            for (i, r) in u.resnets.enumerated() {
                let skip = skips.removeLast()
                h = try Profiler.label("up_blocks.\(b).resnets.\(i)") { try r([h, skip], emb: emb, out: act) } // cat([h, skip], channels)
                if !u.attentions.isEmpty { h = try attend(u.attentions[i], h) }
            }
            if let us = u.upsampler { h = try Profiler.label("up_blocks.\(b).upsamplers") { try us([h], emb: emb, out: act) } } // [N, 2H, 2W, C]
        }
        let norm = try Ops.groupNormFold([h], groups: config.groups, eps: config.eps, gamma: normOutG, beta: normOutB)
        return try Ops.conv2d(ConvInput([h], norm: norm, silu: true), convOut)                           // [N, H, W, Cout]
    }
}
