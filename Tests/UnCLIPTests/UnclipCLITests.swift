import Foundation
import XCTest
@testable import UnCLIP

/// The unclip executable (built by `swift test` next to the test bundle).
final class UnclipCLITests: XCTestCase {
    func run(_ args: [String], env: [String: String] = [:]) throws -> (code: Int32, out: String, err: String) {
        try runExecutable("unclip", args, env: env)
    }

    func testGenerateVaryTokenizeAndBadInputs() throws {
        let work = try temporaryDirectory("unclipcli")
        defer { try? FileManager.default.removeItem(at: work) }
        let model = try TinyKarlo.model(.f32).path
        let out = work.appendingPathComponent("a.png").path, dump = work.appendingPathComponent("d.safetensors").path
        var r = try run(["generate", "a red circle on top of a blue square", "-m", model, "-o", out,
                         "--noise", try TinyKarlo.noisePath(), "--dump", dump])
        XCTAssertEqual(r.code, 0, r.err)
        let img = try PNGImage.read(out)
        let want = try TinyKarlo.expected().readFloats("image.uint8").map { UInt8($0) }
        XCTAssertEqual(psnr(img.pixels, want), .infinity)  // the CLI reproduces diffusers' bytes on this fixture
        let d = try SafeTensorsFile(path: dump)
        XCTAssertEqual(Set(d.tensors.map(\.name)), ["text.embeds", "text.hidden", "prior.image_embeds", "decoder.image", "super_res.image"])
        XCTAssertEqual(d.info("decoder.image")?.shape, [1, 3, 8, 8])
        XCTAssertNotNil(try Data(contentsOf: URL(fileURLWithPath: out)).range(of: Data("a red circle on top of a blue square".utf8)))
        // Seeded runs are deterministic.
        let s1 = work.appendingPathComponent("s1.png").path, s2 = work.appendingPathComponent("s2.png").path
        XCTAssertEqual(try run(["generate", "x", "-m", model, "-o", s1, "--seed", "7", "--prior-steps", "3", "--decoder-steps", "3", "--super-res-steps", "2"]).code, 0)
        XCTAssertEqual(try run(["generate", "x", "-m", model, "-o", s2, "--seed", "7", "--prior-steps", "3", "--decoder-steps", "3", "--super-res-steps", "2"]).code, 0)
        XCTAssertEqual(try PNGImage.read(s1), try PNGImage.read(s2))
        r = try run(["vary", try Fixtures.url("tiny-karlo-run-vary.input.png").path, "-m", model, "-o", work.appendingPathComponent("v.png").path,
                     "--noise", try TinyKarlo.noisePath("tiny-karlo-run-vary")])
        XCTAssertEqual(r.code, 0, r.err)
        r = try run(["tokenize", "-m", model, "a red circle", ""])
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertTrue(r.out.hasPrefix("[49406,320,736,7117,49407,0"), r.out)
        // Usage errors: exit 2.
        for args in [["generate"], ["generate", "x", "-m", model], ["generate", "x", "-m", model, "-o", "y.jpg"],
                     ["generate", "x", "-m", model, "-o", "y.png", "--prior-steps", "1"], ["generate", "x", "-m", model, "-o", "y.png", "--seed", "-3"],
                     ["generate", "x", "-m", model, "-o", "y.png", "--decoder-guidance", "nan"], ["vary", "x.png", "-m", model, "-o", "y.png", "--prior-guidance", "2"],
                     ["generate", "x", "-m", model, "-o", "y.png", "--bogus"], ["paint"]] {
            r = try run(args)
            XCTAssertEqual(r.code, 2, "\(args): \(r.err)")
        }
        // Bad files: exit 1 with the path; nothing written.
        let bad = work.appendingPathComponent("bad.png").path
        for args in [["generate", "x", "-m", work.appendingPathComponent("none.gguf").path, "-o", bad],
                     ["generate", "x", "-m", dump, "-o", bad],
                     ["generate", "x", "-m", model, "-o", bad, "--noise", try TinyKarlo.noisePath("tiny-karlo-run-vary")],
                     ["vary", dump, "-m", model, "-o", bad],
                     ["generate", "x", "-m", model, "-o", "/nonexistent-dir/o.png"]] {
            r = try run(args)
            XCTAssertEqual(r.code, 1, "\(args): \(r.err)")
            XCTAssertTrue(r.err.hasPrefix("unclip: "), r.err)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: bad))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: work.path).filter { $0.hasSuffix(".tmp") }, [])
    }

    /// The embedded model (models/unclip-shapes64-q8.gguf) is what `generate` and `vary` use without -m, and its
    /// images carry their parameters. (Its caption-following is measured by weights-tools/train/eval_engine.py.)
    func testEmbeddedModelIsTheDefault() throws {
        let work = try temporaryDirectory("unclipdefault")
        defer { try? FileManager.default.removeItem(at: work) }
        let out = work.appendingPathComponent("e.png").path, vary = work.appendingPathComponent("v.png").path
        var r = try run(["generate", "a red circle on top of a blue square", "-o", out, "--seed", "3",
                         "--prior-steps", "3", "--decoder-steps", "3", "--super-res-steps", "2"])
        XCTAssertEqual(r.code, 0, r.err)
        let img = try PNGImage.read(out)
        XCTAssertEqual([img.width, img.height], [64, 64])
        let bytes = try Data(contentsOf: URL(fileURLWithPath: out))
        for text in ["a red circle on top of a blue square", "unclip-shapes64", "seed 3", "fnv1a64-16MiB:"] {
            XCTAssertNotNil(bytes.range(of: Data(text.utf8)), text)
        }
        r = try run(["vary", out, "-o", vary, "--decoder-steps", "3", "--super-res-steps", "2"])
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertEqual(try PNGImage.read(vary).width, 64)
        r = try run(["tokenize", "an orange circle"])
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertTrue(r.out.hasPrefix("[49406,"), r.out)
        // $UNCLIP_MODEL comes before the embedded model; a bad one is an error naming it, nothing written.
        let bad = work.appendingPathComponent("bad.png").path
        for model in [work.appendingPathComponent("none.gguf").path, vary] {
            r = try run(["generate", "x", "-o", bad], env: ["UNCLIP_MODEL": model])
            XCTAssertEqual(r.code, 1, r.err)
            XCTAssertTrue(r.err.hasPrefix("unclip: \(model): "), r.err)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: bad))
    }
}
