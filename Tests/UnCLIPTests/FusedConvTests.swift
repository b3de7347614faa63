import CKernels
import XCTest
@testable import UnCLIP

/// The fused convolution (GroupNorm/SiLU/concat/resample read by the convolution, residual in its epilogue, f16
/// operands and outputs) against the unfused chain it replaces and against its scalar twin.
final class FusedConvTests: XCTestCase {
    static func tensor(_ shape: [Int], _ rng: inout TestRNG, scale: Float = 1, offset: Float = 0) throws -> Tensor {
        try Tensor(shape: shape, values: rng.array(shape.reduce(1, *), scale: scale).map { $0 + offset })
    }
    func tensor(_ shape: [Int], _ rng: inout TestRNG, scale: Float = 1, offset: Float = 0) throws -> Tensor {
        try Self.tensor(shape, &rng, scale: scale, offset: offset)
    }

    func testGroupNormFoldGivesGroupNormsBits() throws {
        // 17×19 = 323 pixels: more than one statistics chunk; 10 + 14 channels in 4 groups of 6: a group straddles
        // the two operands; per-image channel bias, affine and scale-shift.
        var rng = TestRNG(seed: 71)
        let a = try tensor([2, 17, 19, 10], &rng, offset: 0.3), b = try tensor([2, 17, 19, 14], &rng, scale: 2)
        let cb = try tensor([2, 24], &rng), g = try tensor([24], &rng), be = try tensor([24], &rng)
        let sc = try tensor([2, 24], &rng, scale: 0.5), sh = try tensor([2, 24], &rng)
        try forEachPathAndThreads { path, threads in
            let x = try Ops.addChannelBias(try Ops.concatLast(a, b), cb)
            let want = try Ops.groupNorm(x, groups: 4, gamma: g, beta: be, scale: sc, shift: sh).toArray()
            let f = try Ops.groupNormFold([a, b], channelBias: cb, groups: 4, gamma: g, beta: be, scale: sc, shift: sh)
            let xv = x.toArray(), mu = f.mu.toArray(), fa = f.a.toArray(), fb = f.b.toArray()
            var got = [Float](repeating: 0, count: xv.count)
            for i in 0..<xv.count {
                let j = (i / (17 * 19 * 24)) * 24 + i % 24
                got[i] = (xv[i] - mu[j]) * fa[j] + fb[j]
            }
            XCTAssertEqual(got, want, "\(path) threads \(threads)")
        }
    }

    struct Case {
        let name: String
        let split: [Int]            // operand channels
        let h, w, cout, k: Int
        let norm, bias, silu: Bool
        let resample: ConvInput.Resample
        let residual: ConvInput.Resample?
    }
    static let cases: [Case] = [
        Case(name: "concat+GN+SiLU 3x3, residual", split: [10, 14], h: 9, w: 13, cout: 35, k: 3, norm: true, bias: false, silu: true, resample: .none, residual: ConvInput.Resample.none),
        Case(name: "bias+GN+SiLU 3x3", split: [24], h: 11, w: 12, cout: 40, k: 3, norm: true, bias: true, silu: true, resample: .none, residual: nil),
        Case(name: "GN+SiLU, up 2x, residual up", split: [16], h: 5, w: 7, cout: 16, k: 3, norm: true, bias: false, silu: true, resample: .up, residual: .up),
        Case(name: "GN+SiLU, down 2x, residual down", split: [16], h: 10, w: 14, cout: 16, k: 3, norm: true, bias: false, silu: true, resample: .down, residual: .down),
        Case(name: "plain concat 1x1 (shortcut)", split: [7, 33], h: 6, w: 30, cout: 33, k: 1, norm: false, bias: false, silu: false, resample: .none, residual: nil),
        Case(name: "down 1x1 odd size", split: [12], h: 9, w: 7, cout: 5, k: 1, norm: false, bias: false, silu: false, resample: .down, residual: nil),
    ]

    struct Built {
        let sources: [Tensor]
        let bias, gamma, beta: Tensor
        let weight: Tensor
        let residual: Tensor?
    }

    func build(_ c: Case, seed: UInt64) throws -> Built { try Self.build(c, seed: seed) }

