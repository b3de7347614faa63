import CKernels
import XCTest
@testable import UnCLIP

/// Norms, attention and elementwise kernels on every path against their scalar references.
final class NormAttentionTests: XCTestCase {
    func testGroupNormVariantsMatchReference() {
        for (ci, (n, hw, c, g)) in [(1, 1, 32, 32), (2, 37, 96, 32), (1, 300, 40, 8), (3, 5, 64, 1)].enumerated() {
            var rng = TestRNG(seed: UInt64(600 + ci))
            let x = rng.array(n * hw * c, scale: 3).map { $0 + 2 }, gamma = rng.array(c), beta = rng.array(c)
            let scale = rng.array(n * c, scale: 0.5), shift = rng.array(n * c)
            for (useScale, silu) in [(false, false), (false, true), (true, false), (true, true)] {
                var ref = [Float](repeating: 0, count: x.count)
                ck_group_norm_ref(Int32(n), Int32(hw), Int32(c), Int32(g), 1e-5, x, gamma, beta,
                                  useScale ? scale : nil, useScale ? shift : nil, silu ? 1 : 0, &ref)
                var first: [KernelPath: [Float]] = [:]
                forEachPathAndThreads { path, threads in
                    var y = [Float](repeating: .nan, count: x.count)
                    ck_group_norm(Int32(n), Int32(hw), Int32(c), Int32(g), 1e-5, x, gamma, beta,
                                  useScale ? scale : nil, useScale ? shift : nil, silu ? 1 : 0, &y)
                    XCTAssertLessThanOrEqual(relMaxError(y, ref), Tolerance.torchF32, "gn \(n)x\(hw)x\(c)/\(g) \(path)")
                    if let f = first[path] { XCTAssertEqual(f, y, "thread count changed the result (\(threads))") } else { first[path] = y }
                }
            }
        }
    }

    func testLayerNormWithRowStride() {
        var rng = TestRNG(seed: 11)
        let rows = 5, c = 77, ld = 80
        let x = rng.array(rows * ld, scale: 4), gamma = rng.array(c), beta = rng.array(c)
        var ref = [Float](repeating: 0, count: rows * c), y = ref
        ck_layer_norm_ref(Int32(rows), Int32(c), 1e-5, x, Int32(ld), gamma, beta, &ref, Int32(c))
        ck_layer_norm(Int32(rows), Int32(c), 1e-5, x, Int32(ld), gamma, beta, &y, Int32(c))
        XCTAssertLessThanOrEqual(relMaxError(y, ref), Tolerance.torchF32)
    }

    struct AttnCase { let b, h, d, lq, l0, l1: Int; let mask: Int; let causal: Bool }  // mask: 0 none, 1 keys, 2 full

    func testAttentionMatchesReferenceOnEveryPath() {
        let cases = [
            AttnCase(b: 2, h: 3, d: 64, lq: 37, l0: 9, l1: 37, mask: 1, causal: false),   // added-KV, key padding
            AttnCase(b: 1, h: 2, d: 64, lq: 19, l0: 19, l1: 0, mask: 0, causal: true),    // CLIP text
            AttnCase(b: 2, h: 1, d: 64, lq: 17, l0: 17, l1: 0, mask: 2, causal: false),   // prior: full additive mask
            AttnCase(b: 1, h: 2, d: 40, lq: 5, l0: 3, l1: 6, mask: 1, causal: false),     // head dim off 16
            AttnCase(b: 1, h: 1, d: 12, lq: 1, l0: 1, l1: 0, mask: 0, causal: false),     // off every vector width
            AttnCase(b: 1, h: 2, d: 64, lq: 150, l0: 81, l1: 150, mask: 1, causal: false), // several query blocks
            AttnCase(b: 1, h: 1, d: 64, lq: 77, l0: 77, l1: 0, mask: 0, causal: true),    // causal across blocks
        ]
        for (ci, c) in cases.enumerated() {
            var rng = TestRNG(seed: UInt64(700 + ci))
            let hd = c.h * c.d, lk = c.l0 + c.l1
            let q = rng.array(c.b * c.lq * hd, scale: 2), k0 = rng.array(c.b * c.l0 * hd, scale: 2), v0 = rng.array(c.b * c.l0 * hd)
            let k1 = rng.array(max(c.b * c.l1 * hd, 1), scale: 2), v1 = rng.array(max(c.b * c.l1 * hd, 1))
            var mask: [Float] = []
            if c.mask == 1 { mask = (0..<(c.b * lk)).map { $0 % 7 == 3 ? -10000 : 0 } }
            if c.mask == 2 { mask = (0..<(c.b * c.lq * lk)).map { i in (i % lk) > (i / lk) % c.lq ? -10000 : rng.float(0.5) } }
            q.withUnsafeBufferPointer { qp in k0.withUnsafeBufferPointer { k0p in v0.withUnsafeBufferPointer { v0p in
            k1.withUnsafeBufferPointer { k1p in v1.withUnsafeBufferPointer { v1p in mask.withUnsafeBufferPointer { mp in
                var ref = [Float](repeating: 0, count: c.b * c.lq * hd)
                var p = ck_attention_params()
                p.B = Int32(c.b); p.H = Int32(c.h); p.D = Int32(c.d); p.Lq = Int32(c.lq); p.L0 = Int32(c.l0); p.L1 = Int32(c.l1)
                p.scale = 1 / Float(c.d).squareRoot()
                p.q = qp.baseAddress; p.q_bs = c.lq * hd; p.ldq = Int32(hd)
                p.k0 = k0p.baseAddress; p.v0 = v0p.baseAddress; p.kv0_bs = c.l0 * hd; p.ldkv0 = Int32(hd)
                if c.l1 > 0 { p.k1 = k1p.baseAddress; p.v1 = v1p.baseAddress; p.kv1_bs = c.l1 * hd; p.ldkv1 = Int32(hd) }
                if c.mask > 0 { p.mask = mp.baseAddress; p.mask_bs = c.mask == 1 ? lk : c.lq * lk; p.mask_qs = Int32(c.mask == 1 ? 0 : lk) }
                p.causal = c.causal ? 1 : 0
                p.o_bs = c.lq * hd; p.ldo = Int32(hd)
                ref.withUnsafeMutableBufferPointer { p.o = $0.baseAddress; ck_attention_ref(&p) }
                let scratch = UnsafeMutableRawPointer.allocate(byteCount: ck_attention_scratch_size(&p, 3), alignment: 64)
                defer { scratch.deallocate() }
                var first: [KernelPath: [Float]] = [:]
                forEachPathAndThreads { path, threads in
                    var o = [Float](repeating: .nan, count: ref.count)
                    o.withUnsafeMutableBufferPointer { p.o = $0.baseAddress; ck_attention(&p, scratch) }
                    XCTAssertLessThanOrEqual(relMaxError(o, ref), Tolerance.attention, "\(c) \(path) threads \(threads)")
                    if let f = first[path] { XCTAssertEqual(f, o, "\(c) \(path): changed with \(threads) threads") } else { first[path] = o }
                }
            } } } } } }
        }
    }

