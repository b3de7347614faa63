import CKernels

/// A linear layer's weight in the kernels' compute layout: f32 panels, or int8 panels with per-output-channel
/// scales (see ckernels.h). Built once at load; used by `Ops.linear`.
public final class LinearWeight: @unchecked Sendable {
    public enum Kind: Sendable { case f32, q8 }
    public let kind: Kind
    public let inFeatures: Int
    public let outFeatures: Int
    public let bias: [Float]?
    let packed: TensorStorage
    let scale: [Float]
    let colsum: [Int32]

    /// From a PyTorch-layout weight [out, in] (and bias [out]); `quantize` packs it as int8.
    public init(weight: Tensor, bias: Tensor? = nil, quantize: Bool = false) throws {
        try require(weight.rank == 2 && weight.dtype == .f32, "LinearWeight", "weight must be f32 [out, in], got \(weight.shape)")
        let w = try weight.contiguous()
        let (n, k) = (w.shape[0], w.shape[1])
        try require(n > 0 && k > 0, "LinearWeight", "empty weight \(w.shape)")
        if let b = bias {
            try require(b.count == n, "LinearWeight", "bias has \(b.count) values for \(n) outputs")
            self.bias = b.toArray()
        } else {
            self.bias = nil
        }
        inFeatures = k
        outFeatures = n
        if quantize {
            kind = .q8
            packed = TensorStorage(byteCount: ck_q8_packed_size(Int32(n), Int32(k)))
            var s = [Float](repeating: 0, count: n)
            var c = [Int32](repeating: 0, count: n)
            ck_q8_quantize_pack(Int32(n), Int32(k), w.f32, Int32(k), packed.raw.assumingMemoryBound(to: Int8.self), &s, &c)
            scale = s
            colsum = c
        } else {
            kind = .f32
            packed = TensorStorage(byteCount: ck_gemm_f32_packed_size(Int32(n), Int32(k)))
            ck_gemm_f32_pack(Int32(n), Int32(k), w.f32, Int32(k), packed.raw.assumingMemoryBound(to: Float.self))
            scale = []
            colsum = []
        }
    }
}

/// A convolution's weight [Cout, Cin, kh, kw] in the compute layout, with its geometry.
public final class Conv2dWeight: @unchecked Sendable {
    public let kind: LinearWeight.Kind
    public let inChannels: Int
    public let outChannels: Int
    public let kernel: (h: Int, w: Int)
    public let stride: Int
    public let padding: Int
    public let bias: [Float]?
    let packed: TensorStorage
    let scale: [Float]
    let colsum: [Int32]

    public init(weight: Tensor, bias: Tensor? = nil, stride: Int = 1, padding: Int = 0, quantize: Bool = false) throws {
        try require(weight.rank == 4 && weight.dtype == .f32, "Conv2dWeight",
                    "weight must be f32 [Cout, Cin, kh, kw], got \(weight.shape)")
        guard stride >= 1, padding >= 0 else {
            throw UnCLIPError.invalidArgument(name: "convolution", detail: "stride \(stride) / padding \(padding)")
        }
        let w = try weight.contiguous()
        let (co, ci, kh, kw) = (w.shape[0], w.shape[1], w.shape[2], w.shape[3])
        try require(co > 0 && ci > 0 && kh > 0 && kw > 0, "Conv2dWeight", "empty weight \(w.shape)")
        if let b = bias {
            try require(b.count == co, "Conv2dWeight", "bias has \(b.count) values for \(co) outputs")
            self.bias = b.toArray()
        } else {
            self.bias = nil
        }
        inChannels = ci
        outChannels = co
        kernel = (kh, kw)
        self.stride = stride
        self.padding = padding
        let k = ci * kh * kw
        if quantize {
            kind = .q8
            packed = TensorStorage(byteCount: ck_q8_packed_size(Int32(co), Int32(k)))
            var s = [Float](repeating: 0, count: co)
            var c = [Int32](repeating: 0, count: co)
            ck_q8_quantize_pack_conv(Int32(co), Int32(ci), Int32(kh), Int32(kw), w.f32,
                                     packed.raw.assumingMemoryBound(to: Int8.self), &s, &c)
            scale = s
            colsum = c
        } else {
            kind = .f32
            packed = TensorStorage(byteCount: ck_gemm_f32_packed_size(Int32(co), Int32(k)))
            ck_gemm_f32_pack_conv(Int32(co), Int32(ci), Int32(kh), Int32(kw), w.f32,
                                  packed.raw.assumingMemoryBound(to: Float.self))
            scale = []
            colsum = []
        }
    }
}
