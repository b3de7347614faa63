import CKernels
import UnCLIP
import CPeaks
import Foundation

/// Deterministic fill in [-scale, scale).
func randomArray(_ n: Int, seed: UInt64, scale: Float = 1) -> [Float] {
    var s = seed &* 6364136223846793005 &+ 1442695040888963407
    return (0..<n).map { _ in
        s = s &* 6364136223846793005 &+ 1442695040888963407
        return (Float(s >> 40) / Float(1 << 24) * 2 - 1) * scale
    }
}

/// Buffers that live as long as a case (the closures capture this).
final class Buffers: @unchecked Sendable {
    var f: [String: UnsafeMutablePointer<Float>] = [:]
    var b: [String: UnsafeMutableRawPointer] = [:]
    func floats(_ name: String, _ values: [Float]) -> UnsafeMutablePointer<Float> {
        let p = UnsafeMutablePointer<Float>.allocate(capacity: max(values.count, 1))
        p.initialize(from: values, count: values.count)
        f[name] = p
        return p
    }
    func zeros(_ name: String, _ n: Int) -> UnsafeMutablePointer<Float> { floats(name, [Float](repeating: 0, count: n)) }
    func raw(_ name: String, _ bytes: Int) -> UnsafeMutableRawPointer {
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 1), alignment: 64)
        b[name] = p
        return p
    }
    deinit {
        f.values.forEach { $0.deallocate() }
        b.values.forEach { $0.deallocate() }
    }
}

func pathName() -> String { String(cString: ck_isa_name(ck_isa_active())) }

func f32Ceiling() -> Ceiling { ck_isa_active() == CK_ISA_AVX512 || ck_isa_active() == CK_ISA_AMX ? .fmaZmm : .fmaYmm }
func q8Ceiling() -> Ceiling {
    switch ck_isa_active() {
    case CK_ISA_AMX: return .amx
    case CK_ISA_AVX512: return .vnni
    default: return .maddYmm
    }
}

/// Largest |a − b| relative to max(|b|, 1).
func relErr(_ a: UnsafePointer<Float>, _ b: [Float]) -> Float {
    var e: Float = 0, m: Float = 1
    for i in 0..<b.count {
        e = max(e, abs(a[i] - b[i]))
        m = max(m, abs(b[i]))
    }
    return e / m
}

/// The output rows a sampled check recomputes with the reference: first, last and a few in between.
func sampleRows(_ m: Int) -> [Int] { Array(Set([0, m / 3, m / 2, (2 * m) / 3, m - 1].filter { $0 >= 0 && $0 < m })).sorted() }

let f32Tolerance: Float = 2e-5  // the tests' Tolerance.gemmF32

// MARK: Convolution (NHWC, 3x3 pad 1 unless k says otherwise)

