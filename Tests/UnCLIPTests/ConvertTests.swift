import CKernels
import XCTest

/// 16-bit formats against Swift's own Float16 (IEEE binary16, round-to-nearest-even) and exhaustive checks.
final class ConvertTests: XCTestCase {
    func testHalfToFloatIsExactForEveryBitPattern() {
        let all = (0...0xffff).map { UInt16($0) }
        forEachPathAndThreads { path, threads in
            var y = [Float](repeating: 0, count: all.count)
            ck_f16_to_f32(all.count, all, &y)
            for (i, h) in all.enumerated() {
                let want = Float(Float16(bitPattern: h))
                if want.isNaN { XCTAssertTrue(y[i].isNaN, "\(h)") } else { XCTAssertEqual(y[i].bitPattern, want.bitPattern, "half \(h) \(path)") }
            }
        }
    }

    func testLongArraysConvertTheSameOnEveryPathAndThreadCount() {
        // more than the 256 Ki values above which the conversion splits across threads, with a ragged tail
        var rng = TestRNG(seed: 9)
        let xs = (0..<(300_000 + 13)).map { _ in rng.float(1) * powf(2, Float(Int(rng.next() % 36) - 24)) }
        let want = xs.map { Float16($0).bitPattern }
        forEachPathAndThreads { path, threads in
            var h = [UInt16](repeating: 0, count: xs.count), back = [Float](repeating: 0, count: xs.count)
            ck_f32_to_f16(xs.count, xs, &h)
            XCTAssertEqual(h, want, "\(path) threads \(threads)")
            ck_f16_to_f32(h.count, h, &back)
            XCTAssertEqual(back, want.map { Float(Float16(bitPattern: $0)) }, "\(path) threads \(threads)")
        }
    }

    func testFloatToHalfRoundsLikeFloat16() {
        var rng = TestRNG(seed: 3)
        var xs: [Float] = [0, -0, 1, -1, 65504, 65519.99, 65520, 1e-8, 5.96e-8, 2.98e-8, 2.99e-8, 6.1e-5, .infinity, -.infinity, 1e30]
        xs += (0..<20000).map { _ in rng.float(1) * powf(2, Float(Int(rng.next() % 40) - 28)) }
        forEachPathAndThreads { path, threads in
            var y = [UInt16](repeating: 0, count: xs.count)
            ck_f32_to_f16(xs.count, xs, &y)
            for (i, x) in xs.enumerated() { XCTAssertEqual(y[i], Float16(x).bitPattern, "f16(\(x)) \(path)") }
        }
        var nan = [UInt16](repeating: 0, count: 1)
        ck_f32_to_f16(1, [Float.nan], &nan)
        XCTAssertTrue(Float16(bitPattern: nan[0]).isNaN)
    }

    func testBFloat16RoundTrip() {
        let xs: [Float] = [1, -2.5, 3.14159265, 1e-30, 65504, .infinity]
        var b = [UInt16](repeating: 0, count: xs.count), back = [Float](repeating: 0, count: xs.count)
        ck_f32_to_bf16(xs.count, xs, &b)
        ck_bf16_to_f32(xs.count, b, &back)
        XCTAssertEqual(b[0], 0x3f80)
        XCTAssertEqual(b[2], 0x4049)  // 3.14159 → 0x40490fdb rounds to 0x4049
        for (x, r) in zip(xs, back) { XCTAssertEqual(r, x, accuracy: abs(x) / 128) }
        var nan = [UInt16](repeating: 0, count: 1)
        ck_f32_to_bf16(1, [Float.nan], &nan)
        XCTAssertTrue(Float(bitPattern: UInt32(nan[0]) << 16).isNaN)
    }
}
