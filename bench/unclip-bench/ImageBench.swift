import CKernels
import CPeaks
import Foundation
import UnCLIP

/// `unclip-bench image -m model.gguf`: one whole text → image through the real pipeline at the file's default
/// steps, per stage: wall time (model mapping included), s/step, achieved GOPS (2 per counted multiply-accumulate)
/// and its fraction of the measured VNNI/FMA peak, peak RSS, page faults and bytes read from disk. Every engine run
/// is a child process (a fresh peak RSS), optionally inside a cgroup-v1 memory limit; `--diffusers` runs
/// diffusers/PyTorch fp32 and bf16 on the hub folder in the same invocation, one after the other.
enum ImageBench {
    static let prompt = "a red circle on top of a blue square"

    // MARK: child: one engine run, measured from inside

    static func status(_ key: String) -> Double {
        guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = s.split(separator: "\n").first(where: { $0.hasPrefix(key + ":") }),
              let kb = Double(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") else { return 0 }
        return kb / 1024
    }

    /// Bytes this process made the disk read (/proc/self/io read_bytes: page-cache hits do not count).
    static func readBytes() -> Double {
        guard let s = try? String(contentsOfFile: "/proc/self/io", encoding: .utf8),
              let line = s.split(separator: "\n").first(where: { $0.hasPrefix("read_bytes:") }) else { return 0 }
        return Double(line.split(separator: " ").last ?? "0") ?? 0
    }

    /// Resets VmHWM to the current RSS (clear_refs 5), so each stage reports its own peak.
    static func resetPeak() { try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8) }

    struct Mark {
        let t, macs, readBytes: Double
        let minflt, majflt: Int
        static func now() -> Mark {
            var ru = rusage()
            getrusage(RUSAGE_SELF.rawValue, &ru)
            return Mark(t: cpk_now(), macs: Double(Profiler.macs), readBytes: ImageBench.readBytes(), minflt: ru.ru_minflt, majflt: ru.ru_majflt)
        }
    }

    static func num(_ x: Double) -> JSON { .number(double: x, int: nil) }

    /// Runs the pipeline once and writes one JSON record.
    static func child(model path: String, plan: MemoryPlan, seed: UInt64, json: String) throws {
        MemoryPlan.set(plan)
        if let a = try Runtime.convAlgorithmFromEnvironment() { Runtime.convAlgorithm = a }   // UNCLIP_CONV, as the CLI
        let start = Mark.now()
        let m = try ModelFile(path: path)
        let pipe = try UnCLIPPipeline(model: m)
        let options = try GenerationOptions(defaultsOf: m)
        // The progress handler runs as each step starts, so a stage ends where the next one's first step starts
        // (its last step done, the next model built) and the last one where `generate` returns; the first one
        // starts with `generate` (text encoding, the prior's build). The steady step: first to last step start.
        var stages: [(name: String, begin: Mark, end: Mark?, firstStep: Double, lastStep: Double, steps: Int, peak: Double)] = []
        var current = ""
        resetPeak()
        let begin = Mark.now()
        let result = try pipe.generate(prompt: prompt, options: options, noise: SeededNoise(seed: seed)) { stage, step, _ in
            let now = Mark.now()
            if stage != current {
                if !stages.isEmpty {
                    stages[stages.count - 1].end = now
                    stages[stages.count - 1].peak = status("VmHWM")
                    resetPeak()
                }
                stages.append((stage, stages.last?.end ?? begin, nil, now.t, now.t, 0, 0))
                current = stage
            }
            stages[stages.count - 1].lastStep = now.t
            stages[stages.count - 1].steps = step
            return true
        }
        let end = Mark.now()
        if !stages.isEmpty {
            stages[stages.count - 1].end = end
            stages[stages.count - 1].peak = status("VmHWM")
        }
        var rows: [JSON] = []
        var peak = 0.0
        for s in stages {
            guard let last = s.end else { continue }
            peak = max(peak, s.peak)
            let steady = s.steps > 1 ? (s.lastStep - s.firstStep) / Double(s.steps - 1) : last.t - s.begin.t
            rows.append(.object([("stage", .string(s.name)), ("seconds", num(last.t - s.begin.t)), ("steps", num(Double(s.steps))),
                                 ("seconds_per_step", num(steady)), ("gmac", num((last.macs - s.begin.macs) / 1e9)),
                                 ("peak_rss_mb", num(s.peak)), ("minor_faults", num(Double(last.minflt - s.begin.minflt))),
                                 ("major_faults", num(Double(last.majflt - s.begin.majflt))),
                                 ("read_mb", num((last.readBytes - s.begin.readBytes) / 1e6))]))
        }
        let out = JSON.object([("plan", .string(plan.rawValue)), ("conv", .string(Runtime.convAlgorithm.rawValue)), ("seconds", num(end.t - start.t)), ("peak_rss_mb", num(peak)),
                               ("read_mb", num((end.readBytes - start.readBytes) / 1e6)), ("gmac", num((end.macs - start.macs) / 1e9)),
                               ("stages", .array(rows))])
        try result.images[0].write(json + ".png")     // the image, for the parent's comparisons
        try AtomicFile.write(Data(out.text.utf8), to: json)
    }

