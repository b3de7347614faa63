// unclip-bench: kernel microbenchmarks on the real model's shapes.
//
//   unclip-bench kernels [--quick] [--threads N] [--repeats N] [--json FILE] [--markdown FILE]
//   unclip-bench pipeline -m model.gguf [--diffusers <hub-dir>] [--threads N] [--repeats N] [--json FILE] [--markdown FILE]
//   unclip-bench image -m model.gguf [--diffusers <hub-dir>] [--memory-limit MB …] [--plan small|fast …] [--scaling]
//                [--threads N] [--json FILE] [--markdown FILE]
//
// Every case is validated against its scalar reference before it is timed. The same run measures the
// machine's own ceilings (FMA, VNNI, AMX, memory) and OpenBLAS sgemm on the same GEMM/conv shapes, with the
// core OpenBLAS picked by default and, in a child process, with OPENBLAS_CORETYPE=SKYLAKEX.
import ArgumentParser
import CKernels
import CLISupport
import CPeaks
import Foundation
import UnCLIP

struct Options {
    var quick = false
    var threads = Int(ck_get_threads())
    var repeats: Int?
    var json: String?
    var markdown: String?
    var openblasOnly = false
    var command = "kernels"
    var model: String?
    var diffusers: String?
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unclip-bench",
        abstract: "Kernel and pipeline benchmarks on the real model's shapes, with same-run baselines (OpenBLAS, the measured peaks, diffusers).",
        version: "unclip-bench \(UnCLIPVersion.string)",
        subcommands: [Kernels.self, Pipeline.self, Image.self])
    func run() throws { throw UsageError("missing command (kernels, pipeline or image)") }
}

struct BenchOutput: ParsableArguments {
    @Option(help: ArgumentHelp("Kernel threads (default: UNCLIP_THREADS or the online cores).", valueName: "n")) var threads: Int?
    @Option(help: ArgumentHelp("Timed runs per case after one warm-up (default 5, quick 3; pipeline 3).", valueName: "n")) var repeats: Int?
    @Option(help: ArgumentHelp("Write the results as JSON.", valueName: "file")) var json: String?
    @Option(help: ArgumentHelp("Write the table as markdown.", valueName: "file")) var markdown: String?

    func validate() throws {
        if let threads, !(1...1024).contains(threads) { throw ValidationError("--threads must be an integer in 1...1024") }
        if let repeats, !(1...1000).contains(repeats) { throw ValidationError("--repeats must be an integer in 1...1000") }
        // outputs checked before minutes of benchmarking
        for p in [json, markdown].compactMap({ $0 }) {
            do { try AtomicFile.checkWritable(p) } catch { throw ValidationError("\(error)") }
        }
    }

    func options(_ command: String) -> Options {
        var o = Options()
        o.command = command
        o.threads = threads ?? o.threads
        (o.repeats, o.json, o.markdown) = (repeats, json, markdown)
        return o
    }
}

struct Kernels: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Every kernel case, validated against its scalar reference, then timed against the peaks and OpenBLAS.")
    @Flag(help: "Smaller spatial sizes and fewer repeats (about a minute).") var quick = false
    @Flag(help: .hidden) var openblasOnly = false
    @OptionGroup var output: BenchOutput
    var options: Options {
        var o = output.options("kernels")
        (o.quick, o.openblasOnly) = (quick, openblasOnly)
        return o
    }
}

struct Pipeline: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "One step of each stage at the model's shapes and the peak RSS; with --diffusers, diffusers on the same configs.")
    @Option(name: [.short, .long], help: ArgumentHelp("The model file.", valueName: "model.gguf")) var model: String
    @Option(help: ArgumentHelp("The hub folder the file was converted from: time diffusers/PyTorch on it in the same run.", valueName: "hub-dir")) var diffusers: String?
    @OptionGroup var output: BenchOutput
    var options: Options {
        var o = output.options("pipeline")
        (o.model, o.diffusers) = (model, diffusers)
        return o
    }
}