func convCase(label: String, n: Int, h: Int, w: Int, cin: Int, cout: Int, quantized: Bool, threads: Int) -> BenchCase {
    let buf = Buffers()
    var p = ck_conv2d_params(N: Int32(n), H: Int32(h), W: Int32(w), Cin: Int32(cin), Cout: Int32(cout), kh: 3, kw: 3,
                             stride: 1, pad: 1, Ho: 0, Wo: 0)
    precondition(ck_conv2d_shape(&p) == 0)
    let k = cin * 9, m = n * h * w
    let x = buf.floats("x", randomArray(n * h * w * cin, seed: 1))
    let wt = randomArray(cout * k, seed: 2, scale: 0.05)
    let bias = buf.floats("bias", randomArray(cout, seed: 3))
    let y = buf.zeros("y", m * cout)
    // The weight in GEMM order [Cout][K], k = tap·Cin + ci, for the reference and OpenBLAS.
    var wg = [Float](repeating: 0, count: cout * k)
    for co in 0..<cout { for ci in 0..<cin { for t in 0..<9 { wg[co * k + t * cin + ci] = wt[(co * cin + ci) * 9 + t] } } }
    let wgp = buf.floats("wg", wg)
    let work = 2.0 * Double(m) * Double(k) * Double(cout)
    var pp = p
    if quantized {
        let packed = buf.raw("packed", ck_q8_packed_size(Int32(cout), Int32(k))).assumingMemoryBound(to: Int8.self)
        let scale = buf.zeros("scale", cout)
        let colsum = buf.raw("colsum", cout * 4).assumingMemoryBound(to: Int32.self)
        ck_q8_quantize_pack_conv(Int32(cout), Int32(cin), 3, 3, wt, packed, scale, colsum)
        let scratch = buf.raw("scratch", ck_conv2d_q8_scratch_size(&p, Int32(threads)))
        return BenchCase(
            owner: buf, label: label, op: "conv3x3 int8", path: pathName(), work: work, ceiling: q8Ceiling(),
            run: { ck_conv2d_q8(&pp, x, packed, scale, colsum, bias, y, scratch) },
            validate: {
                var row = [Float](repeating: 0, count: k), ref = [Float](repeating: 0, count: cout)
                let rows = sampleRows(m)
                for r in rows {
                    ck_im2col_f32(&pp, x, Int32(r / (h * w)), Int32(r % (h * w)), 1, &row, Int32(k))
                    ck_gemm_q8_ref(1, Int32(cout), Int32(k), row, Int32(k), packed, scale, bias, &ref, Int32(cout))
                    if Array(UnsafeBufferPointer(start: y + r * cout, count: cout)) != ref {
                        throw ValidationFailure(description: "\(label): int8 output pixel \(r) differs from ck_gemm_q8_ref")
                    }
                }
                return "\(rows.count) pixels × \(cout) channels bit-exact vs ref"
            },
            openblas: nil)
    }
    let packed = buf.raw("packed", ck_gemm_f32_packed_size(Int32(cout), Int32(k))).assumingMemoryBound(to: Float.self)
    ck_gemm_f32_pack_conv(Int32(cout), Int32(cin), 3, 3, wt, packed)
    let scratch = buf.raw("scratch", ck_conv2d_f32_scratch_size(&p, Int32(threads)))
    // OpenBLAS: im2col 1024 output pixels at a time (never the whole image) and one sgemm per tile.
    let tile = 1024
    let col = buf.zeros("col", tile * k)
    return BenchCase(
        owner: buf, label: label, op: "conv3x3 f32", path: pathName(), work: work, ceiling: f32Ceiling(),
        run: { ck_conv2d_f32(&pp, x, packed, bias, y, scratch) },
        validate: {
            var row = [Float](repeating: 0, count: k), ref = [Float](repeating: 0, count: cout)
            var worst: Float = 0
            for r in sampleRows(m) {
                ck_im2col_f32(&pp, x, Int32(r / (h * w)), Int32(r % (h * w)), 1, &row, Int32(k))
                ck_gemm_f32_ref(1, Int32(cout), Int32(k), row, Int32(k), wgp, Int32(k), bias, &ref, Int32(cout))
                worst = max(worst, relErr(y + r * cout, ref))
            }
            if worst > f32Tolerance { throw ValidationFailure(description: "\(label): relative error \(worst) vs ref") }
            return String(format: "%d pixels vs ref, rel err %.1e", sampleRows(m).count, worst)
        },
        openblas: {
            for img in 0..<n {
                for p0 in stride(from: 0, to: h * w, by: tile) {
                    let rows = min(tile, h * w - p0)
                    ck_im2col_f32(&pp, x, Int32(img), Int32(p0), Int32(rows), col, Int32(k))
                    _ = ck_gemm_f32_openblas(Int32(rows), Int32(cout), Int32(k), col, Int32(k), wgp, Int32(k), bias,
                                             y + (img * h * w + p0) * cout, Int32(cout))
                }
            }
        })
}

// MARK: Linear