    // MARK: parent: the runs, the peers, the table

    struct Run {
        var label: String
        let limitMB: Int?
        let record: JSON?
        let failure: String?
        let cgroupMaxMB: Double?
        var image: PNGImage? = nil
        /// The path's instruction peak measured just before the run, at its thread count (the host's speed drifts).
        var peak: Double? = nil
        var threads: Int? = nil
    }

    /// The peak of the instruction the engine's path runs for this weight type: AVX-512 hosts vpdpbusd / zmm FMA,
    /// AVX2 hosts vpmaddwd / ymm FMA (the AVX-512 probes would die on their first instruction there).
    static func measuredPeak(q8: Bool, threads: Int) -> (gops: Double, name: String) {
        let zmm = ck_isa_supported(CK_ISA_AVX512) != 0, t = Int32(threads)
        let g = q8 ? (zmm ? cpk_vnni_zmm(t, 0.5) : cpk_madd_ymm(t, 0.5)) : (zmm ? cpk_fma_f32_zmm(t, 0.5) : cpk_fma_f32_ymm(t, 0.5))
        return (g, q8 ? (zmm ? "OPS (VNNI vpdpbusd zmm)" : "OPS (vpmaddwd ymm)") : (zmm ? "FLOP/s (FMA zmm)" : "FLOP/s (FMA ymm)"))
    }

    static let cgroupRoot = "/sys/fs/cgroup/memory"