struct Image: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "One whole text → image (all stages, the file's default steps) per engine run, each in a child process; per stage s/step, GOPS, peak RSS, faults, disk reads; cgroup memory limits; diffusers fp32 and bf16 in the same run.")
    @Option(name: [.short, .long], help: ArgumentHelp("The model file.", valueName: "model.gguf")) var model: String
    @Option(help: ArgumentHelp("The hub folder the file was converted from: run diffusers' UnCLIPPipeline fp32 and bf16 on it too.", valueName: "hub-dir")) var diffusers: String?
    @Option(name: .customLong("memory-limit"), help: ArgumentHelp("Also run inside a cgroup-v1 memory limit of this many MiB (repeat for several; root; drops the page cache first).", valueName: "MiB")) var limits: [Int] = []
    @Option(name: .customLong("plan"), help: ArgumentHelp("Memory plan(s) of the unconstrained runs: small, fast (repeat for both; default small).", valueName: "plan")) var plans: [String] = []
    @Flag(help: "Also run on one thread (thread scaling 1 → n).") var scaling = false
    @Option(name: .customLong("f32-model"), help: ArgumentHelp("The same model stored in f32 (unclip-weights convert --type f32): also run it and report the q8-vs-f32 PSNR of the two images (same noise).", valueName: "f32.gguf")) var f32Model: String?
    @Option(name: .customLong("images"), help: ArgumentHelp("Write each engine run's image into this folder (it must exist).", valueName: "dir")) var imagesDir: String?
    @Option(help: ArgumentHelp("The noise seed.", valueName: "n")) var seed: UInt64 = 1
    @Option(help: .hidden) var childJson: String?
    @OptionGroup var output: BenchOutput

    func validate() throws {
        for l in limits where !(64...1 << 20).contains(l) { throw ValidationError("--memory-limit must be 64...1048576 MiB, got \(l)") }
        for p in plans where MemoryPlan(rawValue: p) == nil { throw ValidationError("--plan must be small or fast, got '\(p)'") }
        var isDir: ObjCBool = false
        if let d = imagesDir, !(FileManager.default.fileExists(atPath: d, isDirectory: &isDir) && isDir.boolValue) {
            throw ValidationError("--images must be an existing folder, got '\(d)'")
        }
    }

    var options: Options {
        var o = output.options("image")
        (o.model, o.diffusers) = (model, diffusers)
        return o
    }
}

/// A runtime failure (a case that fails validation, a file that cannot be written): exit 1.
func fail(_ message: String) -> Never {
    Terminal.err("unclip-bench: \(message)\n")
    exit(1)
}

