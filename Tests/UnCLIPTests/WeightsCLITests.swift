import Foundation
import XCTest
@testable import UnCLIP

/// The unclip-weights executable (built by `swift test` next to the test bundle): exit codes and messages.
final class WeightsCLITests: XCTestCase {
    func run(_ args: [String]) throws -> (code: Int32, out: String, err: String) { try runExecutable("unclip-weights", args) }

    func testUsageErrorsExitTwo() throws {
        for args in [[], ["frobnicate"], ["convert", "x"], ["convert", "x", "-o", "y", "--type", "q9"], ["convert", "-o"],
                     ["inspect"], ["convert", "x", "-o", "y", "--threads", "0"], ["quantize", "a", "-o", "b", "--type", "f32"]] {
            let r = try run(args)
            XCTAssertEqual(r.code, 2, "\(args): \(r.err)")
            XCTAssertTrue(r.err.hasPrefix("unclip-weights: "), "\(args): \(r.err)")
        }
    }

    /// Both other tools share the CLI's contract: --help per subcommand and --version on stdout (exit 0), usage errors 2.
    func testHelpAndVersionOfTheOtherTools() throws {
        for (tool, subs) in [("unclip-weights", ["convert", "quantize", "inspect"]), ("unclip-bench", ["kernels", "pipeline"])] {
            for args in [["--help"]] + subs.map { [$0, "--help"] } {
                let r = try runExecutable(tool, args)
                XCTAssertEqual(r.code, 0, "\(tool) \(args): \(r.err)")
                XCTAssertTrue(r.out.contains("USAGE: \(tool)"), "\(tool) \(args): \(r.out)")
            }
            XCTAssertEqual(try runExecutable(tool, ["--version"]).out, "\(tool) \(UnCLIPVersion.string)\n")
            XCTAssertEqual(try runExecutable(tool, []).code, 2)
        }
        XCTAssertEqual(try runExecutable("unclip-bench", ["pipeline"]).code, 2)
        XCTAssertEqual(try runExecutable("unclip-bench", ["kernels", "--repeats", "0"]).code, 2)
    }

    /// A closed stderr does not crash unclip-weights (its log goes there), and the file is complete.
    func testClosedStderr() throws {
        let work = try temporaryDirectory("clistderr")
        defer { try? FileManager.default.removeItem(at: work) }
        let out = work.appendingPathComponent("m.gguf").path
        let exe = try executableURL("unclip-weights").path
        let r = try runProcess(URL(fileURLWithPath: "/bin/bash"), ["-c", "'\(exe)' convert '\(try Fixtures.url("tiny-karlo").path)' -o '\(out)' --type q8 2>&- | head -c 0; echo ${PIPESTATUS[0]}"])
        XCTAssertEqual(r.out, "0\n", r.err)
        XCTAssertNoThrow(try ModelFile(path: out))
    }

    func testConvertInspectAndBadFiles() throws {
        let work = try temporaryDirectory("cli")
        defer { try? FileManager.default.removeItem(at: work) }
        let model = try Fixtures.url("tiny-karlo").path
        let out = work.appendingPathComponent("m.gguf").path, report = work.appendingPathComponent("r.json").path
        var r = try run(["convert", model, "-o", out, "--type", "q8", "--keep-f32", "prior.*", "--report", report])
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertTrue(r.out.contains("summary:"), r.out)
        let rep = try JSON.parse(Array(try Data(contentsOf: URL(fileURLWithPath: report))))
        XCTAssertGreaterThan(rep["summary"]?["quantized_tensors"]?.int ?? 0, 0)
        XCTAssertFalse(rep["quantized"]?.array?.contains { $0["name"]?.string?.hasPrefix("prior.") == true } ?? true)
        r = try run(["inspect", out])
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertTrue(r.out.contains("decoder: UNet2DConditionModel"), r.out)
        XCTAssertTrue(r.out.contains("tokenizer: 49408 tokens, 48894 merges"), r.out)
        // Bad inputs: exit 1, the path in the message, nothing written.
        let missing = work.appendingPathComponent("nope").path
        r = try run(["convert", missing, "-o", work.appendingPathComponent("x.gguf").path])
        XCTAssertEqual(r.code, 1)
        XCTAssertTrue(r.err.contains(missing), r.err)
        r = try run(["inspect", report])
        XCTAssertEqual(r.code, 1)
        XCTAssertTrue(r.err.contains("not a GGUF file"), r.err)
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: work.path)), ["m.gguf", "r.json"])
    }
}
