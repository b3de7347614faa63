import Foundation
import XCTest
@testable import UnCLIP

/// A model's own generation defaults (model_index.json's `_unclip_generation_defaults`) and their validation.
final class GenerationDefaultsTests: XCTestCase {
    /// tiny-karlo converted with `defaults` (a JSON text) added to its model_index.json; nil: unchanged.
    func model(with defaults: String?) throws -> ModelFile {
        let work = try temporaryDirectory("gendefaults")
        let hub = work.appendingPathComponent("hub")
        try FileManager.default.copyItem(at: try Fixtures.url("tiny-karlo"), to: hub)
        if let defaults {
            let index = hub.appendingPathComponent("model_index.json")
            var text = try String(contentsOf: index, encoding: .utf8)
            let brace = text.lastIndex(of: "}")!
            text.replaceSubrange(brace...brace, with: ", \"\(GenerationOptions.modelDefaultsKey)\": \(defaults)}")
            try text.write(to: index, atomically: true, encoding: .utf8)
        }
        let out = work.appendingPathComponent("m.gguf").path
        _ = try Converter.convert(modelDirectory: hub.path, output: out, options: ConvertOptions(type: .f32))
        return try ModelFile(path: out)
    }

    func testModelDefaultsOverrideDiffusersAndBadOnesAreRefused() throws {
        let plain = try GenerationOptions(defaultsOf: try model(with: nil))
        XCTAssertEqual([plain.priorSteps, plain.decoderSteps, plain.superResSteps], [25, 25, 7])
        XCTAssertEqual([plain.priorGuidance, plain.decoderGuidance], [4.0, 8.0])
        let own = try GenerationOptions(defaultsOf: try model(with: #"{"decoder_guidance_scale": 4.0, "prior_num_inference_steps": 10, "super_res_num_inference_steps": 3}"#))
        XCTAssertEqual([own.priorSteps, own.decoderSteps, own.superResSteps], [10, 25, 3])
        XCTAssertEqual([own.priorGuidance, own.decoderGuidance], [4.0, 4.0])
        for bad in [#"{"decoder_guidance_scale": "4"}"#, #"{"decoder_guidance_scale": 1000}"#, #"{"prior_num_inference_steps": 1}"#,
                    #"{"decoder_num_inference_steps": 2.5}"#, #"{"guidance": 3}"#, "[1, 2]"] {
            let m = try model(with: bad)
            XCTAssertThrowsError(try GenerationOptions(defaultsOf: m), bad) { error in
                XCTAssertTrue("\(error)".contains(GenerationOptions.modelDefaultsKey), "\(error)")
            }
            // The CLI refuses such a file before generating: exit 1, the file and the key named, no image.
            let out = URL(fileURLWithPath: m.path).deletingLastPathComponent().appendingPathComponent("o.png").path
            let r = try runExecutable("unclip", ["generate", "x", "-m", m.path, "-o", out])
            XCTAssertEqual(r.code, 1, r.err)
            XCTAssertTrue(r.err.contains(m.path) && r.err.contains(GenerationOptions.modelDefaultsKey), r.err)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        }
    }
}
