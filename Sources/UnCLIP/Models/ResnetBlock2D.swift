/// diffusers' ResnetBlock2D (models/resnet.py) as the Karlo UNets use it: GN1 → SiLU → (avg-pool 2×2 or
/// nearest 2× on both branches) → conv1 → time embedding ("default": h += Lin(SiLU(emb)) then GN2;
/// "scale_shift": [s, b] = Lin(SiLU(emb)), GN2(h)·(1+s)+b) → SiLU → conv2; + shortcut (1×1 conv when the
/// channel count changes). output_scale_factor 1, no dropout at inference.
struct ResnetBlock2D {
    enum Resample { case none, down, up }
    let norm1g, norm1b, norm2g, norm2b: Tensor
    let conv1, conv2: Conv2dWeight
    let shortcut: Conv2dWeight?
    let timeProj: LinearWeight
    let groups: Int
    let eps: Float
    let scaleShift: Bool
    let resample: Resample

    init(scope s: ComponentScope, prefix p: String, groups: Int, eps: Float, scaleShift: Bool, resample: Resample = .none) throws {
        norm1g = try s.tensor(p + "norm1.weight"); norm1b = try s.tensor(p + "norm1.bias")
        norm2g = try s.tensor(p + "norm2.weight"); norm2b = try s.tensor(p + "norm2.bias")
        conv1 = try s.conv2d(p + "conv1", padding: 1)
        conv2 = try s.conv2d(p + "conv2", padding: 1)
        shortcut = s.has(p + "conv_shortcut.weight") ? try s.conv2d(p + "conv_shortcut") : nil
        timeProj = try s.linear(p + "time_emb_proj")
        self.groups = groups
        self.eps = eps
        self.scaleShift = scaleShift
        self.resample = resample
        try require(timeProj.outFeatures == (scaleShift ? 2 : 1) * conv1.outChannels, "ResnetBlock2D",
                    "\(p)time_emb_proj gives \(timeProj.outFeatures) values for \(conv1.outChannels) channels")
        try require(shortcut != nil || conv1.inChannels == conv2.outChannels, "ResnetBlock2D", "\(p) changes channels without conv_shortcut")
    }

    var convResample: ConvInput.Resample {
        switch resample {
        case .none: return .none
        case .down: return .down
        case .up: return .up
        }
    }

    /// inputs: x [N, H, W, Cin], or the up path's [h, skip] (concatenated along channels); emb [N, T]
    /// → [N, H', W', Cout] stored as `out`. Each convolution reads its GroupNorm/SiLU/resampled input and adds its
    /// residual itself (Ops.conv2d(ConvInput…)), so only conv1's output and the shortcut's are stored; the result
    /// overwrites the shortcut's.
    func callAsFunction(_ inputs: [Tensor], emb: Tensor, out: DType = .f32) throws -> Tensor {
        let rs = convResample
        let f1 = try Ops.groupNormFold(inputs, groups: groups, eps: eps, gamma: norm1g, beta: norm1b)
        let h = try Ops.conv2d(ConvInput(inputs, norm: f1, silu: true, resample: rs), conv1, out: out)        // [N, H', W', Cout]
        let t = try Ops.linear(try Ops.activation(emb, .silu), timeProj)                                  // [N, Cout or 2·Cout]
        let c = conv1.outChannels
        let input2: ConvInput
        if scaleShift {
            let tv = t.toArray(), n = inputs[0].shape[0]
            var sc = [Float](), sh = [Float]()
            for i in 0..<n { sc += tv[(i * 2 * c)..<(i * 2 * c + c)]; sh += tv[(i * 2 * c + c)..<((i + 1) * 2 * c)] }
            let f2 = try Ops.groupNormFold([h], groups: groups, eps: eps, gamma: norm2g, beta: norm2b,
                                           scale: try Tensor(shape: [n, c], values: sc), shift: try Tensor(shape: [n, c], values: sh))
            input2 = ConvInput([h], norm: f2, silu: true)                                                  // SiLU(GN2(h)·(1+s)+b)
        } else {
            let f2 = try Ops.groupNormFold([h], channelBias: t, groups: groups, eps: eps, gamma: norm2g, beta: norm2b)
            input2 = ConvInput([h], channelBias: t, norm: f2, silu: true)                                  // SiLU(GN2(h + temb))
        }
        if let shortcut {
            let skip = try Ops.conv2d(ConvInput(inputs, resample: rs), shortcut, out: out)                   // [N, H', W', Cout]
            return try Ops.conv2d(input2, conv2, residual: skip, residualInPlace: true, out: out)            // skip + conv2(·), over skip
        }
        try require(inputs.count == 1, "ResnetBlock2D", "two inputs need a conv_shortcut")
        return try Ops.conv2d(input2, conv2, residual: inputs[0], residualResample: rs, out: out)          // resample(x) + conv2(·)
    }
}
