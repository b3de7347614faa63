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

    func run(_ type: WeightType) throws -> (image: PNGImage, stages: StageOutputs) {
        let pipe = try UnCLIPPipeline(model: try TinyKarlo.model(type))
        let exp = try TinyKarlo.expected()
        var opts = GenerationOptions()
        opts.priorSteps = Int(exp.metadata.first { $0.0 == "prior_steps" }!.1)!
        opts.decoderSteps = Int(exp.metadata.first { $0.0 == "decoder_steps" }!.1)!
        opts.superResSteps = Int(exp.metadata.first { $0.0 == "super_res_steps" }!.1)!
        let prompt = exp.metadata.first { $0.0 == "prompt" }!.1
        let (images, stages) = try pipe.generate(prompt: prompt, options: opts,
                                                 noise: try ReplayNoise(path: try Fixtures.url("tiny-karlo-run.noise.safetensors").path))
        return (images[0], stages)
    }

    func testTextToImageF32MatchesDiffusers() throws {
        let exp = try TinyKarlo.expected()
        let (image, stages) = try run(.f32)
        let want = try exp.readFloats("image.uint8").map { UInt8($0) }
        let p = psnr(image.pixels, want)
        let same = zip(image.pixels, want).filter { $0 == $1 }.count
        print("tiny-karlo f32 end to end: PSNR \(p) dB, \(same)/\(want.count) bytes identical")
        XCTAssertGreaterThanOrEqual(p, PipelineParityTests.minPSNR)
        for (name, t) in [("text.embeds", stages.textEmbeds!), ("text.hidden", stages.textHidden!), ("prior.image_embeds", stages.imageEmbeds!)] {
            let e = nmse(t.toArray(), try exp.readFloats(name))
            print("  \(name) NMSE \(e)")
            XCTAssertLessThanOrEqual(e, TinyKarlo.moduleNMSE, name)
        }
        for (name, t) in [("decoder.image", stages.decoderImage!), ("super_res.image", stages.superResImage!)] {
            let e = nmse(NoiseLayout.nhwcToNCHW(t), try exp.readFloats(name))
            print("  \(name) NMSE \(e)")
            XCTAssertLessThanOrEqual(e, TinyKarlo.moduleNMSE, name)
        }
    }

    func testInt8PathAgainstF32() throws {
        let (f32, _) = try run(.f32)
        let (q8, _) = try run(.q8)
        let p = psnr(q8.pixels, f32.pixels)
        print("tiny-karlo int8 vs f32: PSNR \(p) dB")
        XCTAssertGreaterThanOrEqual(p, 30)
    }
}