/// The cases: real Karlo shapes (docs/karlo-inference.md), smaller spatial sizes in quick mode.
func makeCases(_ o: Options) -> [BenchCase] {
    let t = o.threads
    let sr = o.quick ? 64 : 256
    let gn = o.quick ? 128 : 256
    var cases: [BenchCase] = []
    for q in [false, true] {
        cases.append(convCase(label: "super-res conv3x3 320→320 @\(sr)²", n: 1, h: sr, w: sr, cin: 320, cout: 320, quantized: q, threads: t))
        cases.append(convCase(label: "super-res conv3x3 640→320 @\(sr)²", n: 1, h: sr, w: sr, cin: 640, cout: 320, quantized: q, threads: t))
        cases.append(convCase(label: "decoder conv3x3 2560→1280 @8² (batch 2)", n: 2, h: 8, w: 8, cin: 2560, cout: 1280, quantized: q, threads: t))
        cases.append(gemmCase(label: "prior GEMM 162×2048 · 2048×8192", m: 162, k: 2048, n: 8192, quantized: q, threads: t))
    }
    if ck_isa_supported(CK_ISA_AMX) != 0 {
        // The same int8 shape on the VNNI path, for the AMX-vs-VNNI ratio.
        ck_isa_set(CK_ISA_AVX512)
        cases.append(convCase(label: "super-res conv3x3 320→320 @\(sr)²", n: 1, h: sr, w: sr, cin: 320, cout: 320, quantized: true, threads: t))
        ck_isa_set(ck_isa_host_best())
    }
    cases.append(attentionCase(label: "decoder attention 1024 tokens + 81 context, 10 heads (batch 2)", batch: 2, heads: 10,
                               tokens: 1024, context: 81, threads: t))
    for algorithm in [nil, ConvAlgorithm.direct, .winograd] {
        cases.append(fusedResnetConvCase(label: "super-res up resnet conv1 cat(640, 320)→320 @\(sr)²", size: sr, hChannels: 640,
                                         skipChannels: 320, cout: 320, algorithm: algorithm))
    }
    // the decoder's small levels (CFG batch 2), where `auto` chooses between the two algorithms by these figures
    for algorithm in [ConvAlgorithm.direct, .winograd] {
        cases.append(fusedResnetConvCase(label: "decoder up resnet conv1 cat(960, 960)→960 @16² (batch 2)", size: 16, batch: 2,
                                         hChannels: 960, skipChannels: 960, cout: 960, algorithm: algorithm))
        cases.append(fusedResnetConvCase(label: "decoder up resnet conv1 cat(1280, 1280)→1280 @8² (batch 2)", size: 8, batch: 2,
                                         hChannels: 1280, skipChannels: 1280, cout: 1280, algorithm: algorithm))
    }
    cases.append(groupNormCase(label: "GroupNorm 320×\(gn)²", channels: 320, size: gn, silu: false))
    cases.append(groupNormCase(label: "GroupNorm+SiLU 320×\(gn)²", channels: 320, size: gn, silu: true))
    cases.append(resizeCase(label: "resize 64→256 bicubic aa (3 ch)", from: 64, to: 256, channels: 3, batch: 1))
    return cases
}

let parsed = CommandMain.parse(Bench.self, tool: "unclip-bench")
let opts = (parsed as? Kernels)?.options ?? (parsed as? Pipeline)?.options ?? (parsed as! Image).options
ck_set_threads(Int32(opts.threads))
ck_openblas_set_threads(Int32(opts.threads))

if let image = parsed as? Image {
    do {
        if let child = image.childJson {
            try ImageBench.child(model: image.model, plan: MemoryPlan(rawValue: image.plans.first ?? "small")!, seed: image.seed, json: child)
        } else {
            let plans = image.plans.isEmpty ? [MemoryPlan.small] : image.plans.map { MemoryPlan(rawValue: $0)! }
            try ImageBench.run(model: image.model, f32Model: image.f32Model, diffusers: image.diffusers, plans: plans, limits: image.limits,
                               threadCounts: image.scaling ? [1, opts.threads] : [opts.threads], seed: image.seed, imagesDir: image.imagesDir,
                               json: opts.json, markdown: opts.markdown)
        }
    } catch {
        Terminal.err("unclip-bench: \(error)\n")
        exit(1)
    }
    exit(0)
}
let repeats = opts.repeats ?? (opts.quick ? 3 : 5)

if opts.command == "pipeline" {
    let model = opts.model!
    do {
        try PipelineBench.run(model: model, diffusers: opts.diffusers, repeats: opts.repeats ?? 3, threads: opts.threads,
                              json: opts.json, markdown: opts.markdown)
    } catch {
        Terminal.err("unclip-bench: \(error)\n")
        exit(1)
    }
    exit(0)
}