func gemmCase(label: String, m: Int, k: Int, n: Int, quantized: Bool, threads: Int) -> BenchCase {
    let buf = Buffers()
    let a = buf.floats("a", randomArray(m * k, seed: 4))
    let w = buf.floats("w", randomArray(n * k, seed: 5, scale: 0.05))
    let bias = buf.floats("bias", randomArray(n, seed: 6))
    let c = buf.zeros("c", m * n)
    let work = 2.0 * Double(m) * Double(k) * Double(n)
    if quantized {
        let packed = buf.raw("packed", ck_q8_packed_size(Int32(n), Int32(k))).assumingMemoryBound(to: Int8.self)
        let scale = buf.zeros("scale", n)
        let colsum = buf.raw("colsum", n * 4).assumingMemoryBound(to: Int32.self)
        ck_q8_quantize_pack(Int32(n), Int32(k), w, Int32(k), packed, scale, colsum)
        let scratch = buf.raw("scratch", ck_gemm_q8_scratch_size(Int32(m), Int32(k), Int32(threads)))
        return BenchCase(
            owner: buf, label: label, op: "linear int8", path: pathName(), work: work, ceiling: q8Ceiling(),
            run: { ck_gemm_q8(Int32(m), Int32(n), Int32(k), a, Int32(k), packed, scale, colsum, bias, c, Int32(n), scratch) },
            validate: {
                var ref = [Float](repeating: 0, count: n)
                for r in sampleRows(m) {
                    ck_gemm_q8_ref(1, Int32(n), Int32(k), a + r * k, Int32(k), packed, scale, bias, &ref, Int32(n))
                    if Array(UnsafeBufferPointer(start: c + r * n, count: n)) != ref {
                        throw ValidationFailure(description: "\(label): int8 row \(r) differs from ck_gemm_q8_ref")
                    }
                }
                return "\(sampleRows(m).count) rows bit-exact vs ref"
            },
            openblas: nil)
    }
    let packed = buf.raw("packed", ck_gemm_f32_packed_size(Int32(n), Int32(k))).assumingMemoryBound(to: Float.self)
    ck_gemm_f32_pack(Int32(n), Int32(k), w, Int32(k), packed)
    return BenchCase(
        owner: buf, label: label, op: "linear f32", path: pathName(), work: work, ceiling: f32Ceiling(),
        run: { ck_gemm_f32(Int32(m), Int32(n), Int32(k), a, Int32(k), packed, bias, c, Int32(n)) },
        validate: {
            var ref = [Float](repeating: 0, count: n), worst: Float = 0
            for r in sampleRows(m) {
                ck_gemm_f32_ref(1, Int32(n), Int32(k), a + r * k, Int32(k), w, Int32(k), bias, &ref, Int32(n))
                worst = max(worst, relErr(c + r * n, ref))
            }
            if worst > f32Tolerance { throw ValidationFailure(description: "\(label): relative error \(worst) vs ref") }
            return String(format: "%d rows vs ref, rel err %.1e", sampleRows(m).count, worst)
        },
        openblas: { _ = ck_gemm_f32_openblas(Int32(m), Int32(n), Int32(k), a, Int32(k), w, Int32(k), bias, c, Int32(n)) })
}

// MARK: Attention (the decoder's added-KV form: context keys first, then the image tokens)

func attentionCase(label: String, batch: Int, heads: Int, tokens: Int, context: Int, threads: Int) -> BenchCase {
    let buf = Buffers()
    let d = 64, hd = heads * d
    let q = buf.floats("q", randomArray(batch * tokens * hd, seed: 7))
    let ks = buf.floats("ks", randomArray(batch * tokens * hd, seed: 8)), vs = buf.floats("vs", randomArray(batch * tokens * hd, seed: 9))
    let kc = buf.floats("kc", randomArray(batch * context * hd, seed: 10)), vc = buf.floats("vc", randomArray(batch * context * hd, seed: 11))
    let lk = context + tokens
    let mask = buf.floats("mask", (0..<(batch * lk)).map { j in (j % lk) >= 20 && (j % lk) < context ? -10000 : 0 })
    let o = buf.zeros("o", batch * tokens * hd)
    var p = ck_attention_params()
    p.B = Int32(batch); p.H = Int32(heads); p.D = Int32(d); p.Lq = Int32(tokens); p.L0 = Int32(context); p.L1 = Int32(tokens)
    p.scale = 1 / Float(d).squareRoot()
    p.q = UnsafePointer(q); p.q_bs = tokens * hd; p.ldq = Int32(hd)
    p.k0 = UnsafePointer(kc); p.v0 = UnsafePointer(vc); p.kv0_bs = context * hd; p.ldkv0 = Int32(hd)
    p.k1 = UnsafePointer(ks); p.v1 = UnsafePointer(vs); p.kv1_bs = tokens * hd; p.ldkv1 = Int32(hd)
    p.mask = UnsafePointer(mask); p.mask_bs = lk; p.mask_qs = 0
    p.o = o; p.o_bs = tokens * hd; p.ldo = Int32(hd)
    let scratch = buf.raw("scratch", ck_attention_scratch_size(&p, Int32(threads)))
    let work = 2.0 * 2.0 * Double(batch * heads) * Double(tokens) * Double(lk) * Double(d)
    var pp = p
    return BenchCase(
        owner: buf, label: label, op: "attention f32", path: pathName(), work: work, ceiling: f32Ceiling(),
        run: { ck_attention(&pp, scratch) },
        validate: {
            // The reference on the first 32 queries of every batch and head.
            var r = pp
            r.Lq = 32
            let out = [Float](repeating: 0, count: batch * tokens * hd)
            var refOut = out
            refOut.withUnsafeMutableBufferPointer { r.o = $0.baseAddress; ck_attention_ref(&r) }
            var worst: Float = 0
            for b in 0..<batch {
                let off = b * tokens * hd
                worst = max(worst, relErr(o + off, Array(refOut[off..<(off + 32 * hd)])))
            }
            if worst > f32Tolerance { throw ValidationFailure(description: "\(label): relative error \(worst) vs ref") }
            return String(format: "32 queries × all heads vs ref, rel err %.1e", worst)
        },
        openblas: nil)
}