    /// One engine run in a child process, inside a fresh memory cgroup when `limitMB` is set (page cache dropped
    /// first, so the weights' pages are charged to that cgroup as they are read).
    static func engineRun(model: String, type: WeightType, plan: MemoryPlan, limitMB: Int?, threads: Int, seed: UInt64) throws -> Run {
        let label = "unclip \(type.rawValue) (\(plan.rawValue))" + (limitMB.map { ", cgroup \($0) MiB" } ?? "")
        let tmp = NSTemporaryDirectory() + "unclip-bench-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).json"
        defer { try? FileManager.default.removeItem(atPath: tmp); try? FileManager.default.removeItem(atPath: tmp + ".png") }
        let me = URL(fileURLWithPath: CommandLine.arguments[0]).path
        var args = [me, "image", "-m", model, "--child-json", tmp, "--plan", plan.rawValue, "--seed", String(seed), "--threads", String(threads)]
        var cg: String? = nil
        if let limitMB {
            let dir = cgroupRoot + "/unclip-bench-\(getpid())-\(limitMB)"
            do {
                try? FileManager.default.removeItem(atPath: dir)
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
                try String(limitMB << 20).write(toFile: dir + "/memory.limit_in_bytes", atomically: false, encoding: .utf8)
            } catch {
                throw UnCLIPError.invalidArgument(name: "--memory-limit", detail: "cannot make a memory cgroup under \(cgroupRoot) (cgroup v1, root needed): \(error)")
            }
            cg = dir
            sync()
            try? "3".write(toFile: "/proc/sys/vm/drop_caches", atomically: false, encoding: .utf8)
            args = ["/bin/sh", "-c", "echo $$ > \"$0/cgroup.procs\" && exec \"$@\"", dir] + args
        }
        defer { if let cg { rmdir(cg) } }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: args[0])
        p.arguments = Array(args.dropFirst())
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        let cgMax = cg.flatMap { try? String(contentsOfFile: $0 + "/memory.max_usage_in_bytes", encoding: .utf8) }
            .flatMap { Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) }.map { $0 / 1048576 }
        if p.terminationReason == .uncaughtSignal || p.terminationStatus != 0 {
            let why = p.terminationReason == .uncaughtSignal ? "killed by signal \(p.terminationStatus)\(p.terminationStatus == 9 && limitMB != nil ? " (the cgroup's OOM killer)" : "")"
                                                              : "exit status \(p.terminationStatus)"
            return Run(label: label, limitMB: limitMB, record: nil, failure: why, cgroupMaxMB: cgMax)
        }
        let data = try Data(contentsOf: URL(fileURLWithPath: tmp))
        return Run(label: label, limitMB: limitMB, record: try JSON.parse(Array(data)), failure: nil, cgroupMaxMB: cgMax,
                   image: try? PNGImage.read(tmp + ".png"), threads: threads)
    }

    /// diffusers' UnCLIPPipeline on the hub folder (weights-tools/reference/time_diffusers_image.py).
    static func diffusersRun(dir: String, dtype: String, threads: Int, seed: UInt64) throws -> Run {
        let (status, data) = try PipelineBench.referenceScript("time_diffusers_image.py", [dir, "--dtype", dtype, "--threads", String(threads),
                                                                                        "--seed", String(seed), "--prompt", prompt])
        let label = "diffusers \(dtype)"
        guard status == 0, let j = try? JSON.parse(Array(data)) else {
            return Run(label: label, limitMB: nil, record: nil, failure: "time_diffusers_image.py failed (exit \(status))", cgroupMaxMB: nil)
        }
        return Run(label: label, limitMB: nil, record: j, failure: nil, cgroupMaxMB: nil)
    }

    static func run(model: String, f32Model: String?, diffusers: String?, plans: [MemoryPlan], limits: [Int], threadCounts: [Int],
                    seed: UInt64, imagesDir: String?, json: String?, markdown: String?) throws {
        let threads = threadCounts.max() ?? Runtime.threads
        let m = try ModelFile(path: model)
        let q8 = m.weightType == .q8
        let (peak, peakName) = measuredPeak(q8: q8, threads: threads)
        var runs: [Run] = []
        func log(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }
        /// An unconstrained engine run with the path's peak measured just before it, at its thread count.
        func measured(_ path: String, type: WeightType, plan: MemoryPlan, threads t: Int) throws -> Run {
            let p = measuredPeak(q8: type == .q8, threads: t).gops
            var r = try engineRun(model: path, type: type, plan: plan, limitMB: nil, threads: t, seed: seed)
            r.peak = p
            if t != threads { r.label += ", \(t) thread" }
            return r
        }
        for plan in plans {
            for t in threadCounts.sorted(by: >) {
                log("unclip-bench image: engine, plan \(plan.rawValue), \(t) thread\(t == 1 ? "" : "s") …")
                runs.append(try measured(model, type: m.weightType, plan: plan, threads: t))
            }
        }
        for mb in limits {
            log("unclip-bench image: engine in a \(mb) MiB memory cgroup …")
            runs.append(try engineRun(model: model, type: m.weightType, plan: plans.first ?? .small, limitMB: mb, threads: threads, seed: seed))
        }
        var f32Run: Run? = nil
        if let f32Model {
            log("unclip-bench image: the f32 file \(f32Model), \(threads) threads …")
            let r = try measured(f32Model, type: try ModelFile(path: f32Model).weightType, plan: plans.first ?? .small, threads: threads)
            runs.append(r)
            f32Run = r
        }
        if let dir = diffusers {
            for dtype in ["float32", "bfloat16"] {
                log("unclip-bench image: diffusers \(dtype) …")
                runs.append(try diffusersRun(dir: dir, dtype: dtype, threads: threads, seed: seed))
            }
        }
        // The table: whole image, then per stage of each unconstrained engine run.
        let base = runs.first?.record?["seconds"]?.double
        let peerF32 = runs.first(where: { $0.label == "diffusers float32" })?.record?["seconds"]?.double
        let peerBF16 = runs.first(where: { $0.label == "diffusers bfloat16" })?.record?["seconds"]?.double
        var md = "unclip-bench image — \(model) (\(m.weightType.rawValue)), \"\(prompt)\", seed \(seed), \(threads) threads, path "
            + "\(String(cString: ck_isa_name(ck_isa_active()))); measured peak \(String(format: "%.0f", peak)) G\(peakName)\n\n"
        md += "| run | whole image s | peak RSS MiB | read from disk MB | vs diffusers f32 | vs diffusers bf16 |\n|---|---:|---:|---:|---:|---:|\n"
        for r in runs {
            guard let j = r.record, let s = j["seconds"]?.double else {
                md += "| \(r.label) | \(r.failure ?? "failed") | \(r.cgroupMaxMB.map { String(format: "cgroup max %.0f", $0) } ?? "–") | – | – | – |\n"
                continue
            }
            let rss = j["peak_rss_mb"]?.double ?? 0
            let read = j["read_mb"]?.double.map { String(format: "%.0f", $0) } ?? "–"
            let r32 = peerF32.map { String(format: "%.2f×", $0 / s) } ?? "–", r16 = peerBF16.map { String(format: "%.2f×", $0 / s) } ?? "–"
            md += "| \(r.label) | \(String(format: "%.1f", s)) | \(String(format: "%.0f", rss))\(r.cgroupMaxMB.map { String(format: " (cgroup max %.0f)", $0) } ?? "") | \(read) | \(r32) | \(r16) |\n"
        }
        for r in runs where r.peak != nil {
            guard let stages = r.record?["stages"]?.array, let p = r.peak else { continue }
            md += "\n\(r.label), per stage (a stage runs from its first step's start to the next stage's, so it includes building the next "
                + "stage's model; the first also text encoding and the prior's build; s/step is the steady step; "
                + "peak measured just before the run at its \(r.threads ?? threads) thread\((r.threads ?? threads) == 1 ? "" : "s"): \(String(format: "%.0f", p)) G):\n\n"
            md += "| stage | s | steps | s/step | GOPS | of peak | peak RSS MiB | minor faults | major faults | read MB |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
            for st in stages {
                let s = st["seconds"]?.double ?? 0, gops = 2 * (st["gmac"]?.double ?? 0) / max(s, 1e-9)
                md += "| \(st["stage"]?.string ?? "?") | \(String(format: "%.1f", s)) | \(Int(st["steps"]?.double ?? 0)) | "
                    + "\(String(format: "%.2f", st["seconds_per_step"]?.double ?? 0)) | \(String(format: "%.0f", gops)) | \(String(format: "%.0f%%", 100 * gops / p)) | "
                    + "\(String(format: "%.0f", st["peak_rss_mb"]?.double ?? 0)) | \(Int(st["minor_faults"]?.double ?? 0)) | "
                    + "\(Int(st["major_faults"]?.double ?? 0)) | \(String(format: "%.0f", st["read_mb"]?.double ?? 0)) |\n"
            }
        }
        var comparisons: [(String, JSON)] = []
        if threadCounts.count > 1, let base, let first = runs.first {
            for r in runs where r.label.hasSuffix(" thread") {
                guard let s = r.record?["seconds"]?.double else { continue }
                md += "\nThread scaling: 1 → \(threads) threads \(String(format: "%.2f×", s / base)) (whole image)"
                var perStage: [(String, JSON)] = []
                if let one = r.record?["stages"]?.array, let many = first.record?["stages"]?.array {
                    for (a, b) in zip(one, many) {
                        guard let name = a["stage"]?.string, let sa = a["seconds_per_step"]?.double, let sb = b["seconds_per_step"]?.double, sb > 0 else { continue }
                        md += "; \(name) \(String(format: "%.2f×", sa / sb)) per step"
                        perStage.append((name, num(sa / sb)))
                    }
                }
                if let p1 = r.peak, let pn = first.peak { md += "; the instruction peak \(String(format: "%.2f×", pn / p1))" }
                if let a = r.image, let b = first.image {
                    let same = a.pixels == b.pixels
                    md += "; the \(threads)-thread image \(same ? "equals" : "differs from") the 1-thread one"
                    comparisons.append(("threads_same_image", .bool(same)))
                }
                md += ".\n"
                comparisons.append(("thread_scaling", num(s / base)))
                comparisons.append(("thread_scaling_per_step", .object(perStage)))
            }
        }
        if let q = runs.first(where: { $0.peak != nil && $0.threads == threads })?.image, let f = f32Run?.image,
           q.width == f.width, q.height == f.height {
            let db = UnCLIPPipeline.psnr(q, f)
            md += "\n\(m.weightType.rawValue) against f32, the same noise (seed \(seed)): PSNR \(String(format: "%.2f", db)) dB over the final \(q.width)×\(q.height) image.\n"
            comparisons.append(("q8_vs_f32_psnr_db", db.isFinite ? num(db) : .string("inf")))
        }
        print(md)
        let out = JSON.object([("model", .string(model)), ("weight_type", .string(m.weightType.rawValue)), ("threads", num(Double(threads))),
                               ("seed", num(Double(seed))), ("peak_gops", num(peak)), ("peak_instruction", .string(peakName)),
                               ("comparisons", .object(comparisons)),
                               ("runs", .array(runs.map { r in
                                   .object([("label", .string(r.label)), ("limit_mb", r.limitMB.map { num(Double($0)) } ?? .null),
                                            ("failure", r.failure.map { .string($0) } ?? .null),
                                            ("cgroup_max_mb", r.cgroupMaxMB.map { num($0) } ?? .null),
                                            ("peak_gops_before", r.peak.map { num($0) } ?? .null), ("result", r.record ?? .null)])
                               }))])
        if let dir = imagesDir {
            for (i, r) in runs.enumerated() {
                guard let image = r.image else { continue }
                let name = r.label.map { $0.isLetter || $0.isNumber ? $0 : "-" }.split(separator: "-").joined(separator: "-")
                try image.write((dir as NSString).appendingPathComponent(String(format: "%02d-", i) + name + ".png"))
            }
        }
        if let json { try AtomicFile.write(Data(out.text.utf8), to: json) }
        if let markdown { try AtomicFile.write(Data(md.utf8), to: markdown) }
    }
}