    static func build(_ c: Case, seed: UInt64) throws -> Built {
        var rng = TestRNG(seed: seed)
        let sources = try c.split.enumerated().map { try tensor([2, c.h, c.w, $0.element], &rng, scale: Float($0.offset + 1), offset: 0.2) }
        let cin = c.split.reduce(0, +)
        let (ho, wo) = c.resample == .up ? (2 * c.h, 2 * c.w) : c.resample == .down ? (c.h / 2, c.w / 2) : (c.h, c.w)
        let residual: Tensor? = try c.residual.map { r in
            let (rh, rw) = r == .up ? (ho / 2, wo / 2) : r == .down ? (2 * ho, 2 * wo) : (ho, wo)
            return try tensor([2, rh, rw, c.cout], &rng)
        }
        return Built(sources: sources, bias: try tensor([2, cin], &rng), gamma: try tensor([cin], &rng, offset: 1),
                     beta: try tensor([cin], &rng), weight: try tensor([c.cout, cin, c.k, c.k], &rng, scale: 0.3), residual: residual)
    }

    /// The chain the fused convolution replaces, op by op (every intermediate materialised in f32).
    func unfused(_ c: Case, _ b: Built, _ w: Conv2dWeight) throws -> Tensor {
        var x = b.sources.count == 2 ? try Ops.concatLast(b.sources[0], b.sources[1]) : b.sources[0]
        if c.bias { x = try Ops.addChannelBias(x, b.bias) }
        if c.norm { x = try Ops.groupNorm(x, groups: 4, gamma: b.gamma, beta: b.beta, silu: c.silu) }
        if c.resample == .up { x = try Ops.upsampleNearest2x(x) }
        if c.resample == .down { x = try Ops.avgPool2x2(x) }
        var y = try Ops.conv2d(x, w)
        if var r = b.residual {
            if c.residual == .up { r = try Ops.upsampleNearest2x(r) }
            if c.residual == .down { r = try Ops.avgPool2x2(r) }
            y = try Ops.add(r, y)
        }
        return y
    }

    func fused(_ c: Case, _ b: Built, _ w: Conv2dWeight, sources: [Tensor]? = nil, residual: Tensor? = nil, out: DType = .f32) throws -> Tensor {
        let s = sources ?? b.sources
        let fold = c.norm ? try Ops.groupNormFold(s, channelBias: c.bias ? b.bias : nil, groups: 4, gamma: b.gamma, beta: b.beta) : nil
        return try Ops.conv2d(ConvInput(s, channelBias: c.bias ? b.bias : nil, norm: fold, silu: c.silu, resample: c.resample), w,
                              residual: residual ?? b.residual, residualResample: c.residual ?? .none, out: out)
    }

    func testFusedInt8ConvEqualsTheUnfusedChainBitForBit() throws {
        for (i, c) in Self.cases.enumerated() {
            let b = try build(c, seed: UInt64(80 + i))
            let w = try Conv2dWeight(weight: b.weight, padding: c.k / 2, quantize: true)
            try forEachPathAndThreads { path, threads in
                XCTAssertEqual(try fused(c, b, w).toArray(), try unfused(c, b, w).toArray(), "\(c.name) \(path) threads \(threads)")
            }
        }
    }

    func testFusedF32ConvEqualsTheUnfusedChainBitForBit() throws {
        for (i, c) in Self.cases.enumerated() {
            let b = try build(c, seed: UInt64(90 + i))
            let w = try Conv2dWeight(weight: b.weight, padding: c.k / 2)
            XCTAssertEqual(try fused(c, b, w).toArray(), try unfused(c, b, w).toArray(), c.name)
        }
    }