// MARK: Memory-bound

func groupNormCase(label: String, channels: Int, size: Int, silu: Bool) -> BenchCase {
    let buf = Buffers()
    let n = channels * size * size
    let x = buf.floats("x", randomArray(n, seed: 12, scale: 3))
    let g = buf.floats("g", randomArray(channels, seed: 13)), b = buf.floats("b", randomArray(channels, seed: 14))
    let y = buf.zeros("y", n)
    return BenchCase(
        owner: buf, label: label, op: silu ? "group norm + SiLU" : "group norm", path: pathName(),
        work: 3.0 * Double(n) * 4,  // read x twice (statistics, apply), write y once
        ceiling: .bandwidth,
        run: { ck_group_norm(1, Int32(size * size), Int32(channels), 32, 1e-5, x, g, b, nil, nil, silu ? 1 : 0, y) },
        validate: {
            var ref = [Float](repeating: 0, count: n)
            ck_group_norm_ref(1, Int32(size * size), Int32(channels), 32, 1e-5, x, g, b, nil, nil, silu ? 1 : 0, &ref)
            let e = relErr(y, ref)
            if e > 1e-5 { throw ValidationFailure(description: "\(label): relative error \(e) vs ref") }
            return String(format: "whole tensor vs ref, rel err %.1e", e)
        },
        openblas: nil)
}

func resizeCase(label: String, from: Int, to: Int, channels: Int, batch: Int) -> BenchCase {
    let buf = Buffers()
    let x = buf.floats("x", randomArray(batch * from * from * channels, seed: 15))
    let y = buf.zeros("y", batch * to * to * channels)
    let scratch = buf.raw("s", ck_resize_bicubic_aa_scratch_size(Int32(from), Int32(from), Int32(to), Int32(to), Int32(channels)))
    let bytes = Double(batch) * Double(from * from + 2 * from * to + to * to) * Double(channels) * 4  // in, tmp w+r, out
    return BenchCase(
        owner: buf, label: label, op: "bicubic aa resize", path: pathName(), work: bytes, ceiling: .bandwidth,
        run: { ck_resize_bicubic_aa(Int32(batch), Int32(from), Int32(from), Int32(channels), x, Int32(to), Int32(to), y, scratch) },
        validate: {
            var ref = [Float](repeating: 0, count: batch * to * to * channels)
            ck_resize_bicubic_aa_ref(Int32(batch), Int32(from), Int32(from), Int32(channels), x, Int32(to), Int32(to), &ref)
            let e = relErr(y, ref)
            if e > 1e-5 { throw ValidationFailure(description: "\(label): relative error \(e) vs ref") }
            return String(format: "whole image vs ref, rel err %.1e", e)
        },
        openblas: nil)
}

