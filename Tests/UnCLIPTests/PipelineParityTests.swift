import Foundation
import XCTest
@testable import UnCLIP

/// PSNR in dB between two uint8 images (∞ when identical).
func psnr(_ a: [UInt8], _ b: [UInt8]) -> Double {
    precondition(a.count == b.count)
    var se = 0.0
    for i in 0..<a.count { let d = Double(a[i]) - Double(b[i]); se += d * d }
    return se == 0 ? .infinity : 10 * log10(255 * 255 / (se / Double(a.count)))
}

/// The whole text→image pipeline against diffusers' recorded run (same weights, same noise).
final class PipelineParityTests: XCTestCase {
    /// End to end, f32: the target.
    static let minPSNR = 40.0

    func run(_ type: WeightType, config: String = "tiny-karlo") throws -> (image: PNGImage, stages: StageOutputs) {
        try PipelineParityTests.run(type, config: config)
    }

    static func run(_ type: WeightType, config: String = "tiny-karlo") throws -> (image: PNGImage, stages: StageOutputs) {
        let pipe = try UnCLIPPipeline(model: try TinyKarlo.model(type, config: config))
        let exp = try TinyKarlo.expected("\(config)-run")
        var opts = GenerationOptions()
        opts.priorSteps = Int(exp.metadata.first { $0.0 == "prior_steps" }!.1)!
        opts.decoderSteps = Int(exp.metadata.first { $0.0 == "decoder_steps" }!.1)!
        opts.superResSteps = Int(exp.metadata.first { $0.0 == "super_res_steps" }!.1)!
        let prompt = exp.metadata.first { $0.0 == "prompt" }!.1
        let (images, stages) = try pipe.generate(prompt: prompt, options: opts,
                                                 noise: try ReplayNoise(path: try TinyKarlo.noisePath("\(config)-run")))
        return (images[0], stages)
    }

    func testTextToImageF32MatchesDiffusers() throws {
        for config in TinyKarlo.configs { try checkTextToImage(config) }
    }

    func checkTextToImage(_ config: String) throws {
        let exp = try TinyKarlo.expected("\(config)-run")
        let (image, stages) = try run(.f32, config: config)
        let want = try exp.readFloats("image.uint8").map { UInt8($0) }
        let p = psnr(image.pixels, want)
        let same = zip(image.pixels, want).filter { $0 == $1 }.count
        print("\(config) f32 end to end: PSNR \(p) dB, \(same)/\(want.count) bytes identical")
        XCTAssertGreaterThanOrEqual(p, PipelineParityTests.minPSNR, config)
        for (name, t) in [("text.embeds", stages.textEmbeds!), ("text.hidden", stages.textHidden!), ("prior.image_embeds", stages.imageEmbeds!)] {
            let e = nmse(t.toArray(), try exp.readFloats(name))
            print("  \(name) NMSE \(e)")
            XCTAssertLessThanOrEqual(e, TinyKarlo.moduleNMSE, "\(config) \(name)")
        }
        for (name, t) in [("decoder.image", stages.decoderImage!), ("super_res.image", stages.superResImage!)] {
            let e = nmse(NoiseLayout.nhwcToNCHW(t), try exp.readFloats(name))
            print("  \(name) NMSE \(e)")
            XCTAssertLessThanOrEqual(e, TinyKarlo.moduleNMSE, "\(config) \(name)")
        }
    }

