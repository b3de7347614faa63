import CKernels
import Foundation
import XCTest
@testable import UnCLIP

/// unclip-weights' library side on the tiny Karlo fixture (Fixtures/tiny-karlo, made by
/// weights-tools/reference/make_tiny_karlo.py).
final class ConverterTests: XCTestCase {
    var work: URL!

    override func setUpWithError() throws { work = try temporaryDirectory("conv") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: work) }

    func fixture() throws -> String {
        let u = try Fixtures.url("tiny-karlo")
        // A private copy, so tests can break it.
        let dst = work.appendingPathComponent("tiny-karlo")
        if !FileManager.default.fileExists(atPath: dst.path) { try FileManager.default.copyItem(at: u, to: dst) }
        return dst.path
    }

    func sources(_ dir: String) throws -> [(String, SafeTensorsFile, SafeTensorInfo)] {
        let model = try ModelDirectory(path: dir)
        var out: [(String, SafeTensorsFile, SafeTensorInfo)] = []
        for c in model.components {
            guard case let .model(files) = c.kind else { continue }
            for e in try ComponentWeights(directory: c.directory, files: files).entries where e.info.dtype.isFloat {
                out.append((c.name, e.file, e.info))
            }
        }
        return out
    }

    func testF32ConversionRoundTripsEveryTensorExactly() throws {
        let dir = try fixture()
        let out = work.appendingPathComponent("m.gguf").path
        let r = try Converter.convert(modelDirectory: dir, output: out, options: ConvertOptions(type: .f32))
        XCTAssertTrue(r.quantization.isEmpty)
        let m = try ModelFile(path: out)
        XCTAssertEqual(m.weightType, .f32)
        XCTAssertEqual(Set(m.components), ["decoder", "decoder_scheduler", "prior", "prior_scheduler", "super_res_first",
                                          "super_res_last", "super_res_scheduler", "text_encoder", "text_proj", "tokenizer",
                                          "image_encoder", "feature_extractor"])
        XCTAssertEqual(m.gguf.value(TokenizerFiles.tokensKey)?.strings?.count, 49408)
        XCTAssertEqual(m.gguf.value(TokenizerFiles.mergesKey)?.strings?.count, 48894)
        XCTAssertEqual(m.gguf.value(TokenizerFiles.padKey), .u32(0))  // "!"
        XCTAssertEqual(m.config("decoder")?["out_channels"]?.int, 6)
        var checked = 0
        for (comp, file, info) in try sources(dir) {
            let scope = try m.load(comp)
            XCTAssertEqual(try scope.tensor(info.name).toArray(), try file.readFloats(info.name), "\(comp).\(info.name)")
            checked += 1
        }
        XCTAssertEqual(checked, r.tensors)
    }

    func testQ8ConversionIsWithinItsReportedErrorAndRunsInPlace() throws {
        let dir = try fixture()
        let out = work.appendingPathComponent("q.gguf").path
        let r = try Converter.convert(modelDirectory: dir, output: out, options: ConvertOptions(type: .q8, keepF32: ["decoder.conv_in.*"]))
        XCTAssertGreaterThan(r.quantization.count, 50)
        XCTAssertFalse(r.quantization.contains { $0.name == "decoder.conv_in.weight" })
        XCTAssertFalse(r.quantization.contains { $0.name.contains("token_embedding") })
        for e in r.quantization {
            XCTAssertLessThan(e.relativeRMS, 0.01, e.name)  // int8 per-channel on Gaussian-like weights: ~0.4%
            XCTAssertGreaterThan(e.cosine, 0.9999, e.name)
        }
        let m = try ModelFile(path: out)
        XCTAssertEqual(m.weightType, .q8)
        let byName = Dictionary(uniqueKeysWithValues: r.quantization.map { ($0.name, $0) })
        for (comp, file, info) in try sources(dir) {
            let full = "\(comp).\(info.name)"
            let src = try file.readFloats(info.name)
            let scope = try m.load(comp)
            guard let e = byName[full] else {
                if Converter.isEmbeddingTable(full) {  // embedding tables: F16 in q8 files
                    XCTAssertEqual(m.gguf.tensor(full)?.type, .f16, full)
                    XCTAssertEqual(try scope.tensor(info.name).toArray(), src.map { Float(Float16($0)) }, full)
                } else {
                    XCTAssertEqual(try scope.tensor(info.name).toArray(), src, full)  // kept in f32 exactly
                }
                continue
            }
            // Dequantize the stored panels and check them against the source with the reported error.
            let t = m.gguf.tensor(full)!
            let packed = scope.storage(t).raw.assumingMemoryBound(to: Int8.self)
            let scale = try scope.tensor(info.name + ".scale").toArray()
            let n = info.shape[0], cin = info.shape[1], kk = info.shape.count == 4 ? info.shape[2] * info.shape[3] : 1
            var stats = [Double](repeating: 0, count: 4)
            var maxAbs: Float = 0
            ck_q8_error_stats(Int32(n), Int32(cin), Int32(kk), src, packed, scale, &stats, &maxAbs)
            XCTAssertEqual(Double(maxAbs), e.maxAbs, full)
            XCTAssertEqual((stats[1] / stats[0]).squareRoot(), e.relativeRMS, accuracy: 1e-12, full)
            // The mapped int8 weight computes the same layer as the f32 source (within int8 error).
            if info.shape.count == 2 {
                let lw = try scope.linear(String(info.name.dropLast(".weight".count)))
                XCTAssertEqual(lw.kind, .q8)
                var rng = TestRNG(seed: 5)
                let x = try Tensor(shape: [3, info.shape[1]], values: rng.array(3 * info.shape[1]))
                let y = try Ops.linear(x, lw).toArray()
                let ref = try Ops.linear(x, try LinearWeight(weight: try Tensor(shape: info.shape, values: src), bias: lw.bias.map { try Tensor(shape: [$0.count], values: $0) })).toArray()
                XCTAssertLessThan(relMaxError(y, ref), 0.05, full)
            }
        }
        // Re-quantizing the f32 file gives the same int8 file content.
        let f32 = work.appendingPathComponent("f.gguf").path
        _ = try Converter.convert(modelDirectory: dir, output: f32, options: ConvertOptions(type: .f32))
        let q2 = work.appendingPathComponent("q2.gguf").path
        let r2 = try Converter.quantize(input: f32, output: q2, options: ConvertOptions(type: .q8, keepF32: ["decoder.conv_in.*"]))
        XCTAssertEqual(r2.quantization.map(\.name), r.quantization.map(\.name))
        let a = try GGUFFile(path: out), b = try GGUFFile(path: q2)
        XCTAssertEqual(a.tensors, b.tensors)
        for t in a.tensors {
            var x = [UInt8](repeating: 0, count: t.byteCount), y = x
            try x.withUnsafeMutableBytes { try a.read(t, into: $0.baseAddress!) }
            try y.withUnsafeMutableBytes { try b.read(t, into: $0.baseAddress!) }
            XCTAssertEqual(x, y, t.name)
        }
        XCTAssertThrowsError(try Converter.quantize(input: q2, output: work.appendingPathComponent("q3.gguf").path, options: ConvertOptions(type: .q8)))

        // A damaged column sum (every int8 path uses them for the activations' zero point) is refused at load,
        // naming the tensor, instead of silently shifting an output channel. One for a linear, one for a conv.
        // The file's tensor checksums catch it when the component is mapped; in a file without them (written before
        // they existed) the column-sum check does.
        for wanted in [2, 4] {
            let entry = try XCTUnwrap(r.quantization.first { $0.shape.count == wanted })
            let comp = String(entry.name.prefix { $0 != "." }), local = String(entry.name.dropFirst(comp.count + 1))
            let bad = work.appendingPathComponent("bad-colsum-\(wanted).gguf").path
            let unsummed = work.appendingPathComponent("bad-colsum-\(wanted)-old.gguf").path
            for f in [bad, unsummed] { try? FileManager.default.removeItem(atPath: f) }
            try FileManager.default.copyItem(atPath: out, toPath: bad)
            try HostileInputTests.rewrite(out, to: unsummed, checksums: false)
            for path in [bad, unsummed] {
                let g = try GGUFFile(path: path)
                let c = try XCTUnwrap(g.tensor(entry.name + ".colsum"))
                let h = try FileHandle(forUpdating: URL(fileURLWithPath: path))
                try h.seek(toOffset: UInt64(g.dataStart + c.offset))
                var v = try XCTUnwrap(h.read(upToCount: 4)).withUnsafeBytes { $0.loadUnaligned(as: Int32.self) } + 1
                try h.seek(toOffset: UInt64(g.dataStart + c.offset))
                try h.write(contentsOf: Data(bytes: &v, count: 4))
                try h.close()
            }
            XCTAssertThrowsError(try ModelFile(path: bad).load(comp)) { XCTAssertTrue("\($0)".contains(entry.name + ".colsum': checksum mismatch"), "\($0)") }
            let scope = try ModelFile(path: unsummed).load(comp)
            let prefix = String(local.dropLast(".weight".count))
            let load: () throws -> Void = wanted == 2 ? { _ = try scope.linear(prefix) } : { _ = try scope.conv2d(prefix) }
            XCTAssertThrowsError(try load()) { e in
                let text = "\(e)"
                XCTAssertTrue(e is WeightsError && text.contains(entry.name + ".colsum") && text.contains("damaged"), text)
            }
        }
    }

    func testF16ConversionRoundsLikeFloat16() throws {
        let dir = try fixture()
        let out = work.appendingPathComponent("h.gguf").path
        _ = try Converter.convert(modelDirectory: dir, output: out, options: ConvertOptions(type: .f16))
        let m = try ModelFile(path: out)
        let scope = try m.load("prior")
        let src = try SafeTensorsFile(path: dir + "/prior/diffusion_pytorch_model.safetensors")
        let w = try scope.tensor("proj_in.weight").toArray()
        XCTAssertEqual(w, try src.readFloats("proj_in.weight").map { Float(Float16($0)) })
        XCTAssertEqual(m.gguf.tensor("prior.proj_in.weight")?.type, .f16)
        XCTAssertEqual(m.gguf.tensor("prior.proj_in.bias")?.type, .f32)  // rank 1 stays f32
    }

    func testStandardGGUFToolReadsTheFiles() throws {
        let dir = try fixture()
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let dump = root.appendingPathComponent("weights-tools/.venv-gguf/bin/gguf-dump").path
        guard FileManager.default.isExecutableFile(atPath: dump) else {
            return XCTFail("gguf-dump is missing: run `bash scripts/install-deps.sh` (it creates weights-tools/.venv-gguf)")
        }
        for type in WeightType.allCases {
            let out = work.appendingPathComponent("\(type).gguf").path
            let r = try Converter.convert(modelDirectory: dir, output: out, options: ConvertOptions(type: type))
            let p = Process()
            p.executableURL = URL(fileURLWithPath: dump)
            p.arguments = ["--no-tensors", out]
            let pipe = Pipe()
            p.standardOutput = pipe
            p.standardError = pipe
            try p.run()
            let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            XCTAssertEqual(p.terminationStatus, 0, text)
            XCTAssertTrue(text.contains("GGUF.tensor_count = \(r.tensors)"), text)
            XCTAssertTrue(text.contains("general.architecture = 'unclip'"), text)
        }
    }

    func testSubsetDirectoryConvertsAndSaysWhichComponentsItHas() throws {
        let dir = try fixture()
        try FileManager.default.removeItem(atPath: dir + "/prior")
        let index = try String(contentsOfFile: dir + "/model_index.json", encoding: .utf8)
            .replacingOccurrences(of: "\"prior\": [\n    \"diffusers\",\n    \"PriorTransformer\"\n  ],", with: "\"prior\": [null, null],")
        try index.write(toFile: dir + "/model_index.json", atomically: true, encoding: .utf8)
        let out = work.appendingPathComponent("s.gguf").path
        let r = try Converter.convert(modelDirectory: dir, output: out, options: ConvertOptions(type: .q8))
        XCTAssertFalse(r.components.contains("prior"))
        let m = try ModelFile(path: out)
        XCTAssertFalse(m.components.contains("prior"))
        XCTAssertThrowsError(try m.load("prior")) { XCTAssertTrue("\($0)".contains("has no component 'prior'")) }
    }

    /// Every bad input: a typed error naming the file (and tensor), and no output file left behind.
    func testBadInputsGiveTypedErrorsAndLeaveNoOutput() throws {
        let fm = FileManager.default
        func expectFailure(_ what: String, kind: WeightsError.Kind? = nil, mention: String? = nil, _ setup: (String) throws -> Void) throws {
            let caseDir = work.appendingPathComponent("case-\(UUID().uuidString)")
            try fm.createDirectory(at: caseDir, withIntermediateDirectories: true)
            let dir = caseDir.appendingPathComponent("model").path
            try fm.copyItem(atPath: try Fixtures.url("tiny-karlo").path, toPath: dir)
            try setup(dir)
            let out = caseDir.appendingPathComponent("out.gguf").path
            XCTAssertThrowsError(try Converter.convert(modelDirectory: dir, output: out, options: ConvertOptions(type: .q8)), what) { e in
                guard let w = e as? WeightsError else { return XCTFail("\(what): untyped \(e)") }
                if let kind { XCTAssertEqual(w.kind, kind, "\(what): \(w)") }
                if let mention { XCTAssertTrue("\(w)".contains(mention), "\(what): \(w)") }
            }
            XCTAssertEqual(try fm.contentsOfDirectory(atPath: caseDir.path), ["model"], "\(what): output left behind")
        }
        try expectFailure("not a model", kind: .malformed, mention: "model_index.json") { try fm.removeItem(atPath: $0 + "/model_index.json") }
        try expectFailure("index not JSON", kind: .malformed, mention: "not valid JSON") { try "{oops".write(toFile: $0 + "/model_index.json", atomically: true, encoding: .utf8) }
        try expectFailure("missing component dir", kind: .malformed, mention: "text_proj") { try fm.removeItem(atPath: $0 + "/text_proj") }
        try expectFailure("pickle only", kind: .unsupported, mention: "safetensors") { d in
            try fm.removeItem(atPath: d + "/text_proj/diffusion_pytorch_model.safetensors")
            try Data([0x80, 0x02]).write(to: URL(fileURLWithPath: d + "/text_proj/diffusion_pytorch_model.bin"))
        }
        try expectFailure("config disagrees", kind: .tensor, mention: "conv_in.weight") { d in
            let p = d + "/decoder/config.json"
            try (try String(contentsOfFile: p, encoding: .utf8)).replacingOccurrences(of: "\"in_channels\": 3", with: "\"in_channels\": 4")
                .write(toFile: p, atomically: true, encoding: .utf8)
        }
        try expectFailure("missing tensor", kind: .tensor, mention: "embedding_proj.weight") { d in
            let p = d + "/text_proj/diffusion_pytorch_model.safetensors"
            let src = try SafeTensorsFile(path: p)
            let kept = try src.tensors.filter { $0.name != "embedding_proj.weight" }.map { (name: $0.name, shape: $0.shape, values: try src.readFloats($0.name)) }
            try SafeTensorsWriter.write(p, tensors: kept)
        }
        try expectFailure("config not JSON", kind: .malformed, mention: "config.json") { try "[1,".write(toFile: $0 + "/prior/config.json", atomically: true, encoding: .utf8) }
        try expectFailure("truncated weights", mention: "truncated") { d in
            let p = d + "/prior/diffusion_pytorch_model.safetensors"
            let data = try Data(contentsOf: URL(fileURLWithPath: p))
            try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: p))
        }
        try expectFailure("duplicate across shards", kind: .tensor, mention: "also appears") { d in
            let c = d + "/text_proj"
            let src = try SafeTensorsFile(path: c + "/diffusion_pytorch_model.safetensors")
            try fm.removeItem(atPath: c + "/diffusion_pytorch_model.safetensors")
            let all = try src.tensors.map { ($0.name, $0.shape, try src.readFloats($0.name)) }
            try SafeTensorsWriter.write(c + "/a.safetensors", tensors: all.map { (name: $0.0, shape: $0.1, values: $0.2) })
            try SafeTensorsWriter.write(c + "/b.safetensors", tensors: [(name: all[0].0, shape: all[0].1, values: all[0].2)])
            // The index sends the first tensor to b, which a also holds.
            let map = all.enumerated().map { "\"\($0.element.0)\": \"\($0.offset == 0 ? "b" : "a").safetensors\"" }.joined(separator: ",")
            try "{\"weight_map\": {\(map)}}".write(toFile: c + "/model.safetensors.index.json", atomically: true, encoding: .utf8)
        }
        try expectFailure("index names a missing shard", kind: .malformed, mention: "missing") { d in
            let c = d + "/text_proj"
            try fm.moveItem(atPath: c + "/diffusion_pytorch_model.safetensors", toPath: c + "/a.safetensors")
            try "{\"weight_map\": {\"embedding_proj.weight\": \"b.safetensors\"}}".write(toFile: c + "/model.safetensors.index.json", atomically: true, encoding: .utf8)
        }
        // Output that cannot be written.
        let dir = try fixture()
        XCTAssertThrowsError(try Converter.convert(modelDirectory: dir, output: "/nonexistent-dir/x.gguf", options: ConvertOptions())) {
            XCTAssertEqual(($0 as? WeightsError)?.kind, .io)
        }
    }

    func testShardedComponentConverts() throws {
        let dir = try fixture()
        let c = dir + "/text_proj"
        let src = try SafeTensorsFile(path: c + "/diffusion_pytorch_model.safetensors")
        let all = try src.tensors.map { (name: $0.name, shape: $0.shape, values: try src.readFloats($0.name)) }
        try FileManager.default.removeItem(atPath: c + "/diffusion_pytorch_model.safetensors")
        let half = all.count / 2
        try SafeTensorsWriter.write(c + "/diffusion_pytorch_model-00001-of-00002.safetensors", tensors: Array(all[..<half]))
        try SafeTensorsWriter.write(c + "/diffusion_pytorch_model-00002-of-00002.safetensors", tensors: Array(all[half...]))
        let map = all.enumerated().map { "\"\($0.element.name)\": \"diffusion_pytorch_model-0000\($0.offset < half ? 1 : 2)-of-00002.safetensors\"" }
        try "{\"metadata\": {}, \"weight_map\": {\(map.joined(separator: ","))}}".write(toFile: c + "/diffusion_pytorch_model.safetensors.index.json", atomically: true, encoding: .utf8)
        let out = work.appendingPathComponent("sh.gguf").path
        _ = try Converter.convert(modelDirectory: dir, output: out, options: ConvertOptions())
        let scope = try ModelFile(path: out).load("text_proj")
        for t in all { XCTAssertEqual(try scope.tensor(t.name).toArray(), t.values, t.name) }
    }
}