/// A super-resolution up-path ResnetBlock2D's first convolution: GroupNorm+SiLU over cat([h, skip]) then a 3×3
/// int8 convolution. `fused`: the operands in f16, the GroupNorm folded and read by ck_conv2d_q8_fused, f16 out
/// (MemoryPlan.small); otherwise the op-by-op chain in f32 (concatenation, GroupNorm+SiLU, ck_conv2d_q8), as before.
/// Validated by the fused result on f32 operands being bit-identical to the chain's.
/// `algorithm`: nil for the op-by-op chain; .direct or .winograd for the fused convolution on f16 operands.
/// Winograd's work is the multiply-accumulates it performs (16 per 2×2 tile and channel pair, 4/9 of direct's).
func fusedResnetConvCase(label: String, size s: Int, batch nb: Int = 1, hChannels: Int, skipChannels: Int, cout: Int,
                         algorithm: ConvAlgorithm?) -> BenchCase {
    let cin = hChannels + skipChannels, k = 9 * cin
    let h = try! Tensor(shape: [nb, s, s, hChannels], values: randomArray(nb * s * s * hChannels, seed: 11))
    let skip = try! Tensor(shape: [nb, s, s, skipChannels], values: randomArray(nb * s * s * skipChannels, seed: 12))
    let gamma = try! Tensor(shape: [cin], values: randomArray(cin, seed: 13).map { $0 + 1 })
    let beta = try! Tensor(shape: [cin], values: randomArray(cin, seed: 14))
    let w = try! Conv2dWeight(weight: try! Tensor(shape: [cout, cin, 3, 3], values: randomArray(cout * k, seed: 15, scale: 0.05)),
                              bias: try! Tensor(shape: [cout], values: randomArray(cout, seed: 16)), padding: 1, quantize: true)
    let h16 = try! Ops.cast(h, to: .f16), skip16 = try! Ops.cast(skip, to: .f16)
    final class Box: @unchecked Sendable { var y: Tensor? }
    let box = Box()
    func chain() -> Tensor {
        let x = try! Ops.groupNorm(try! Ops.concatLast(h, skip), groups: 32, gamma: gamma, beta: beta, silu: true)
        return try! Ops.conv2d(x, w)
    }
    func fusedRun(_ a: Tensor, _ b: Tensor, out: DType, _ alg: ConvAlgorithm) -> Tensor {
        let saved = Runtime.convAlgorithm
        defer { Runtime.convAlgorithm = saved }
        Runtime.convAlgorithm = alg
        let fold = try! Ops.groupNormFold([a, b], groups: 32, gamma: gamma, beta: beta)
        return try! Ops.conv2d(ConvInput([a, b], norm: fold, silu: true), w, out: out)
    }
    let tiles = Double(nb * ((s + 1) / 2) * ((s + 1) / 2))
    let op = switch algorithm {
    case nil: "GN+SiLU, concat, conv3x3 int8 (f32, op by op)"
    case .winograd: "fused GN+SiLU+concat→conv3x3 int8 Winograd F(2×2,3×3), f16 in/out"
    default: "fused GN+SiLU+concat→conv3x3 int8, f16 in/out"
    }
    return BenchCase(
        owner: box, label: label, op: op, path: pathName(),
        work: algorithm == .winograd ? 2.0 * 16 * tiles * Double(cin) * Double(cout) : 2.0 * Double(nb * s * s) * Double(k) * Double(cout),
        ceiling: q8Ceiling(),
        run: { box.y = algorithm.map { fusedRun(h16, skip16, out: .f16, $0) } ?? chain() },
        validate: {
            let direct = fusedRun(h, skip, out: .f32, .direct).toArray()
            guard direct == chain().toArray() else {
                throw ValidationFailure(description: "\(label): the fused convolution on f32 operands differs from the op-by-op chain")
            }
            guard algorithm == .winograd else {
                return "fused on f32 operands bit-identical to the op-by-op chain (\(nb * s * s) pixels × \(cout) channels)"
            }
            // Winograd has its own roundings (its exact twin is checked in WinogradTests): against the direct int8
            var num = 0.0, den = 0.0
            for (x, y) in zip(fusedRun(h, skip, out: .f32, .winograd).toArray(), direct) {
                num += Double(x - y) * Double(x - y)
                den += Double(y) * Double(y)
            }
            let snr = 10 * log10(den / max(num, 1e-30))
            guard snr >= 30 else { throw ValidationFailure(description: "\(label): Winograd is only \(snr) dB from the direct int8 convolution") }
            return String(format: "Winograd %.1f dB from the direct int8 convolution (f32 operands)", snr)
        },
        openblas: nil)
}
