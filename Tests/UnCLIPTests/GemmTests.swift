import CKernels
import XCTest
@testable import UnCLIP

/// f32 and int8 GEMM on every path against the scalar references, on odd shapes (M not a multiple of any
/// kernel's rows, N not a multiple of 32, K not a multiple of 4/16/64, K beyond one 256-deep chunk, M beyond
/// one 192-row block).
final class GemmTests: XCTestCase {
    static let shapes: [(m: Int, n: Int, k: Int)] = [(1, 1, 1), (5, 33, 17), (13, 70, 129), (37, 31, 300), (200, 65, 257), (3, 96, 64), (6, 40, 90)]  // M mod 4 = 1, 2, 3: every row remainder of the 4-row kernels

    func testF32GemmMatchesReferenceOnEveryPathAndThreadCount() {
        for (si, s) in GemmTests.shapes.enumerated() {
            var rng = TestRNG(seed: UInt64(100 + si))
            let lda = s.k + 3  // a row stride wider than K
            let a = rng.array(s.m * lda), w = rng.array(s.n * s.k), bias = rng.array(s.n)
            var ref = [Float](repeating: 0, count: s.m * s.n)
            ck_gemm_f32_ref(Int32(s.m), Int32(s.n), Int32(s.k), a, Int32(lda), w, Int32(s.k), bias, &ref, Int32(s.n))
            var packed = [Float](repeating: 0, count: ck_gemm_f32_packed_size(Int32(s.n), Int32(s.k)) / 4)
            ck_gemm_f32_pack(Int32(s.n), Int32(s.k), w, Int32(s.k), &packed)
            var byPath: [KernelPath: [Float]] = [:]
            forEachPathAndThreads { path, threads in
                var c = [Float](repeating: .nan, count: s.m * s.n)
                ck_gemm_f32(Int32(s.m), Int32(s.n), Int32(s.k), a, Int32(lda), packed, bias, &c, Int32(s.n))
                XCTAssertLessThanOrEqual(relMaxError(c, ref), Tolerance.gemmF32, "\(s) path \(path) threads \(threads)")
                if let first = byPath[path] { XCTAssertEqual(first, c, "\(s) \(path): result changed with \(threads) threads") }
                else { byPath[path] = c }
            }
        }
    }

    func testQ8IntegerAccumulatorsEqualReferenceBitForBit() {
        for (si, s) in GemmTests.shapes.enumerated() {
            var rng = TestRNG(seed: UInt64(200 + si))
            let kp = Int(ck_q8_padded_k(Int32(s.k)))
            // Full-range operands (activations −128…127, weights −127…127) make any lost bit visible.
            var qa = [Int8](repeating: 0, count: s.m * kp)
            for m in 0..<s.m { for k in 0..<s.k { qa[m * kp + k] = Int8(truncatingIfNeeded: Int(rng.next() % 256) - 128) } }
            var q = [Int8](repeating: 0, count: s.n * s.k)
            for i in q.indices { q[i] = Int8(truncatingIfNeeded: Int(rng.next() % 255) - 127) }
            var packed = [Int8](repeating: 0, count: ck_q8_packed_size(Int32(s.n), Int32(s.k)))
            var colsum = [Int32](repeating: 0, count: s.n)
            ck_q8_pack(Int32(s.n), Int32(s.k), q, Int32(s.k), &packed, &colsum)
            for n in 0..<s.n { for k in 0..<s.k { XCTAssertEqual(ck_q8_packed_at(packed, Int32(s.k), Int32(n), Int32(k)), q[n * s.k + k]) } }
            var ref = [Int32](repeating: 0, count: s.m * s.n)
            ck_gemm_q8_s32_ref(Int32(s.m), Int32(s.n), Int32(s.k), qa, packed, &ref, Int32(s.n))
            let scratch = UnsafeMutableRawPointer.allocate(byteCount: ck_gemm_q8_scratch_size(Int32(s.m), Int32(s.k), 3), alignment: 64)
            defer { scratch.deallocate() }
            forEachPathAndThreads { path, threads in
                var acc = [Int32](repeating: -1, count: s.m * s.n)
                ck_gemm_q8_s32(Int32(s.m), Int32(s.n), Int32(s.k), qa, packed, colsum, &acc, Int32(s.n), scratch)
                XCTAssertEqual(acc, ref, "\(s) path \(path) threads \(threads)")
            }
        }
    }