if opts.openblasOnly {
    // Child mode: OpenBLAS timings only, as JSON on stdout (the parent set OPENBLAS_CORETYPE).
    var out: [String: Any] = ["corename": String(cString: ck_openblas_corename())]
    var times: [String: Double] = [:]
    for c in makeCases(opts) { if let ob = c.openblas { times[c.label + " | " + c.op] = Timing.measure(repeats: repeats, ob).median } }
    out["median_s"] = times
    let data = try! JSONSerialization.data(withJSONObject: out)
    Terminal.write(String(decoding: data, as: UTF8.self), to: 1)
    exit(0)
}

let hasAVX512 = ck_isa_supported(CK_ISA_AVX512) != 0, hasAMX = ck_isa_supported(CK_ISA_AMX) != 0
Terminal.err("measuring peaks (\(opts.threads) threads)…\n")
let peaks = Peaks.measure(threads: opts.threads, quick: opts.quick, hasAVX512: hasAVX512, hasAMX: hasAMX)

/// OpenBLAS with OPENBLAS_CORETYPE=SKYLAKEX, from a child process of this binary (the core is chosen when
/// the library loads, so it cannot change inside one process).
func openblasSkylakeX() -> (core: String, times: [String: Double])? {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: CommandLine.arguments[0].contains("/") ? CommandLine.arguments[0]
                          : "/proc/self/exe")
    p.arguments = ["kernels", "--openblas-only", "--threads", String(opts.threads), "--repeats", String(repeats)] + (opts.quick ? ["--quick"] : [])
    var env = ProcessInfo.processInfo.environment
    env["OPENBLAS_CORETYPE"] = "SKYLAKEX"
    env.removeValue(forKey: "OPENBLAS_L2_SIZE")
    p.environment = env
    let pipe = Pipe()
    p.standardOutput = pipe
    do { try p.run() } catch { return nil }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0, let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
          let core = obj["corename"] as? String, let t = obj["median_s"] as? [String: Double] else { return nil }
    return (core, t)
}

struct Row {
    let c: BenchCase
    let timing: Timing
    let check: String
    let openblas: Double?
}

var rows: [Row] = []
var failed = false
for c in makeCases(opts) {
    Terminal.err("\(c.label) [\(c.op), \(c.path)]…\n")
    ck_isa_set(c.isa)
    defer { ck_isa_set(ck_isa_host_best()) }
    c.run()
    let check: String
    do { check = try c.validate() } catch {
        Terminal.err("VALIDATION FAILED: \(error)\n")
        failed = true
        continue
    }
    let t = Timing.measure(repeats: repeats, c.run)
    let ob = c.openblas.map { Timing.measure(repeats: repeats, $0).median }
    rows.append(Row(c: c, timing: t, check: check, openblas: ob))
}
// (only where the host has AVX-512: elsewhere that core dies on its first instruction)
let skx: (core: String, times: [String: Double])?
if hasAVX512 {
    Terminal.err("OpenBLAS with OPENBLAS_CORETYPE=SKYLAKEX (child process)…\n")
    skx = openblasSkylakeX()
} else {
    skx = nil
}

// MARK: Report

func commit() -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["git", "rev-parse", "--short", "HEAD"]
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = FileHandle.nullDevice
    guard (try? p.run()) != nil else { return "unknown" }
    let s = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    p.waitUntilExit()
    return s.isEmpty ? "unknown" : s
}

func cpuName() -> String {
    guard let s = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
          let line = s.split(separator: "\n").first(where: { $0.hasPrefix("model name") }) else { return "unknown" }
    return line.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown"
}

