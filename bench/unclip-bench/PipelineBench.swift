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

    /// Runs weights-tools/reference/<script> in weights-tools/.venv; its exit status and stdout (stderr dropped).
    static func referenceScript(_ script: String, _ args: [String]) throws -> (status: Int32, stdout: Data) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "weights-tools/.venv/bin/python")
        p.arguments = ["weights-tools/reference/" + script] + args
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = FileHandle.nullDevice
        do { try p.run() } catch {
            throw UnCLIPError.invalidArgument(name: "--diffusers", detail: "cannot run weights-tools/.venv/bin/python (run weights-tools/setup_venv.sh --reference): \(error)")
        }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, data)
    }

    static func randn(_ n: Int, seed: UInt64) throws -> [Float] { try SeededNoise(seed: seed).draw("x", shape: [n]) }

    static func run(model path: String, diffusers: String?, repeats: Int, threads: Int, json: String?, markdown: String?) throws {
        let m = try ModelFile(path: path)
        let stages = StageModel(m)
        var secs: [(String, Double)] = []
        // The stages' own API: guided text conditioning for one image (the "" and prompt rows), then one model call
        // of each denoiser at its real shapes.
        var text: TextConditioning? = nil
        let encoder = TextEncoderStage(stages, tokenizer: try CLIPTokenizer(file: m.gguf))
        secs.append(("text_encoder", try median(repeats) { text = try encoder(prompts: ["a red circle on top of a blue square"], guided: true) }))
        let cond = text!
        let imageEmbeds: Tensor
        do {
            let prior = try PriorStage(stages).load()
            let e = prior.prior.config.embeddingDim
            let x = try Tensor(shape: [2, e], values: try randn(2 * e, seed: 1))
            secs.append(("prior_step", try median(repeats) { _ = try prior.denoise(x, timestep: 500, text: cond) }))
            imageEmbeds = try Tensor(shape: [1, e], values: try randn(e, seed: 3))
        }
        do {
            let decoder = try DecoderStage(stages).load(imageEmbeds: imageEmbeds, text: cond)
            let (s, c) = (decoder.sampleSize, decoder.channels)
            let sample = try Tensor(shape: [2, s, s, c], values: try randn(2 * s * s * c, seed: 2))
            secs.append(("decoder_step", try median(repeats) { _ = try decoder.denoise(sample, timestep: 500) }))
        }
        do {
            let c = try SuperResStage(stages).firstConfig
            let unet = try stages.build("super_res_first") { try UNet(scope: $0, config: c) }
            let s = c.sampleSize
            let sample = try Tensor(shape: [1, s, s, c.inChannels], values: try randn(s * s * c.inChannels, seed: 5))
            secs.append(("super_res_step", try median(max(1, repeats - 1)) { _ = try unet(sample, timestep: 500) }))
        }
        let rssMB = peakRSSMB()
        // Peer: diffusers/PyTorch on the hub directory the file was converted from.
        var peer: [String: Double] = [:]
        var peerInfo = ""
        if let dir = diffusers {
            let (status, data) = try referenceScript("time_diffusers.py", [dir, "--threads", String(threads), "--repeats", String(repeats)])
            guard status == 0, let j = try? JSON.parse(Array(data)), let s = j["seconds"]?.object else {
                throw UnCLIPError.invalidArgument(name: "--diffusers", detail: "time_diffusers.py failed on \(dir)")
            }
            for (k, v) in s { peer[k] = v.double }
            peerInfo = "diffusers/PyTorch \(j["torch"]?.string ?? "?") peak RSS \(String(format: "%.0f", j["peak_rss_mb"]?.double ?? 0)) MiB"
        }
        let type = m.weightType.rawValue
        var md = "unclip-bench pipeline — \(path) (\(type)), \(threads) threads, path \(String(cString: ck_isa_name(ck_isa_active()))), "
            + "median of \(repeats); engine peak RSS \(String(format: "%.0f", rssMB)) MiB\(peerInfo.isEmpty ? "" : "; " + peerInfo)\n\n"
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
        if let json { try AtomicFile.write(Data(out.text.utf8), to: json) }
        if let markdown { try AtomicFile.write(Data(md.utf8), to: markdown) }
    }
}
