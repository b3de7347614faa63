import CKernels
import CPeaks
import Foundation
import UnCLIP

/// `unclip-bench pipeline -m model.gguf [--diffusers <hub-dir>]`: seconds per step of each stage at the model's
/// real shapes (guidance batches: 2 for text encoder, prior and decoder; 1 for super-resolution), the process's
/// peak RSS, and — with --diffusers — diffusers/PyTorch on the same configs in the same run
/// (weights-tools/reference/time_diffusers.py in weights-tools/.venv).
enum PipelineBench {
    static func median(_ repeats: Int, _ body: () throws -> Void) rethrows -> Double {
        try body()  // warm-up (maps and touches the weights)
        var s: [Double] = []
        for _ in 0..<repeats {
            let t0 = cpk_now()
            try body()
            s.append(cpk_now() - t0)
        }
        return s.sorted()[s.count / 2]
    }

    /// VmHWM of this process (ru_maxrss is not used: Linux carries a parent's peak into its children).
    static func peakRSSMB() -> Double {
        guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = s.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
              let kb = Double(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") else { return 0 }
        return kb / 1024
    }

    static func randn(_ n: Int, seed: UInt64) throws -> [Float] { try SeededNoise(seed: seed).draw("x", shape: [n]) }

    static func run(model path: String, diffusers: String?, repeats: Int, threads: Int, json: String?, markdown: String?) throws {
        let m = try ModelFile(path: path)
        var secs: [(String, Double)] = []
        func cfg(_ c: String) throws -> JSON {
            guard let j = m.config(c) else { throw WeightsError(.malformed, file: path, "no config for \(c)") }
            return j
        }
        // Maps a component, builds its model, lets go of the pages its packed weights came from.
        func build<M>(_ component: String, _ make: (ComponentScope) throws -> M) throws -> M {
            let scope = try m.load(component)
            defer { scope.releasePackedSources() }
            return try make(scope)
        }
        let ids = [[Int32]](repeating: [49406, 49407] + [Int32](repeating: 0, count: 75), count: 2)
        let mask = [[Bool]](repeating: [true, true] + [Bool](repeating: false, count: 75), count: 2)
        let (embeds, hidden): (Tensor, Tensor) = try {
            let te = try build("text_encoder") { try CLIPTextModelWithProjection(scope: $0, config: try .init(try cfg("text_encoder"))) }
            var out: (Tensor, Tensor)? = nil
            secs.append(("text_encoder", try median(repeats) { out = try te(ids) }))
            return out!
        }()
        do {
            let prior = try build("prior") { try PriorTransformer(scope: $0, config: try .init(try cfg("prior"))) }
            let e = prior.config.embeddingDim
            let x = try Tensor(shape: [2, e], values: try randn(2 * e, seed: 1))
            secs.append(("prior_step", try median(repeats) {
                _ = try prior(x, timestep: 500, projEmbedding: embeds, encoderHiddenStates: hidden, textMask: mask)
            }))
        }
        do {
            let c = try UNet.Config(try cfg("decoder"), conditioned: true)
            let unet = try build("decoder") { try UNet(scope: $0, config: c) }
            let tp = try UnCLIPTextProjModel.Config(try cfg("text_proj"))
            let s = c.sampleSize
            let sample = try Tensor(shape: [2, s, s, c.inChannels], values: try randn(2 * s * s * c.inChannels, seed: 2))
            let ctx = try Tensor(shape: [2, 81, tp.crossAttentionDim], values: try randn(2 * 81 * tp.crossAttentionDim, seed: 3))
            let cls = try Tensor(shape: [2, tp.timeEmbedDim], values: try randn(2 * tp.timeEmbedDim, seed: 4))
            let cmask = [[Bool]](repeating: [Bool](repeating: true, count: 81), count: 2)
            secs.append(("decoder_step", try median(repeats) {
                _ = try unet(sample, timestep: 500, context: ctx, contextMask: cmask, classLabels: cls)
            }))
        }
        do {
            let c = try UNet.Config(try cfg("super_res_first"), conditioned: false)
            let unet = try build("super_res_first") { try UNet(scope: $0, config: c) }
            let s = c.sampleSize
            let sample = try Tensor(shape: [1, s, s, c.inChannels], values: try randn(s * s * c.inChannels, seed: 5))
            secs.append(("super_res_step", try median(max(1, repeats - 1)) { _ = try unet(sample, timestep: 500) }))
        }
        let rssMB = peakRSSMB()
        // Peer: diffusers/PyTorch on the hub directory the file was converted from.
        var peer: [String: Double] = [:]
        var peerInfo = ""
        if let dir = diffusers {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "weights-tools/.venv/bin/python")
            p.arguments = ["weights-tools/reference/time_diffusers.py", dir, "--threads", String(threads), "--repeats", String(repeats)]
            let pipe = Pipe()
            p.standardOutput = pipe
            p.standardError = FileHandle.nullDevice
            do { try p.run() } catch {
                throw UnCLIPError.invalidArgument(name: "--diffusers", detail: "cannot run weights-tools/.venv/bin/python (run weights-tools/setup_venv.sh --reference): \(error)")
            }
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            guard p.terminationStatus == 0, let j = try? JSON.parse(Array(data)), let s = j["seconds"]?.object else {
                throw UnCLIPError.invalidArgument(name: "--diffusers", detail: "time_diffusers.py failed on \(dir)")
            }
            for (k, v) in s { peer[k] = v.double }
            peerInfo = "diffusers/PyTorch \(j["torch"]?.string ?? "?") peak RSS \(String(format: "%.0f", j["peak_rss_mb"]?.double ?? 0)) MB"
        }
        let type = m.weightType.rawValue
        var md = "unclip-bench pipeline — \(path) (\(type)), \(threads) threads, path \(String(cString: ck_isa_name(ck_isa_active()))), "
            + "median of \(repeats); engine peak RSS \(String(format: "%.0f", rssMB)) MB\(peerInfo.isEmpty ? "" : "; " + peerInfo)\n\n"
        md += "| stage (one step) | unclip \(type) s | diffusers f32 s | speed-up |\n|---|---:|---:|---:|\n"
        var rows: [JSON] = []
        for (k, v) in secs {
            let d = peer[k]
            md += "| \(k) | \(String(format: "%.3f", v)) | \(d.map { String(format: "%.3f", $0) } ?? "–") | \(d.map { String(format: "%.2f×", $0 / v) } ?? "–") |\n"
            rows.append(.object([("stage", .string(k)), ("seconds", .number(double: v, int: nil))]
                                + (d.map { [("diffusers_seconds", JSON.number(double: $0, int: nil))] } ?? [])))
        }
        print(md)
        let out = JSON.object([("model", .string(path)), ("weight_type", .string(type)), ("threads", .number(double: Double(threads), int: Int64(threads))),
                               ("peak_rss_mb", .number(double: rssMB, int: nil)), ("stages", .array(rows))])
        if let json { try Data(out.text.utf8).write(to: URL(fileURLWithPath: json), options: .atomic) }
        if let markdown { try Data(md.utf8).write(to: URL(fileURLWithPath: markdown), options: .atomic) }
    }
}