let defaultCore = String(cString: ck_openblas_corename())
var md = "| case | op | path | median ms | min–max ms | rate | % of peak | vs OpenBLAS (\(defaultCore)) | vs OpenBLAS (\(skx?.core ?? "SKYLAKEX n/a")) | check |\n"
md += "|---|---|---|---:|---:|---:|---:|---:|---:|---|\n"
var jsonCases: [[String: Any]] = []
for r in rows {
    let med = r.timing.median
    let isBytes = r.c.ceiling == .bandwidth
    let rate = r.c.work / med * 1e-9
    let peak = peaks.values[r.c.ceiling] ?? 0
    let frac = peak > 0 ? rate / peak : 0
    let unit = isBytes ? "GB/s" : (r.c.op.contains("int8") ? "GOPS" : "GFLOP/s")
    let vsDefault = r.openblas.map { $0 / med }
    let vsSkx = skx?.times[r.c.label + " | " + r.c.op].map { $0 / med }
    func ratio(_ v: Double?) -> String { v.map { String(format: "%.2f×", $0) } ?? "–" }
    md += "| \(r.c.label) | \(r.c.op) | \(r.c.path) | \(String(format: "%.2f", med * 1e3)) | "
        + "\(String(format: "%.2f–%.2f", r.timing.min * 1e3, r.timing.max * 1e3)) | \(String(format: "%.1f", rate)) \(unit) | "
        + "\(String(format: "%.0f%%", frac * 100)) of \(r.c.ceiling.rawValue) | \(ratio(vsDefault)) | \(ratio(vsSkx)) | \(r.check) |\n"
    var j: [String: Any] = ["label": r.c.label, "op": r.c.op, "path": r.c.path, "median_s": med, "min_s": r.timing.min,
                            "max_s": r.timing.max, "samples_s": r.timing.samples, "rate": rate, "unit": unit,
                            "ceiling": r.c.ceiling.rawValue, "peak_fraction": frac, "check": r.check]
    if let ob = r.openblas { j["openblas_default_s"] = ob; j["speedup_vs_openblas_default"] = ob / med }
    if let s = skx?.times[r.c.label + " | " + r.c.op] { j["openblas_skylakex_s"] = s; j["speedup_vs_openblas_skylakex"] = s / med }
    jsonCases.append(j)
}
var peakLines = "Peaks measured in this run (\(opts.threads) threads): "
peakLines += peaks.values.sorted { $0.key.rawValue < $1.key.rawValue }.map {
    "\($0.key.rawValue) \(String(format: "%.0f", $0.value)) \($0.key == .bandwidth ? "GB/s" : "G/s")"
}.joined(separator: ", ")
if !hasAMX { peakLines += "; AMX: not available on this host" }
// AMX against VNNI on the same int8 shapes, when both ran.
for r in rows where r.c.path == "amx" {
    if let v = rows.first(where: { $0.c.path == "avx512" && $0.c.label == r.c.label && $0.c.op == r.c.op }) {
        peakLines += String(format: "\nAMX vs VNNI on %@ (%@): %.2f×", r.c.label, r.c.op, v.timing.median / r.timing.median)
    }
}
let header = "unclip-bench kernels — commit \(commit()), \(cpuName()), best path \(String(cString: ck_isa_name(ck_isa_host_best()))), "
    + "\(opts.threads) threads, \(opts.quick ? "quick" : "full") mode, \(repeats) repeats\n\n\(peakLines)\n\n"
print(header + md)

let result: [String: Any] = [
    "commit": commit(), "cpu": cpuName(), "isa": String(cString: ck_isa_name(ck_isa_active())),
    "threads": opts.threads, "mode": opts.quick ? "quick" : "full", "repeats": repeats,
    "date": ISO8601DateFormatter().string(from: Date()),
    "peaks": Dictionary(uniqueKeysWithValues: peaks.values.map { ($0.key.rawValue, $0.value) }),
    "openblas_default_core": defaultCore, "openblas_skylakex_core": skx?.core ?? NSNull(),
    "cases": jsonCases,
]
func writeAtomically(_ data: Data, _ path: String) {
    do { try AtomicFile.write(data, to: path) } catch { fail("\(error)") }
}
if let path = opts.json { writeAtomically(try! JSONSerialization.data(withJSONObject: result, options: [.prettyPrinted, .sortedKeys]), path) }
if let path = opts.markdown { writeAtomically(Data((header + md).utf8), path) }
if failed { fail("a case failed validation against its reference (see above)") }
