import CKernels
import Foundation
import XCTest
@testable import UnCLIP

/// Issue 16's bad inputs, each fed for real: damaged model files, NaN-producing weights and noise, thread counts,
/// output paths, unclip-weights misuse. Every one must end in a typed error (exit 1 or 2), never a trap, and leave
/// nothing half-written.
final class HostileInputTests: XCTestCase {
    /// A copy of a GGUF file with tensors' bytes changed by `mutate`, with or without tensor checksums (a file
    /// "from before checksums"); kept checksums are those of the changed bytes.
    static func rewrite(_ src: String, to dst: String, checksums: Bool, mutate: [String: (UnsafeMutableRawBufferPointer) -> Void] = [:]) throws {
        let g = try GGUFFile(path: src)
        let meta = g.metadata.filter { $0.0 != UnCLIPGGUF.tensorChecksums }
        try GGUFWriter(path: dst).write(metadata: meta, tensors: g.tensors.map { GGUFWriter.Tensor(name: $0.name, type: $0.type, shape: $0.shape) },
                                        checksumKey: checksums ? UnCLIPGGUF.tensorChecksums : nil) { i, buf in
            if let p = buf.baseAddress { try g.read(g.tensors[i], into: p) }
            mutate[g.tensors[i].name]?(buf)
        }
    }

    /// Flips bits of one byte of a tensor in place in the file (the damage a bad disk or download does).
    static func flip(_ path: String, tensor: String, byte: Int, mask: UInt8) throws {
        let g = try GGUFFile(path: path)
        let t = try XCTUnwrap(g.tensor(tensor))
        var d = try Data(contentsOf: URL(fileURLWithPath: path))
        d[g.dataStart + t.offset + byte] ^= mask
        try d.write(to: URL(fileURLWithPath: path))
    }

    func testXXH64MatchesTheSpecAndPythonXXHash() {
        // (length, seed 0, seed 7) from python-xxhash 3.5.0 (xxhash.xxh64_intdigest); empty with seed 0 is also the spec's test vector
        let cases: [([UInt8], UInt64, UInt64)] = [
            ([], 0xef46db3751d8e999, 0x95f0626f6f0a4409), (Array("a".utf8), 0xd24ec4f1a98c6e5b, 0xdc6349d489e0f965),
            (Array("abc".utf8), 0x44bc2cf5ad770999, 0x9e755206156676d7), ((0..<32).map { UInt8($0) }, 0xcbf59c5116ff32b4, 0xa5972d57c4aea230),
            ((0..<100).map { UInt8($0) }, 0x6ac1e58032166597, 0x80653e7e9b887cdd),
            (Array(String(repeating: "unclip", count: 50).utf8), 0xc655ad1465b3951c, 0x632eee5f659272ff),
        ]
        for (bytes, h0, h7) in cases {
            XCTAssertEqual(bytes.withUnsafeBytes { ck_xxh64($0.baseAddress, bytes.count, 0) }, h0, "\(bytes.count) bytes")
            XCTAssertEqual(bytes.withUnsafeBytes { ck_xxh64($0.baseAddress, bytes.count, 7) }, h7, "\(bytes.count) bytes, seed 7")
        }
        // the non-finite counter over each float kind
        let f: [Float] = [1, .nan, 2, .infinity, -.infinity, 0]
        var first = 99
        XCTAssertEqual(f.withUnsafeBytes { ck_count_nonfinite(Int32(CK_FLOAT_F32), f.count, $0.baseAddress, &first) }, 3)
        XCTAssertEqual(first, 1)
        let h: [UInt16] = [0x3c00, 0x7c00, 0xfe00, 0x7bff], b: [UInt16] = [0x3f80, 0x7f80, 0x7f7f, 0xffc0]
        XCTAssertEqual(h.withUnsafeBytes { ck_count_nonfinite(Int32(CK_FLOAT_F16), h.count, $0.baseAddress, &first) }, 2)
        XCTAssertEqual(b.withUnsafeBytes { ck_count_nonfinite(Int32(CK_FLOAT_BF16), b.count, $0.baseAddress, &first) }, 2)
        XCTAssertEqual(first, 1)
    }

