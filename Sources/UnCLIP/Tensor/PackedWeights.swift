import CKernels

/// A weight matrix [N, K] in the kernels' compute layout: f32 panels, or int8 panels with per-output-channel
/// scales and column sums (ckernels.h).
struct PackedMatrix: @unchecked Sendable {
    let kind: LinearWeight.Kind
    let storage: TensorStorage
    let scale: [Float]
    let colsum: [Int32]

    /// `packF32` / `packQ8` fill the panels from the caller's weight (plain or convolution layout).
    init(n: Int, k: Int, quantize: Bool,
         packF32: (UnsafeMutablePointer<Float>) -> Void,
         packQ8: (UnsafeMutablePointer<Int8>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Int32>) -> Void) {
        if quantize {
            kind = .q8
            storage = TensorStorage(byteCount: ck_q8_packed_size(Int32(n), Int32(k)))
            var s = [Float](repeating: 0, count: n), c = [Int32](repeating: 0, count: n)
            packQ8(storage.raw.assumingMemoryBound(to: Int8.self), &s, &c)
            scale = s
            colsum = c
        } else {
            kind = .f32
            storage = TensorStorage(byteCount: ck_gemm_f32_packed_size(Int32(n), Int32(k)))
            packF32(storage.raw.assumingMemoryBound(to: Float.self))
            scale = []
            colsum = []
        }
    }

    /// int8 panels already in the compute layout (e.g. mapped from a file): used in place.
    init(q8 storage: TensorStorage, scale: [Float], colsum: [Int32]) {
        kind = .q8
        self.storage = storage
        self.scale = scale
        self.colsum = colsum
    }

    var f32: UnsafeMutablePointer<Float> { storage.raw.assumingMemoryBound(to: Float.self) }
    var q8: UnsafeMutablePointer<Int8> { storage.raw.assumingMemoryBound(to: Int8.self) }
}

/// The bias as an array after checking it has one value per output.
private func checkedBias(_ bias: Tensor?, outputs: Int, _ op: String) throws -> [Float]? {
    guard let b = bias else { return nil }
    try require(b.count == outputs && b.dtype == .f32, op, "bias has \(b.count) values for \(outputs) outputs")
    return b.toArray()
}

/// A linear layer's weight [out, in] (PyTorch layout) packed for `Ops.linear`, f32 or int8.
public final class LinearWeight: @unchecked Sendable {
    public enum Kind: Sendable { case f32, q8 }
    public let inFeatures: Int
    public let outFeatures: Int
    public let bias: [Float]?
    let matrix: PackedMatrix
    public var kind: Kind { matrix.kind }

    public init(weight: Tensor, bias: Tensor? = nil, quantize: Bool = false) throws {
        try require(weight.rank == 2 && weight.dtype == .f32, "LinearWeight", "weight must be f32 [out, in], got \(weight.shape)")
        let w = try weight.contiguous()
        let (n, k) = (w.shape[0], w.shape[1])
        try require(n > 0 && k > 0, "LinearWeight", "empty weight \(w.shape)")
        self.bias = try checkedBias(bias, outputs: n, "LinearWeight")
        inFeatures = k
        outFeatures = n
        matrix = PackedMatrix(n: n, k: k, quantize: quantize,
                              packF32: { ck_gemm_f32_pack(Int32(n), Int32(k), w.f32, Int32(k), $0) },
                              packQ8: { ck_q8_quantize_pack(Int32(n), Int32(k), w.f32, Int32(k), $0, $1, $2) })
    }

    /// From int8 panels in the compute layout (a q8 file's tensor), used without copying.
    init(packed: PackedMatrix, outFeatures: Int, inFeatures: Int, bias: [Float]?) {
        matrix = packed
        self.outFeatures = outFeatures
        self.inFeatures = inFeatures
        self.bias = bias
    }
}

/// A convolution's weight [Cout, Cin, kh, kw] packed for `Ops.conv2d`, with its geometry.
public final class Conv2dWeight: @unchecked Sendable {
    public let inChannels: Int
    public let outChannels: Int
    public let kernel: (h: Int, w: Int)
    public let stride: Int
    public let padding: Int
    public let bias: [Float]?
    let matrix: PackedMatrix
    let winograd = WinogradCache()
    public var kind: LinearWeight.Kind { matrix.kind }

    public init(weight: Tensor, bias: Tensor? = nil, stride: Int = 1, padding: Int = 0, quantize: Bool = false) throws {
        try require(weight.rank == 4 && weight.dtype == .f32, "Conv2dWeight",
                    "weight must be f32 [Cout, Cin, kh, kw], got \(weight.shape)")
        guard stride >= 1, padding >= 0 else {
            throw UnCLIPError.invalidArgument(name: "convolution", detail: "stride \(stride) must be ≥ 1 and padding \(padding) ≥ 0")
        }
        let w = try weight.contiguous()
        let (co, ci, kh, kw) = (w.shape[0], w.shape[1], w.shape[2], w.shape[3])
        try require(co > 0 && ci > 0 && kh > 0 && kw > 0, "Conv2dWeight", "empty weight \(w.shape)")
        self.bias = try checkedBias(bias, outputs: co, "Conv2dWeight")
        inChannels = ci
        outChannels = co
        kernel = (kh, kw)
        self.stride = stride
        self.padding = padding
        let (o, i, h, wd) = (Int32(co), Int32(ci), Int32(kh), Int32(kw))
        matrix = PackedMatrix(n: co, k: ci * kh * kw, quantize: quantize,
                              packF32: { ck_gemm_f32_pack_conv(o, i, h, wd, w.f32, $0) },
                              packQ8: { ck_q8_quantize_pack_conv(o, i, h, wd, w.f32, $0, $1, $2) })
    }

    /// From int8 panels in the compute layout, used without copying; `shape` is [Cout, Cin, kh, kw].
    init(packed: PackedMatrix, shape: [Int], bias: [Float]?, stride: Int, padding: Int) throws {
        guard stride >= 1, padding >= 0 else {
            throw UnCLIPError.invalidArgument(name: "convolution", detail: "stride \(stride) must be ≥ 1 and padding \(padding) ≥ 0")
        }
        matrix = packed
        outChannels = shape[0]
        inChannels = shape[1]
        kernel = (shape[2], shape[3])
        self.bias = bias
        self.stride = stride
        self.padding = padding
    }
}
