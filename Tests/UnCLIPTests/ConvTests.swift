import CKernels
import XCTest
@testable import UnCLIP

/// Convolution on every path against the scalar references: 3x3 pad 1, 1x1, k×k stride k (CLIP's patch
/// embedding), batch > 1, 1x1 spatial, channel counts off the vector width, more pixels than one tile.
final class ConvTests: XCTestCase {
    struct Case { let n, h, w, cin, cout, k, stride, pad: Int }
    static let cases: [Case] = [
        Case(n: 2, h: 5, w: 7, cin: 13, cout: 35, k: 3, stride: 1, pad: 1),
        Case(n: 1, h: 1, w: 1, cin: 40, cout: 33, k: 1, stride: 1, pad: 0),
        Case(n: 3, h: 1, w: 1, cin: 7, cout: 5, k: 3, stride: 1, pad: 1),
        Case(n: 1, h: 28, w: 28, cin: 3, cout: 17, k: 14, stride: 14, pad: 0),
        Case(n: 2, h: 17, w: 19, cin: 24, cout: 70, k: 3, stride: 1, pad: 1),
        Case(n: 1, h: 9, w: 11, cin: 64, cout: 32, k: 1, stride: 1, pad: 0),
    ]

    func params(_ c: Case) -> ck_conv2d_params {
        var p = ck_conv2d_params(N: Int32(c.n), H: Int32(c.h), W: Int32(c.w), Cin: Int32(c.cin), Cout: Int32(c.cout),
                                 kh: Int32(c.k), kw: Int32(c.k), stride: Int32(c.stride), pad: Int32(c.pad), Ho: 0, Wo: 0)
        XCTAssertEqual(ck_conv2d_shape(&p), 0)
        return p
    }

    func testF32ConvMatchesReferenceOnEveryPath() {
        for (ci, c) in ConvTests.cases.enumerated() {
            var p = params(c)
            var rng = TestRNG(seed: UInt64(400 + ci))
            let x = rng.array(c.n * c.h * c.w * c.cin), w = rng.array(c.cout * c.cin * c.k * c.k, scale: 0.3), b = rng.array(c.cout)
            let outCount = c.n * Int(p.Ho * p.Wo) * c.cout
            var ref = [Float](repeating: 0, count: outCount)
            ck_conv2d_f32_ref(&p, x, w, b, &ref)
            var packed = [Float](repeating: 0, count: ck_gemm_f32_packed_size(Int32(c.cout), Int32(c.cin * c.k * c.k)) / 4)
            ck_gemm_f32_pack_conv(Int32(c.cout), Int32(c.cin), Int32(c.k), Int32(c.k), w, &packed)
            let scratch = UnsafeMutableRawPointer.allocate(byteCount: ck_conv2d_f32_scratch_size(&p, 3), alignment: 64)
            defer { scratch.deallocate() }
            var first: [KernelPath: [Float]] = [:]
            forEachPathAndThreads { path, threads in
                var y = [Float](repeating: .nan, count: outCount)
                ck_conv2d_f32(&p, x, packed, b, &y, scratch)
                XCTAssertLessThanOrEqual(relMaxError(y, ref), Tolerance.gemmF32, "\(c) \(path) threads \(threads)")
                if let f = first[path] { XCTAssertEqual(f, y, "\(c) \(path): changed with \(threads) threads") } else { first[path] = y }
            }
        }
    }

    func testQ8ConvMatchesReferenceExactlyOnEveryPath() {
        // Two-sided inputs (zero points near 128) and one-sided ones as after SiLU (zero points near 0, corr ≈ 128).
        for (ci, c) in ConvTests.cases.enumerated() { for oneSided in [false, true] {
            var p = params(c)
            var rng = TestRNG(seed: UInt64(500 + ci))
            var x = rng.array(c.n * c.h * c.w * c.cin)
            let w = rng.array(c.cout * c.cin * c.k * c.k, scale: 0.3), b = rng.array(c.cout)
            if oneSided { x = x.map { $0 * 2 + 2.2 } }   // in [0.2, 4.2]; the zero padding widens the range to 0
            let kk = c.cin * c.k * c.k
            let outCount = c.n * Int(p.Ho * p.Wo) * c.cout
            var packed = [Int8](repeating: 0, count: ck_q8_packed_size(Int32(c.cout), Int32(kk)))
            var scale = [Float](repeating: 0, count: c.cout), colsum = [Int32](repeating: 0, count: c.cout)
            ck_q8_quantize_pack_conv(Int32(c.cout), Int32(c.cin), Int32(c.k), Int32(c.k), w, &packed, &scale, &colsum)
            var ref = [Float](repeating: 0, count: outCount)
            ck_conv2d_q8_ref(&p, x, packed, scale, b, &ref)
            var f32 = [Float](repeating: 0, count: outCount)
            ck_conv2d_f32_ref(&p, x, w, b, &f32)
            XCTAssertLessThan(relMaxError(ref, f32), 0.05, "\(c): int8 vs f32")
            let scratch = UnsafeMutableRawPointer.allocate(byteCount: ck_conv2d_q8_scratch_size(&p, 3), alignment: 64)
            defer { scratch.deallocate() }
            forEachPathAndThreads { path, threads in
                var y = [Float](repeating: .nan, count: outCount)
                ck_conv2d_q8(&p, x, packed, scale, colsum, b, &y, scratch)
                XCTAssertEqual(y, ref, "\(c) one-sided \(oneSided) \(path) threads \(threads)")
            }
        } }
    }

    func testConvOpShapesAndErrors() throws {
        let w = try Conv2dWeight(weight: try Tensor(zeros: [4, 3, 3, 3]), padding: 1)
        let y = try Ops.conv2d(try Tensor(zeros: [2, 5, 6, 3]), w)
        XCTAssertEqual(y.shape, [2, 5, 6, 4])
        XCTAssertThrowsError(try Ops.conv2d(try Tensor(zeros: [2, 5, 6, 4]), w))        // wrong channels
        let big = try Conv2dWeight(weight: try Tensor(zeros: [4, 3, 14, 14]), stride: 14)
        XCTAssertThrowsError(try Ops.conv2d(try Tensor(zeros: [1, 10, 10, 3]), big))    // smaller than the kernel
        XCTAssertThrowsError(try Conv2dWeight(weight: try Tensor(zeros: [4, 3, 3, 3]), stride: 0))
        XCTAssertThrowsError(try Conv2dWeight(weight: try Tensor(zeros: [4, 3, 3]), stride: 1))
    }
}
