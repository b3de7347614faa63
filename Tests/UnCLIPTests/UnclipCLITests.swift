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
        let sha = try ModelHash.sha256(of: EmbeddedModelTests.modelPath)
        for text in ["a red circle on top of a blue square", "unclip-shapes64", "seed 3", sha, "Model hash: \(sha.prefix(10))"] {
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

    static let fast = ["--prior-steps", "3", "--decoder-steps", "3", "--super-res-steps", "2"]

    /// Every subcommand has --help (exit 0, on stdout); --version; usage errors exit 2, not ArgumentParser's 64.
    func testHelpVersionAndExitCodes() throws {
        for args in [["--help"], ["generate", "--help"], ["vary", "--help"], ["info", "--help"], ["tokenize", "--help"], ["help", "generate"]] {
            let r = try run(args)
            XCTAssertEqual(r.code, 0, "\(args): \(r.err)")
            XCTAssertTrue(r.out.contains("USAGE: unclip"), "\(args): \(r.out)")
        }
        let v = try run(["--version"])
        XCTAssertEqual(v.code, 0)
        XCTAssertEqual(v.out, "unclip \(UnCLIPVersion.string)\n")
        for args in [["generate", "x", "-o", "a.png", "-n", "0"], ["generate", "x", "-o", "a.png", "--output-dir", "d"],
                     ["generate", "", "-o", "a.png"], ["generate", "x", "-o", "a.png", "--eta", "0.5"],
                     ["generate", "x", "-o", "a.png", "--sampler", "ddim", "--eta", "2"], ["generate", "x", "-o", "a.png", "--sampler", "euler"],
                     ["generate", "x", "-o", "a.png", "--threads", "0"], ["generate", "x", "-o", "a.png", "--decoder-steps=1"], ["info"],
                     ["generate", "x", "-o", "a.png", "--memory", "tiny"], ["generate", "x", "-o", "a.png", "--conv", "fft"]] {
            let r = try run(args)
            XCTAssertEqual(r.code, 2, "\(args): \(r.err)")
            XCTAssertTrue(r.err.hasPrefix("unclip: "), r.err)
        }
        let bad = try run(["generate", "x", "-o", "a.png"], env: ["UNCLIP_CONV": "fft"])
        XCTAssertEqual(bad.code, 2, bad.err)
        XCTAssertTrue(bad.err.contains("UNCLIP_CONV"), bad.err)
    }

    /// -n with -o names out-1.png … out-N.png, --output-dir numbers NNNNN-<seed>.png; every path is printed on stdout;
    /// `unclip info` reads back what was written (UTF-8 prompt, A1111 parameters, provenance XMP).
    func testCountOutputNamesAndInfoRoundTrip() throws {
        let work = try temporaryDirectory("unclipcount")
        defer { try? FileManager.default.removeItem(at: work) }
        let prompt = "一个红色的圆 a red circle"
        let out = work.appendingPathComponent("o.png").path
        var r = try run(["generate", prompt, "-o", out, "-n", "2", "--seed", "5", "-q"] + Self.fast)
        XCTAssertEqual(r.code, 0, r.err)
        let names = ["o-1.png", "o-2.png"].map { work.appendingPathComponent($0).path }
        XCTAssertEqual(r.out, names.map { $0 + "\n" }.joined())
        XCTAssertEqual(r.err, "")  // --quiet
        r = try run(["info", names[1], "--json"])
        XCTAssertEqual(r.code, 0, r.err)
        let j = try JSON.parse(Array(r.out.utf8))
        XCTAssertEqual(j["prompt"]?.string, prompt)
        XCTAssertEqual(j["seed"]?.string, "6")
        XCTAssertEqual(j["kind"]?.string, "text-to-image")
        let params = try XCTUnwrap(j["parameters"]?.string)
        XCTAssertTrue(params.hasPrefix(prompt + "\nSteps: 3, Sampler: UnCLIP, CFG scale: 4.0, Seed: 6, Size: 64x64, Model hash: "), params)
        XCTAssertTrue(params.contains("Prior steps: 3, Prior CFG scale: 4.0, Super-res steps: 2"), params)
        XCTAssertTrue(j[ImageMetadata.xmpKey]?.string?.contains("Iptc4xmpExt:DigitalSourceType=\"\(ImageMetadata.digitalSourceType)\"") == true)
        // The same seed alone gives the same image as in the batch.
        let alone = work.appendingPathComponent("alone.png").path
        XCTAssertEqual(try run(["generate", prompt, "-o", alone, "--seed", "6", "-q"] + Self.fast).code, 0)
        XCTAssertEqual(try PNGImage.read(alone), try PNGImage.read(names[1]))
        // --output-dir, a random seed recorded in the name and the metadata, DDIM.
        let dir = work.appendingPathComponent("outdir").path
        r = try run(["generate", prompt, "--output-dir", dir, "--seed", "random", "--sampler", "ddim", "--eta", "0.5"] + Self.fast)
        XCTAssertEqual(r.code, 0, r.err)
        let written = r.out.split(separator: "\n").map(String.init)
        XCTAssertEqual(written.count, 1)
        let seed = try XCTUnwrap(String((written[0] as NSString).lastPathComponent.dropFirst(6).dropLast(4)))
        XCTAssertTrue(written[0].hasSuffix("/00001-\(seed).png"), written[0])
        let text = try run(["info", written[0]]).out
        XCTAssertTrue(text.contains("seed: \(seed)\n") && text.contains("sampler: ddim (eta 0.5, timestep_spacing leading, steps_offset 0, set_alpha_to_one true)\n"), text)
        r = try run(["generate", prompt, "--output-dir", dir, "-q"] + Self.fast)
        XCTAssertTrue(r.out.hasSuffix("/00002-0.png\n"), r.out)
        // A variation records its source and the source's prompt.
        let v = work.appendingPathComponent("v.png").path
        XCTAssertEqual(try run(["vary", names[0], "-o", v, "-q", "--decoder-steps", "3", "--super-res-steps", "2"]).code, 0)
        let vj = try JSON.parse(Array(try run(["info", v, "--json"]).out.utf8))
        XCTAssertEqual(vj["kind"]?.string, "variation")
        XCTAssertEqual(vj["variation of"]?.string, "o-1.png")
        XCTAssertEqual(vj["source prompt"]?.string, prompt)
        // Not a PNG: exit 1 with the path.
        r = try run(["info", try TinyKarlo.noisePath()])
        XCTAssertEqual(r.code, 1, r.err)
    }

    /// A closed or full stderr and a stdout pipe closed early do not crash the tool; the image is written.
    func testClosedOrFullStandardStreams() throws {
        let work = try temporaryDirectory("unclipstreams")
        defer { try? FileManager.default.removeItem(at: work) }
        let exe = try executableURL("unclip").path
        for (i, redirect) in ["2>&-", "2>/dev/full", "| head -c 0", ">&- 2>&-"].enumerated() {
            let out = work.appendingPathComponent("s\(i).png").path, rc = work.appendingPathComponent("rc\(i)").path
            let args = (["generate", "x", "-o", out] + Self.fast).map { "'\($0)'" }.joined(separator: " ")
            _ = try runProcess(URL(fileURLWithPath: "/bin/bash"), ["-c", "'\(exe)' \(args) \(redirect); echo ${PIPESTATUS[0]} > '\(rc)'"])
            XCTAssertEqual(try String(contentsOfFile: rc, encoding: .utf8), "0\n", redirect)
            XCTAssertEqual(try PNGImage.read(out).width, 64, redirect)
        }
        // A usage error with stderr closed still exits 2.
        let r = try runProcess(URL(fileURLWithPath: "/bin/sh"), ["-c", "'\(exe)' generate x -o y.jpg 2>&-; echo rc=$?"])
        XCTAssertEqual(r.out, "rc=2\n")
    }
}