    func testQ8RowQuantizationIsIdenticalOnEveryPath() {
        var rng = TestRNG(seed: 7)
        for k in [1, 15, 16, 17, 100, 333] {
            var a = rng.array(3 * k, scale: 5)
            for i in k..<(2 * k) { a[i] = abs(a[i]) + 1 }   // row 1 one-sided and away from 0, as after SiLU
            let kp = Int(ck_q8_padded_k(Int32(k)))
            var qRef = [Int8](repeating: 1, count: 3 * kp), sRef = [Float](repeating: 0, count: 3)
            var cRef = [Int32](repeating: 7, count: 3)
            ck_q8_quantize_rows_ref(3, Int32(k), a, Int32(k), &qRef, &sRef, &cRef)
            forEachPathAndThreads { path, _ in
                var q = [Int8](repeating: 1, count: 3 * kp), s = [Float](repeating: 0, count: 3)
                var c = [Int32](repeating: 7, count: 3)
                ck_q8_quantize_rows(3, Int32(k), a, Int32(k), &q, &s, &c)
                XCTAssertEqual(q, qRef, "k \(k) path \(path)")
                XCTAssertEqual(s, sRef, "k \(k) path \(path)")
                XCTAssertEqual(c, cRef, "k \(k) path \(path)")
            }
            // Each value comes back within half a step of the row's 256 levels; a one-sided row has zero point 0
            // (corr 128) and uses every level up to its maximum.
            for m in 0..<3 {
                let row = a[(m * k)..<((m + 1) * k)]
                let lo = min(0, row.min()!), hi = max(0, row.max()!)
                XCTAssertEqual(sRef[m], (hi - lo) / 255, accuracy: 1e-6 * (hi - lo))
                for kk in 0..<k {
                    let back = sRef[m] * Float(Int32(qRef[m * kp + kk]) + cRef[m])
                    XCTAssertLessThanOrEqual(abs(back - a[m * k + kk]), sRef[m] * 0.5001, "k \(k) row \(m) col \(kk)")
                }
                XCTAssertEqual(Array(qRef[(m * kp + k)..<((m + 1) * kp)]), [Int8](repeating: 0, count: kp - k))
            }
            XCTAssertEqual(cRef[1], 128)
            let row1 = Array(a[k..<(2 * k)])
            XCTAssertEqual(qRef[kp + row1.indices.max(by: { row1[$0] < row1[$1] })!], 127)
        }
        forEachPathAndThreads { path, _ in
            // A zero row quantizes to zeros with scale 0; a zero inside a row (a convolution's padding) is exact.
            var q = [Int8](repeating: 1, count: 64), s: [Float] = [1], c: [Int32] = [7]
            ck_q8_quantize_rows(1, 20, [Float](repeating: 0, count: 20), 20, &q, &s, &c)
            XCTAssertEqual(s, [0], "\(path)")
            XCTAssertEqual(c, [0], "\(path)")
            XCTAssertEqual(q, [Int8](repeating: 0, count: 64), "\(path)")
            var mixed: [Float] = [-0.3, 0, 1.7, 0, 2.9]
            mixed += mixed + mixed + mixed   // 20 values: the 16-wide loop and the tail
            ck_q8_quantize_rows(1, 20, mixed, 20, &q, &s, &c)
            for i in mixed.indices where mixed[i] == 0 { XCTAssertEqual(s[0] * Float(Int32(q[i]) + c[0]), 0, "\(path) \(i)") }
            // Exact ties round half to even: the range [−1, 254] gives 255/255 = 1 level per unit and zero point 1;
            // 2.5 → 2, 3.5 → 4, −0.5 → −0 (u = 1), 253.5 → 254 (u = 255).
            let ties: [Float] = [-1, 2.5, 3.5, -0.5, 253.5, 254] + [Float](repeating: 0, count: 14)
            ck_q8_quantize_rows(1, 20, ties, 20, &q, &s, &c)
            XCTAssertEqual(s, [1], "\(path)")
            XCTAssertEqual(c, [127], "\(path)")          // 128 − zp
            XCTAssertEqual(Array(q[0..<6]).map { Int32($0) + 128 }, [0, 3, 5, 1, 255, 255], "\(path)")
        }
    }