    func testVariationsF32MatchDiffusers() throws {
        let exp = try TinyKarlo.expected("tiny-karlo-run-vary")
        let pipe = try UnCLIPPipeline(model: try TinyKarlo.model(.f32))
        let input = try PNGImage.read(try Fixtures.url("tiny-karlo-run-vary.input.png").path)
        // The image processor's pixels (PIL bicubic in 8-bit fixed point) against transformers'.
        let pixels = try CLIPImageProcessor(config: try TinyKarlo.model(.f32).config("feature_extractor")!)(input)
        let want = nchwToNHWC(try exp.readFloats("image_encoder.in.pixel_values"), exp.shape("image_encoder.in.pixel_values"))
        XCTAssertLessThanOrEqual(relMaxError(pixels.toArray(), want), 1e-6, "image processor")
        var opts = GenerationOptions()
        opts.decoderSteps = Int(exp.metadata.first { $0.0 == "decoder_steps" }!.1)!
        opts.superResSteps = Int(exp.metadata.first { $0.0 == "super_res_steps" }!.1)!
        let (images, stages) = try pipe.vary(image: input, options: opts, noise: try ReplayNoise(path: try TinyKarlo.noisePath("tiny-karlo-run-vary")))
        let e = nmse(stages.imageEmbeds!.toArray(), try exp.readFloats("image_encoder.image_embeds"))
        XCTAssertLessThanOrEqual(e, TinyKarlo.moduleNMSE, "image embeds")
        let wantImage = try exp.readFloats("image.uint8").map { UInt8($0) }
        let p = psnr(images[0].pixels, wantImage)
        print("tiny-karlo variations f32 end to end: PSNR \(p) dB, image embeds NMSE \(e)")
        XCTAssertGreaterThanOrEqual(p, PipelineParityTests.minPSNR)
        let (q8, _) = try UnCLIPPipeline(model: try TinyKarlo.model(.q8)).vary(image: input, options: opts,
                                                                               noise: try ReplayNoise(path: try TinyKarlo.noisePath("tiny-karlo-run-vary")))
        let pq = psnr(q8[0].pixels, images[0].pixels)
        print("tiny-karlo variations int8 vs f32: PSNR \(pq) dB")
        XCTAssertGreaterThanOrEqual(pq, PipelineParityTests.int8FloorPSNR)
    }

    /// int8 against f32 on the same noise: issue 4's target, 30 dB. Measured with asymmetric activations (README):
    /// tiny-karlo 33.5, tiny-karlo-16 35.0, tiny-karlo-32 33.5, variations 32.2 dB (with the earlier symmetric
    /// activations 27.5 / 34.4 / 29.4 / 32.5 — these random 8/16-channel models are chaotic under int8 error).
    static let int8FloorPSNR = 30.0

    /// The same with every 3×3 stride-1 convolution forced to int8 Winograd F(2×2, 3×3), at the same 30 dB floor.
    /// Measured (AVX2 host): 32.7 / 34.8 / 31.1 dB against direct int8's 32.8 / 36.4 / 34.2. The transformed weights
    /// are exact integers (int16); the one extra rounding is the transformed tiles V (each a sum of up to four inputs,
    /// rounded to int8 per row), which through a whole random tiny pipeline, every convolution Winograd, costs 0.1–3
    /// dB. (With the weights rounded to int8 as well, the earlier version measured 29.6 / 29.7 / 31.7 dB: below the
    /// floor.) Winograd must not beat direct int8 (it has strictly more rounding; better than direct would mean it
    /// did not run), and its result must differ from direct's.
    func testInt8WinogradPathAgainstF32() throws {
        let saved = Runtime.convAlgorithm
        defer { Runtime.convAlgorithm = saved }
        for config in TinyKarlo.configs {
            let (f32, _) = try run(.f32, config: config)
            Runtime.convAlgorithm = .winograd
            let (q8, _) = try run(.q8, config: config)
            Runtime.convAlgorithm = .direct
            let (direct, _) = try run(.q8, config: config)
            Runtime.convAlgorithm = saved
            let (p, pd) = (psnr(q8.pixels, f32.pixels), psnr(direct.pixels, f32.pixels))
            print("\(config) int8 Winograd (every 3×3 convolution) vs f32: PSNR \(p) dB (direct int8 \(pd) dB)")
            XCTAssertNotEqual(q8.pixels, direct.pixels, "Winograd was not used")
            XCTAssertLessThan(p, pd, config)
            XCTAssertGreaterThanOrEqual(p, Self.int8FloorPSNR, config)
        }
    }

    func testInt8PathAgainstF32() throws {
        for config in TinyKarlo.configs {
            let (f32, _) = try run(.f32, config: config)
            let (q8, _) = try run(.q8, config: config)
            let p = psnr(q8.pixels, f32.pixels)
            print("\(config) int8 vs f32: PSNR \(p) dB")
            XCTAssertGreaterThanOrEqual(p, PipelineParityTests.int8FloorPSNR, config)
        }
    }
}