    func testF16OperandsAndOutputsMatchTheScalarTwin() throws {
        for (i, c) in Self.cases.enumerated() {
            let b = try build(c, seed: UInt64(100 + i))
            let w = try Conv2dWeight(weight: b.weight, padding: c.k / 2, quantize: true)
            // operands and residual in f16, output in f16: the twin materialises every step with scalar code
            let s16 = try b.sources.enumerated().map { try Ops.cast($0.element, to: $0.offset == 0 ? .f16 : .f32) }
            let r16 = try b.residual.map { try Ops.cast($0, to: .f16) }
            let fold = c.norm ? try Ops.groupNormFold(s16, channelBias: c.bias ? b.bias : nil, groups: 4, gamma: b.gamma, beta: b.beta) : nil
            let input = ConvInput(s16, channelBias: c.bias ? b.bias : nil, norm: fold, silu: c.silu, resample: c.resample)
            let (n, h, wd) = try input.checkedGeometry("test")
            var p = ck_conv2d_params(N: Int32(n), H: Int32(h), W: Int32(wd), Cin: Int32(w.inChannels), Cout: Int32(w.outChannels),
                                     kh: Int32(c.k), kw: Int32(c.k), stride: 1, pad: Int32(c.k / 2), Ho: 0, Wo: 0)
            XCTAssertEqual(ck_conv2d_shape(&p), 0)
            let ref = try Tensor(uninitialized: [n, Int(p.Ho), Int(p.Wo), c.cout], dtype: .f16)
            input.withC { ci in
                func run(_ rp: UnsafePointer<ck_conv_residual>?) {
                    ck_conv2d_q8_fused_ref(&p, ci, w.matrix.q8, w.matrix.scale, nil, rp, UnsafeMutableRawPointer(ref.f16), 1)
                }
                if let r16 { var r = ck_conv_residual(data: UnsafeRawPointer(r16.f16), f16: 1, resample: (c.residual ?? .none).rawValue); run(&r) } else { run(nil) }
            }
            let want = try Ops.cast(ref, to: .f32).toArray()
            try forEachPathAndThreads { path, threads in
                let got = try Ops.cast(try fused(c, b, w, sources: s16, residual: r16, out: .f16), to: .f32).toArray()
                if path == .ref {
                    XCTAssertEqual(got, want, "\(c.name) threads \(threads)")
                } else {
                    // vector SiLU (ck_exp512) differs from expf in the last bits; a flipped int8 activation step and
                    // one binary16 rounding step bound the difference
                    XCTAssertLessThanOrEqual(relMaxError(got, want), 2e-3, "\(c.name) \(path) threads \(threads)")
                }
            }
            // f16 storage against all-f32 (the error compact activations add)
            let f32 = try fused(c, b, w).toArray()
            let f16 = try Ops.cast(try fused(c, b, w, sources: s16, residual: r16, out: .f16), to: .f32).toArray()
            XCTAssertLessThanOrEqual(relMaxError(f16, f32), 2e-2, c.name)
        }
    }

    /// MemoryPlan.small's f16 activations against .fast's f32 ones on one int8 super-resolution UNet call
    /// (resnets with up/down resampling, skip concatenations), both against the f32 file: the f16 roundings barely
    /// move the error (compared with each other, the two int8 runs differ by about the int8 error itself: a
    /// 2⁻¹¹ change of an input re-rolls the activations' int8 rounding, so that is not the f16 error).
    func testCompactActivationsKeepTheInt8Error() throws {
        let q8 = StageModel(try TinyKarlo.model(.q8)), f32 = StageModel(try TinyKarlo.model(.f32))
        let c = try SuperResStage(q8).firstConfig
        let unet = try q8.build("super_res_first") { try UNet(scope: $0, config: c) }
        let unetF = try f32.build("super_res_first") { try UNet(scope: $0, config: c) }
        var rng = TestRNG(seed: 12)
        let s = c.sampleSize
        let x = try tensor([2, s, s, c.inChannels], &rng)
        defer { MemoryPlan.set(.small) }
        MemoryPlan.set(.small)
        let small = try unet(x, timestep: 500).toArray()
        MemoryPlan.set(.fast)
        let fast = try unet(x, timestep: 500).toArray()
        let ref = try unetF(x, timestep: 500).toArray()
        let (eSmall, eFast) = (nmse(small, ref), nmse(fast, ref))
        print("super-res UNet call against the f32 file: int8 + f16 activations NMSE \(eSmall), int8 + f32 activations NMSE \(eFast)")
        XCTAssertNotEqual(small, fast)             // the plan is really in force
        XCTAssertLessThanOrEqual(eSmall, 1.25 * eFast)
    }