    func testQ8LinearMatchesReferenceExactlyAndApproximatesF32() throws {
        // Two-sided inputs (zero points near 128) and one-sided ones as after SiLU (zero point 0, corr = 128).
        for (si, s) in GemmTests.shapes.enumerated() { for oneSided in [false, true] {
            var rng = TestRNG(seed: UInt64(300 + si))
            var a = rng.array(s.m * s.k)
            let w = rng.array(s.n * s.k, scale: 0.2), bias = rng.array(s.n)
            if oneSided { a = a.map { $0 * 2 + 2.2 } }   // in [0.2, 4.2]
            var packed = [Int8](repeating: 0, count: ck_q8_packed_size(Int32(s.n), Int32(s.k)))
            var scale = [Float](repeating: 0, count: s.n), colsum = [Int32](repeating: 0, count: s.n)
            ck_q8_quantize_pack(Int32(s.n), Int32(s.k), w, Int32(s.k), &packed, &scale, &colsum)
            var ref = [Float](repeating: 0, count: s.m * s.n)
            ck_gemm_q8_ref(Int32(s.m), Int32(s.n), Int32(s.k), a, Int32(s.k), packed, scale, bias, &ref, Int32(s.n))
            var f32 = [Float](repeating: 0, count: s.m * s.n)
            ck_gemm_f32_ref(Int32(s.m), Int32(s.n), Int32(s.k), a, Int32(s.k), w, Int32(s.k), bias, &f32, Int32(s.n))
            // int8 error: two roundings of ≤ 1/254 of each row's range; generous bound for random data.
            XCTAssertLessThan(relMaxError(ref, f32), 0.05, "\(s) int8 vs f32")
            let scratch = UnsafeMutableRawPointer.allocate(byteCount: ck_gemm_q8_scratch_size(Int32(s.m), Int32(s.k), 3), alignment: 64)
            defer { scratch.deallocate() }
            forEachPathAndThreads { path, threads in
                var c = [Float](repeating: .nan, count: s.m * s.n)
                ck_gemm_q8(Int32(s.m), Int32(s.n), Int32(s.k), a, Int32(s.k), packed, scale, colsum, bias, &c, Int32(s.n), scratch)
                XCTAssertEqual(c, ref, "\(s) one-sided \(oneSided) path \(path) threads \(threads)")
            }
        } }
    }

    func testLinearOpChecksShapesAndUsesRowStride() throws {
        var rng = TestRNG(seed: 9)
        let w = try Tensor(shape: [6, 10], values: rng.array(60))
        let wide = try Tensor(shape: [4, 13], values: rng.array(52))
        let x = try wide.slice(dim: 1, 0..<10)  // rows of 10 with stride 13
        for quantize in [false, true] {
            let lw = try LinearWeight(weight: w, quantize: quantize)
            let y = try Ops.linear(x, lw)
            XCTAssertEqual(y.shape, [4, 6])
            var ref = [Float](repeating: 0, count: 24)
            ck_gemm_f32_ref(4, 6, 10, x.f32, 13, w.f32, 10, nil, &ref, 6)
            XCTAssertLessThan(relMaxError(y.toArray(), ref), quantize ? 0.05 : Tolerance.gemmF32)
        }
        let bad = try Tensor(zeros: [4, 9])
        XCTAssertThrowsError(try Ops.linear(bad, try LinearWeight(weight: w))) { err in
            guard case UnCLIPError.shapeMismatch = err else { return XCTFail("\(err)") }
        }
        XCTAssertThrowsError(try LinearWeight(weight: w, bias: try Tensor(zeros: [5])))
    }
}
