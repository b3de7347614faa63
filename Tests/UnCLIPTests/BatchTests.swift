import Foundation
import XCTest
@testable import UnCLIP

/// Batches: the image for seed s is byte-identical whether it was made alone or as one of N (the guided UNets run
/// the N images as one batch of 2N rows), on the f32 and int8 paths, for text → image and variations.
final class BatchTests: XCTestCase {
    func options(count: Int) -> GenerationOptions {
        var o = GenerationOptions()
        (o.priorSteps, o.decoderSteps, o.superResSteps, o.count) = (4, 4, 3, count)
        return o
    }

    func testBatchedImagesEqualTheImagesMadeAlone() throws {
        let models: [(String, () throws -> ModelFile)] = [
            ("tiny-karlo f32", { try TinyKarlo.model(.f32) }), ("tiny-karlo q8", { try TinyKarlo.model(.q8) }),
            ("tiny-karlo-32 f32", { try TinyKarlo.model(.f32, config: "tiny-karlo-32") }),
            ("embedded q8", { try ModelFile(path: EmbeddedModelTests.modelPath) }),
        ]
        for (name, open) in models {
            let pipe = try UnCLIPPipeline(model: try open())
            let (batch, stages) = try pipe.generate(prompt: "a red circle", options: options(count: 3), noises: try .seeded(11, count: 3))
            XCTAssertEqual(batch.count, 3)
            XCTAssertEqual(stages.imageEmbeds?.shape.first, 3)
            for k in 0..<3 {
                let (alone, _) = try pipe.generate(prompt: "a red circle", options: options(count: 1), noises: try .seeded(11 + UInt64(k), count: 1))
                XCTAssertEqual(batch[k], alone[0], "\(name): image \(k) of the batch differs from seed \(11 + k) alone")
            }
            XCTAssertNotEqual(batch[0], batch[1])
            // In chunks of 2 (then 1 + 1 …): the same images.
            var chunked = options(count: 3)
            chunked.maxBatch = 2
            XCTAssertEqual(try pipe.generate(prompt: "a red circle", options: chunked, noises: try .seeded(11, count: 3)).images, batch, "\(name): chunks of 2")
            guard pipe.model.components.contains("image_encoder") else { continue }
            let input = try PNGImage.read(try Fixtures.url("tiny-karlo-run-vary.input.png").path)
            let (vb, _) = try pipe.vary(images: [input, input], options: options(count: 2), noises: try .seeded(3, count: 2))
            let (va, _) = try pipe.vary(images: [input], options: options(count: 1), noises: try .seeded(4, count: 1))
            XCTAssertEqual(vb[1], va[0], "\(name): variation 1 of the batch differs from seed 4 alone")
        }
    }

    func testNoiseSetAndCountAreChecked() throws {
        XCTAssertThrowsError(try NoiseSet([SeededNoise(seed: 1), SeededNoise(seed: 2)], batch: 3))
        var o = options(count: 0)
        XCTAssertThrowsError(try o.validate())
        o.count = GenerationOptions.maxCount + 1
        XCTAssertThrowsError(try o.validate())
        let pipe = try UnCLIPPipeline(model: try TinyKarlo.model(.f32))
        XCTAssertThrowsError(try pipe.generate(prompt: "x", options: options(count: 2), noises: try .seeded(1, count: 3)))
    }
}
