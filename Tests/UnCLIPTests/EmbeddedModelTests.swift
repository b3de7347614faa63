import Foundation
import XCTest
@testable import UnCLIP

/// The committed embedded model (models/unclip-shapes64-q8.gguf) against diffusers running its f32 checkpoint.
final class EmbeddedModelTests: XCTestCase {
    static let modelPath = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("models/unclip-shapes64-q8.gguf").path
    /// Made by diffusers from the f32 checkpoint the q8 file was converted from (that 56 MB checkpoint is not
    /// committed; train.py export re-creates one): the noise file and the stage results.
    static let recreate = "weights-tools/.venv/bin/python weights-tools/reference/make_pipeline_fixtures.py "
        + "<train-out>/unclip-shapes64 Tests/UnCLIPTests/Fixtures/shapes64-run --final-only --decoder-guidance 4.0"

    /// Issue 4's int8 target (final image ≥ 30 dB against the f32 path on the same noise), on a trained model —
    /// diffusers' f32 image stands for the f32 path (our f32 engine matches it to 83 dB on this model, README).
    func testInt8EmbeddedModelAgainstDiffusersF32() throws {
        let noise = try Fixtures.url("shapes64-run.noise.safetensors").path
        let exp = try SafeTensorsFile(path: try Fixtures.url("shapes64-run.expected.safetensors").path)
        let meta = Dictionary(uniqueKeysWithValues: exp.metadata)
        XCTAssertEqual(meta["fixture_version"], TinyKarlo.fixtureVersion, "stale fixture; re-create with: \(Self.recreate)")
        let model = try ModelFile(path: Self.modelPath)
        var opts = try GenerationOptions(defaultsOf: model)
        XCTAssertEqual(opts.decoderGuidance, Float(meta["decoder_guidance"]!)!)   // the model's own default, 4.0
        opts.priorSteps = Int(meta["prior_steps"]!)!
        opts.decoderSteps = Int(meta["decoder_steps"]!)!
        opts.superResSteps = Int(meta["super_res_steps"]!)!
        let (images, stages) = try UnCLIPPipeline(model: model).generate(prompt: meta["prompt"]!, options: opts,
                                                                          noise: try ReplayNoise(path: noise))
        let want = try exp.readFloats("image.uint8").map { UInt8($0) }
        let p = psnr(images[0].pixels, want)
        print("embedded model, int8 engine vs diffusers f32: PSNR \(p) dB")
        XCTAssertGreaterThanOrEqual(p, 30.0)
        // The prompt's text embedding barely moves under int8 (a broken path would be far off).
        XCTAssertLessThanOrEqual(nmse(try XCTUnwrap(stages.textEmbeds).toArray(), try exp.readFloats("text.embeds")), 1e-3)
    }
}