    func testActivationsMatchScalarFormulas() throws {
        var rng = TestRNG(seed: 12)
        var xs = rng.array(1000, scale: 12)
        xs += [0, -0.0, 1e-30, -90, 90, -200, 200, 88.5, -87.5]
        let x = try Tensor(shape: [xs.count], values: xs)
        forEachPathAndThreads { path, _ in
            let silu = try! Ops.activation(x, .silu).toArray()
            let qg = try! Ops.activation(x, .quickGelu).toArray()
            for (i, v) in xs.enumerated() {
                let s = v / (1 + expf(-v)), g = v / (1 + expf(-1.702 * v))
                XCTAssertEqual(silu[i], s, accuracy: Tolerance.activation * max(1, abs(s)), "silu(\(v)) \(path)")
                XCTAssertEqual(qg[i], g, accuracy: Tolerance.activation * max(1, abs(g)), "quick_gelu(\(v)) \(path)")
            }
        }
    }

    func testAttentionOpValidatesShapes() throws {
        let q = try Tensor(zeros: [1, 4, 128]), k = try Tensor(zeros: [1, 6, 128])
        XCTAssertEqual(try Ops.attention(q: q, k: k, v: k, heads: 2).shape, [1, 4, 128])
        XCTAssertThrowsError(try Ops.attention(q: q, k: k, v: k, heads: 3))                       // 128 not divisible
        XCTAssertThrowsError(try Ops.attention(q: q, k: k, v: try Tensor(zeros: [1, 5, 128]), heads: 2))
        XCTAssertThrowsError(try Ops.attention(q: q, k: k, v: k, heads: 2, mask: try Tensor(zeros: [1, 5])))
        XCTAssertThrowsError(try Ops.attention(q: q, k: k, v: k, k2: k, heads: 2))                 // k2 without v2
    }
}

final class ResampleTests: XCTestCase {
    func testSeparableBicubicMatchesDirectReference() {
        for (ci, (h, w, ho, wo, c)) in [(8, 8, 32, 32, 3), (16, 12, 5, 7, 4), (1, 1, 3, 2, 2), (64, 64, 256, 256, 3)].enumerated() {
            var rng = TestRNG(seed: UInt64(800 + ci))
            let x = rng.array(2 * h * w * c)
            var ref = [Float](repeating: 0, count: 2 * ho * wo * c), y = ref
            ck_resize_bicubic_aa_ref(2, Int32(h), Int32(w), Int32(c), x, Int32(ho), Int32(wo), &ref)
            let scratch = UnsafeMutableRawPointer.allocate(byteCount: ck_resize_bicubic_aa_scratch_size(Int32(h), Int32(w), Int32(ho), Int32(wo), Int32(c)), alignment: 64)
            defer { scratch.deallocate() }
            forEachPathAndThreads { path, threads in
                ck_resize_bicubic_aa(2, Int32(h), Int32(w), Int32(c), x, Int32(ho), Int32(wo), &y, scratch)
                XCTAssertLessThanOrEqual(relMaxError(y, ref), Tolerance.torchF32, "\(h)x\(w)→\(ho)x\(wo) \(path) \(threads)")
            }
        }
    }
}