    /// The result stored over the residual's buffer (ResnetBlock2D's shortcut output) has the out-of-place bits.
    func testInPlaceResidualGivesTheSameBits() throws {
        let c = Self.cases[0]
        let b = try build(c, seed: 70)
        let w = try Conv2dWeight(weight: b.weight, padding: 1, quantize: true)
        for dtype in [DType.f32, .f16] {
            let r = try Ops.cast(b.residual!, to: dtype)
            let values = try Ops.cast(r, to: .f32).toArray()
            try forEachPathAndThreads { path, threads in
                let expect = try Ops.cast(try fused(c, b, w, residual: r, out: dtype), to: .f32).toArray()
                let own = try Ops.cast(try Tensor(shape: r.shape, values: values), to: dtype)    // a fresh copy each run
                let fold = try Ops.groupNormFold(b.sources, groups: 4, gamma: b.gamma, beta: b.beta)
                let y = try Ops.conv2d(ConvInput(b.sources, norm: fold, silu: true), w, residual: own, residualInPlace: true, out: dtype)
                XCTAssertTrue(y.storage === own.storage, "\(dtype) \(path) threads \(threads): stored elsewhere")
                XCTAssertEqual(try Ops.cast(y, to: .f32).toArray(), expect, "\(dtype) \(path) threads \(threads)")
            }
        }
        var rng = TestRNG(seed: 6)
        let x = try tensor([1, 4, 4, 6], &rng)
        let w6 = try Conv2dWeight(weight: try tensor([6, 6, 3, 3], &rng), padding: 1, quantize: true)
        XCTAssertThrowsError(try Ops.conv2d(ConvInput([x]), w6, residual: x, residualInPlace: true))    // the input itself
        XCTAssertThrowsError(try Ops.conv2d(ConvInput([x]), w6, residual: try tensor([1, 4, 4, 6], &rng), residualInPlace: true, out: .f16))
        XCTAssertThrowsError(try Ops.conv2d(ConvInput([x], resample: .up), w6, residual: try tensor([1, 4, 4, 6], &rng),
                                            residualResample: .up, residualInPlace: true))
        let wf = try Conv2dWeight(weight: try tensor([6, 6, 3, 3], &rng), padding: 1)               // f32 weights: the same checks
        XCTAssertThrowsError(try Ops.conv2d(ConvInput([x]), wf, residual: x, residualInPlace: true))
    }

    func testBadInputsAreErrors() throws {
        var rng = TestRNG(seed: 5)
        let x = try tensor([1, 4, 4, 8], &rng)
        let w = try Conv2dWeight(weight: try tensor([6, 8, 3, 3], &rng), padding: 1, quantize: true)
        XCTAssertThrowsError(try Ops.conv2d(ConvInput([x, x, x]), w))                                  // three operands
        XCTAssertThrowsError(try Ops.conv2d(ConvInput([x, x]), w))                                     // 16 channels for 8
        XCTAssertThrowsError(try Ops.conv2d(ConvInput([x, try tensor([1, 4, 5, 8], &rng)]), w))        // sizes differ
        XCTAssertThrowsError(try Ops.conv2d(ConvInput([x]), w, residual: try tensor([1, 4, 4, 5], &rng)))  // residual channels
        XCTAssertThrowsError(try Ops.conv2d(ConvInput([x]), w, residual: try tensor([1, 4, 4, 6], &rng), residualResample: .up))
        XCTAssertThrowsError(try Ops.conv2d(ConvInput([try tensor([1, 1, 1, 8], &rng)], resample: .down), w))
        XCTAssertThrowsError(try Ops.groupNormFold([x], groups: 3))
        XCTAssertThrowsError(try Ops.conv2d(ConvInput([x]), w, out: .i8))
        XCTAssertEqual(try Ops.conv2d(ConvInput([x], resample: .up), w, residual: try tensor([1, 4, 4, 6], &rng), residualResample: .up, out: .f16).shape, [1, 8, 8, 6])
    }
}