    /// The issue's reproduction: one flipped bit in the shipped model (inside super_res_last.conv_norm_out.weight, an
    /// F32 tensor) used to reach UInt8(NaN) and trap. Now its checksum catches it when the component is mapped; in a
    /// file without checksums the NaN it makes is refused at load with the tensor's name.
    func testFlippedBitInTheShippedModel() throws {
        let work = try temporaryDirectory("flip")
        defer { try? FileManager.default.removeItem(at: work) }
        let name = "super_res_last.conv_norm_out.weight"
        for checksums in [true, false] {
            let damaged = work.appendingPathComponent("m-\(checksums).gguf").path, out = work.appendingPathComponent("o.png").path
            try Self.rewrite(EmbeddedModelTests.modelPath, to: damaged, checksums: checksums)
            try Self.flip(damaged, tensor: name, byte: 7, mask: 0x40)  // value 1's exponent: 0x3f… → 0x7f…, NaN or ∞
            let r = try runExecutable("unclip", ["generate", "a red circle", "-m", damaged, "-o", out, "-q",
                                                 "--prior-steps", "2", "--decoder-steps", "2", "--super-res-steps", "2"])
            XCTAssertEqual(r.code, 1, r.err)
            XCTAssertTrue(r.err.contains("tensor '\(name)'"), r.err)
            XCTAssertTrue(r.err.contains(checksums ? "checksum mismatch" : "NaN or infinite"), r.err)
            XCTAssertEqual(r.err.contains("has no tensor checksums"), !checksums, r.err)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out))
            let v = try runExecutable("unclip-weights", ["verify", damaged])
            XCTAssertEqual(v.code, 1, v.err)
            XCTAssertTrue(v.err.contains(name), v.err)
        }
        // a flipped bit in an int8 weight that checksums catch and the column sums would too
        let q = work.appendingPathComponent("q.gguf").path
        try Self.rewrite(EmbeddedModelTests.modelPath, to: q, checksums: true)
        try Self.flip(q, tensor: "decoder.conv_in.weight", byte: 0, mask: 0x01)
        XCTAssertThrowsError(try ModelFile(path: q).load("decoder")) { XCTAssertTrue("\($0)".contains("checksum mismatch"), "\($0)") }
        // the shipped file itself is sound and has checksums
        let ok = try runExecutable("unclip-weights", ["verify", EmbeddedModelTests.modelPath])
        XCTAssertEqual(ok.code, 0, ok.err)
        XCTAssertTrue(ok.out.contains("every checksum matches"), ok.out)
    }

    /// A finite but huge weight overflows to ∞ and NaN inside a stage: the stage's output check names it (a file
    /// without checksums, so nothing refuses it earlier); the CLI exits 1 and writes nothing.
    func testNaNArisingInAStageIsATypedError() throws {
        let work = try temporaryDirectory("stagenan")
        defer { try? FileManager.default.removeItem(at: work) }
        let model = work.appendingPathComponent("huge.gguf").path, out = work.appendingPathComponent("o.png").path
        try Self.rewrite(try TinyKarlo.model(.f32).path, to: model, checksums: false, mutate: ["prior.proj_in.weight": { buf in
            let f = buf.bindMemory(to: Float.self)
            for i in f.indices { f[i] = 3e38 }
        }])
        let pipe = try UnCLIPPipeline(model: try ModelFile(path: model))
        var o = GenerationOptions()
        (o.priorSteps, o.decoderSteps, o.superResSteps) = (2, 2, 2)
        XCTAssertThrowsError(try pipe.generate(prompt: "a red circle", options: o, noise: SeededNoise(seed: 1))) { e in
            guard case let .nonFinite(stage, detail)? = e as? UnCLIPError else { return XCTFail("\(e)") }
            XCTAssertEqual(stage, "prior")
            XCTAssertTrue(detail.contains("NaN or infinite"), detail)
        }
        let r = try runExecutable("unclip", ["generate", "a red circle", "-m", model, "-o", out, "--prior-steps", "2", "--decoder-steps", "2", "--super-res-steps", "2"])
        XCTAssertEqual(r.code, 1, r.err)
        XCTAssertTrue(r.err.contains("prior:"), r.err)
        XCTAssertFalse(r.err.contains("Fatal error"), r.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        // the last guard: a NaN image tensor is an error, not UInt8(NaN)
        XCTAssertThrowsError(try UnCLIPPipeline.toImages(try Tensor(shape: [1, 1, 2, 3], values: [0, 0, .nan, 0, 0, 0])))
    }

    /// A noise file whose prior.latents are NaN is refused when the draw is read, naming the file and tensor.
    func testNaNNoiseFileIsRefused() throws {
        let work = try temporaryDirectory("noisenan")
        defer { try? FileManager.default.removeItem(at: work) }
        let src = try SafeTensorsFile(path: try TinyKarlo.noisePath())
        let bad = work.appendingPathComponent("nan.safetensors").path, out = work.appendingPathComponent("o.png").path
        try SafeTensorsWriter.write(bad, tensors: try src.tensors.map { t in
            var v = try src.readFloats(t.name)
            if t.name == "prior.latents" { v[3] = .nan }
            return (t.name, t.shape, v)
        })
        let r = try runExecutable("unclip", ["generate", "a red circle on top of a blue square", "-m", try TinyKarlo.model(.f32).path, "-o", out, "--noise", bad])
        XCTAssertEqual(r.code, 1, r.err)
        XCTAssertTrue(r.err.contains("tensor 'prior.latents'") && r.err.contains("finite"), r.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }

    /// --threads and UNCLIP_THREADS: the same validation, bounded by the usable cores unless --oversubscribe.
    func testThreadsAreBoundedAndTheEnvironmentValidated() throws {
        let cores = Runtime.usableCores
        XCTAssertThrowsError(try Runtime.setThreads(cores + 1))
        XCTAssertThrowsError(try Runtime.setThreads(0))
        XCTAssertThrowsError(try Runtime.setThreads(Runtime.maxThreads + 1, oversubscribe: true))
        let work = try temporaryDirectory("threads")
        defer { try? FileManager.default.removeItem(at: work) }
        let model = try TinyKarlo.model(.f32).path, out = work.appendingPathComponent("o.png").path
        let base = ["generate", "x", "-m", model, "-o", out, "--prior-steps", "2", "--decoder-steps", "2", "--super-res-steps", "2", "-q"]
        for (extra, env) in [(["--threads", "\(cores + 1)"], [:]), (["--threads", "0"], [:]), ([], ["UNCLIP_THREADS": "0"]),
                             ([], ["UNCLIP_THREADS": "abc"]), ([], ["UNCLIP_THREADS": "-3"]), ([], ["UNCLIP_THREADS": "\(cores + 1)"]),
                             (["--threads", "2000", "--oversubscribe"], [:])] as [([String], [String: String])] {
            let r = try runExecutable("unclip", base + extra, env: env)
            XCTAssertEqual(r.code, 2, "\(extra) \(env): \(r.err)")
            XCTAssertTrue(r.err.contains("thread") || r.err.contains("THREADS"), r.err)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        var r = try runExecutable("unclip", base + ["--threads", "\(cores + 1)", "--oversubscribe"])
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertTrue(r.err.contains("warning: \(cores + 1) threads"), r.err)
        r = try runExecutable("unclip", base, env: ["UNCLIP_THREADS": "1"])
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertEqual(try runExecutable("unclip-weights", ["verify", model, "--threads", "\(cores + 1)"]).code, 2)
    }

    /// Every output path is checked before the work: a bad --dump folder or an output that is a folder fails at once
    /// and writes nothing; with a good --dump the image is written before the dump.
    func testOutputPathsAreCheckedBeforeWork() throws {
        let work = try temporaryDirectory("outputs")
        defer { try? FileManager.default.removeItem(at: work) }
        let model = try TinyKarlo.model(.f32).path, out = work.appendingPathComponent("o.png").path
        let steps = ["--prior-steps", "2", "--decoder-steps", "2", "--super-res-steps", "2", "-q"]
        for args in [["-o", out, "--dump", "/nonexistent-dir/d.safetensors"], ["-o", out, "--dump", work.path],
                     ["-o", work.appendingPathComponent("dir.png").path]] {
            try? FileManager.default.createDirectory(at: work.appendingPathComponent("dir.png"), withIntermediateDirectories: true)
            let r = try runExecutable("unclip", ["generate", "x", "-m", model] + args + steps)
            XCTAssertEqual(r.code, 1, "\(args): \(r.err)")
            XCTAssertTrue(r.err.contains("folder"), r.err)
            XCTAssertFalse(r.err.contains("NSCocoaErrorDomain"), r.err)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        }
        // interpolate and textdiff: the same checks
        for args in [["textdiff", try Fixtures.url("tiny-karlo-run-vary.input.png").path, "--to", "x", "-o", "/nonexistent-dir/a.png"],
                     ["textdiff", try Fixtures.url("tiny-karlo-run-vary.input.png").path, "--to", "x", "-o", work.appendingPathComponent("dir.png").path]] {
            let r = try runExecutable("unclip", args + ["-m", model, "-q"])
            XCTAssertEqual(r.code, 1, "\(args): \(r.err)")
        }
    }

    /// unclip-weights: no output left on failure, no overwriting its own source, malformed or unmatched globs and a
    /// repeated --type refused.
    func testWeightsToolMisuse() throws {
        let work = try temporaryDirectory("weightsmisuse")
        defer { try? FileManager.default.removeItem(at: work) }
        let f32 = work.appendingPathComponent("a.gguf").path, q = work.appendingPathComponent("q.gguf").path
        XCTAssertEqual(try runExecutable("unclip-weights", ["convert", try Fixtures.url("tiny-karlo").path, "-o", f32]).code, 0)
        try FileManager.default.createSymbolicLink(atPath: work.appendingPathComponent("link.gguf").path, withDestinationPath: f32)
        let before = try Data(contentsOf: URL(fileURLWithPath: f32))
        for (args, code, message) in [
            (["quantize", f32, "-o", q, "--report", "/nonexistent-dir/r.json"], 1, "does not exist"),
            (["quantize", f32, "-o", q, "--report", work.path], 1, "is a folder"),
            (["quantize", f32, "-o", f32], 1, "the input file itself"),
            (["quantize", f32, "-o", work.appendingPathComponent("link.gguf").path], 1, "the input file itself"),
            (["quantize", f32, "-o", q, "--keep-f32", "["], 2, "without its ']'"),
            (["quantize", f32, "-o", q, "--keep-f32", "decoder.nothing.*"], 1, "matches no tensor"),
            (["quantize", f32, "-o", q, "--type", "q8", "--type", "f16"], 2, "--type given 2 times"),
            (["quantize", f32, "-o", q, "--report", q], 2, "same file"),
            (["add-checksums", f32, "-o", f32], 1, "the input file itself"),
        ] as [([String], Int32, String)] {
            let r = try runExecutable("unclip-weights", args)
            XCTAssertEqual(r.code, code, "\(args): \(r.err)")
            XCTAssertTrue(r.err.contains(message), "\(args): \(r.err)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: q), "\(args) left \(q)")
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: f32)), before)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: work.path).filter { $0.hasSuffix(".tmp") }, [])
        // a matching glob is accepted and keeps that tensor f32
        XCTAssertEqual(try runExecutable("unclip-weights", ["quantize", f32, "-o", q, "--keep-f32", "decoder.conv_in.*"]).code, 0)
        XCTAssertEqual(try GGUFFile(path: q).tensor("decoder.conv_in.weight")?.type, .f32)
        // add-checksums on a file without them: tensors byte for byte, checksums added, verify then says so
        let old = work.appendingPathComponent("old.gguf").path, re = work.appendingPathComponent("re.gguf").path
        try Self.rewrite(q, to: old, checksums: false)
        XCTAssertNil(try ModelFile(path: old).checksums)
        var r = try runExecutable("unclip-weights", ["verify", old])
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertTrue(r.err.contains("no tensor checksums"), r.err)
        r = try runExecutable("unclip-weights", ["add-checksums", old, "-o", re])
        XCTAssertEqual(r.code, 0, r.err)
        let (a, b) = (try GGUFFile(path: old), try GGUFFile(path: re))
        XCTAssertEqual(try ModelFile(path: re).checksums, try ModelFile(path: q).checksums)
        for t in a.tensors {
            var x = [UInt8](repeating: 0, count: t.byteCount), y = x
            try a.read(t, into: &x)
            try b.read(try XCTUnwrap(b.tensor(t.name)), into: &y)
            XCTAssertEqual(x, y, t.name)
        }
    }

    /// A hub folder whose tokenizer transformers 5 saved (tokenizer.json + tokenizer_config.json, no vocab.json or
    /// merges.txt: Fixtures/tiny-karlo-tokenizer-hub5, weights-tools/reference/make_tokenizer5_fixture.py) converts to
    /// the same tokenizer as the vocab.json layout; both layouts together must agree; the pad token is read from
    /// special_tokens_map.json when tokenizer_config.json lacks it.
    func testTransformers5TokenizerLayoutConverts() throws {
        let work = try temporaryDirectory("tok5")
        defer { try? FileManager.default.removeItem(at: work) }
        let fm = FileManager.default
        let hub = work.appendingPathComponent("hub"), tokDir = hub.appendingPathComponent("tokenizer")
        try fm.copyItem(at: try Fixtures.url("tiny-karlo"), to: hub)
        let slowFiles = ["vocab.json", "merges.txt"]
        for f in slowFiles + ["tokenizer_config.json"] { try fm.removeItem(at: tokDir.appendingPathComponent(f)) }
        for f in ["tokenizer.json", "tokenizer_config.json"] {
            try fm.copyItem(at: try Fixtures.url("tiny-karlo-tokenizer-hub5").appendingPathComponent(f), to: tokDir.appendingPathComponent(f))
        }
        let keys = [TokenizerFiles.tokensKey, TokenizerFiles.mergesKey, TokenizerFiles.bosKey, TokenizerFiles.eosKey, TokenizerFiles.padKey]
        let reference = try TinyKarlo.model(.f32).gguf
        func converted(_ name: String) throws -> GGUFFile {
            let out = work.appendingPathComponent(name).path
            _ = try Converter.convert(modelDirectory: hub.path, output: out, options: ConvertOptions(type: .f32))
            return try GGUFFile(path: out)
        }
        let g = try converted("t5.gguf")
        for k in keys { XCTAssertEqual(g.value(k), reference.value(k), k) }
        XCTAssertEqual(try CLIPTokenizer(file: g).encode("a red circle! on top of a blue square").ids,
                       try CLIPTokenizer(file: reference).encode("a red circle! on top of a blue square").ids)
        // both layouts: accepted when they agree, refused when they do not
        for f in slowFiles { try fm.copyItem(at: try Fixtures.url("tiny-karlo/tokenizer").appendingPathComponent(f), to: tokDir.appendingPathComponent(f)) }
        XCTAssertEqual(try converted("both.gguf").value(TokenizerFiles.mergesKey), reference.value(TokenizerFiles.mergesKey))
        var merges = try String(contentsOf: tokDir.appendingPathComponent("merges.txt"), encoding: .utf8).components(separatedBy: "\n")
        merges.swapAt(1, 2)
        try merges.joined(separator: "\n").write(to: tokDir.appendingPathComponent("merges.txt"), atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try converted("stale.gguf")) { XCTAssertTrue("\($0)".contains("disagree on their merges"), "\($0)") }
        for f in slowFiles { try fm.removeItem(at: tokDir.appendingPathComponent(f)) }
        // the pad token from special_tokens_map.json
        try #"{"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>"}"#.write(to: tokDir.appendingPathComponent("tokenizer_config.json"), atomically: true, encoding: .utf8)
        try #"{"pad_token": {"content": "<|endoftext|>", "lstrip": false}}"#.write(to: tokDir.appendingPathComponent("special_tokens_map.json"), atomically: true, encoding: .utf8)
        XCTAssertEqual(try converted("pad.gguf").value(TokenizerFiles.padKey)?.int, 49407)
        // neither layout: a message that names both
        try fm.removeItem(at: tokDir.appendingPathComponent("tokenizer.json"))
        XCTAssertThrowsError(try converted("none.gguf")) { XCTAssertTrue("\($0)".contains("tokenizer.json"), "\($0)") }
    }

    /// Messages that used to mislead: each names the file and says what is wrong with it.
    func testMessagesSayWhatIsWrong() throws {
        let work = try temporaryDirectory("messages")
        defer { try? FileManager.default.removeItem(at: work) }
        let model = try TinyKarlo.model(.f32).path, out = work.appendingPathComponent("o.png").path
        let png = work.appendingPathComponent("t.png").path, noise = work.appendingPathComponent("n.safetensors").path
        let whole = try Data(contentsOf: try Fixtures.url("tiny-karlo-run-vary.input.png"))
        try whole.prefix(whole.count / 2).write(to: URL(fileURLWithPath: png))
        try Data([8, 0, 0, 0, 0, 0, 0, 0, 0x7b, 0x7d, 0x20, 0x20, 0x20, 0x20, 0x20]).write(to: URL(fileURLWithPath: noise))
        for (args, message) in [
            (["vary", png, "-m", model, "-o", out], "truncated or damaged PNG"),
            (["vary", work.path, "-m", model, "-o", out], "is a folder, not a PNG file"),
            (["generate", "x", "-m", work.path, "-o", out], "is a folder"),
            (["generate", "x", "-m", model, "-o", out, "--noise", noise], "a header of 8 bytes, but only 7 bytes follow"),
        ] {
            let r = try runExecutable("unclip", args)
            XCTAssertEqual(r.code, 1, "\(args): \(r.err)")
            XCTAssertTrue(r.err.contains(message), "\(args): \(r.err)")
        }
        var r = try runExecutable("unclip-weights", ["convert", model, "-o", work.appendingPathComponent("c.gguf").path])
        XCTAssertEqual(r.code, 1, r.err)
        XCTAssertTrue(r.err.contains("is a GGUF file, not a model folder"), r.err)
        // a GGUF from another program, without tensors and without padding after its header: not "truncated"
        let other = work.appendingPathComponent("other.gguf").path
        try GGUFWriter(path: other).write(metadata: [("general.architecture", .string("llama")), ("general.name", .string("vocab"))], tensors: []) { _, _ in }
        var bytes = try Data(contentsOf: URL(fileURLWithPath: other))
        while bytes.last == 0 { bytes.removeLast() }
        try bytes.write(to: URL(fileURLWithPath: other))
        XCTAssertThrowsError(try ModelFile(path: other)) { XCTAssertTrue("\($0)".contains("not an unclip model file"), "\($0)") }
        // an error after progress output starts on its own line (stderr a terminal: `script` gives the run a pty)
        let huge = work.appendingPathComponent("huge.gguf").path
        try Self.rewrite(model, to: huge, checksums: false, mutate: ["decoder.conv_out.weight": { buf in
            let f = buf.bindMemory(to: Float.self)
            for i in f.indices { f[i] = 3e38 }
        }])
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/script") {
            let cmd = "'\(try executableURL("unclip").path)' generate x -m '\(huge)' -o '\(out)' --prior-steps 2 --decoder-steps 3 --super-res-steps 2"
            r = try runProcess(URL(fileURLWithPath: "/usr/bin/script"), ["-qec", cmd, "/dev/null"])
            XCTAssertNotEqual(r.code, 0, r.out)
            let lines = r.out.replacingOccurrences(of: "\r\n", with: "\n").components(separatedBy: "\n")
            XCTAssertTrue(lines.contains { $0.hasPrefix("unclip: decoder:") }, r.out.debugDescription)
            XCTAssertTrue(r.out.contains("\r"), "the progress line was not drawn in place: \(r.out.debugDescription)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }

    /// The fuzz targets' seed corpora and every input that ever crashed one (fuzz/regressions/<target>/, committed
    /// with its fix) replay without a crash through the same code the libFuzzer build runs (scripts/fuzz.sh).
    func testFuzzSeedsAndRegressionsReplay() throws {
        let work = try temporaryDirectory("fuzzseeds")
        defer { try? FileManager.default.removeItem(at: work) }
        var r = try runExecutable("unclip-fuzz", ["seeds", work.path])
        XCTAssertEqual(r.code, 0, r.err)
        let regressions = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("fuzz/regressions")
        for t in ["gguf", "safetensors", "json", "png", "tokenizer", "noise", "multipart", "request"] {
            r = try runExecutable("unclip-fuzz", ["replay", t, work.appendingPathComponent(t).path, regressions.appendingPathComponent(t).path])
            XCTAssertEqual(r.code, 0, "\(t): \(r.err)")
            XCTAssertTrue(r.out.hasPrefix("\(t): ") && !r.out.hasPrefix("\(t): 0 inputs"), r.out)
        }
        XCTAssertEqual(try runExecutable("unclip-fuzz", ["replay", "nope", work.path]).code, 2)
    }

    /// A prompt longer than CLIP's 77 tokens is cut, as in diffusers, and the user is told: a warning on stderr before
    /// the work and the `truncated` fact in the image's metadata. One 120,000-letter word tokenizes (the quadratic
    /// BPE took 32 s on it).
    func testTruncatedPromptIsReported() throws {
        let work = try temporaryDirectory("truncated")
        defer { try? FileManager.default.removeItem(at: work) }
        let out = work.appendingPathComponent("o.png").path
        let prompt = String(repeating: "a red circle on top of a blue square ", count: 12)
        let r = try runExecutable("unclip", ["generate", prompt, "-m", try TinyKarlo.model(.f32).path, "-o", out, "-q",
                                             "--prior-steps", "2", "--decoder-steps", "2", "--super-res-steps", "2"])
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertTrue(r.err.contains("warning: the prompt has 108 tokens; CLIP reads the first 75"), r.err)
        let text = try PNGText.read(out)
        XCTAssertEqual(text.first { $0.key == "truncated" }?.value, "prompt kept 75 of 108 tokens")
        XCTAssertTrue(text.first { $0.key == "parameters" }?.value.contains("Truncated: prompt kept 75 of 108 tokens") ?? false)
        let g = SeededNoise(seed: 120)
        let word = String(String.UnicodeScalarView((0..<120_000).map { _ in Unicode.Scalar(UInt8(97 + g.next() % 26)) }))
        let tok = try UnCLIPPipeline(model: try TinyKarlo.model(.f32)).tokenizer
        XCTAssertEqual(tok.encode(word).mask.reduce(0, +), 77)
        XCTAssertEqual(tok.truncation(word)?.kept, 75)
    }
}
