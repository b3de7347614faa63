// unclip-weights: hub-layout checkpoints → one GGUF file; int8 quantization with an error report; inspection.
import Foundation
import UnCLIP

let usage = """
    usage:
      unclip-weights convert <model-dir> -o <out.gguf> [--type f32|f16|q8] [--keep-f32 <glob>]... [--report <report.json>]
      unclip-weights quantize <in.gguf> -o <out.gguf> [--type q8|f16] [--keep-f32 <glob>]... [--report <report.json>]
      unclip-weights inspect <model.gguf>
    options:
      --type        storage of the large tensors (default f32; q8 = int8 per-output-channel, see README)
      --keep-f32    keep tensors whose full name matches this glob in f32 (e.g. 'decoder.conv_in.*'); repeatable
      --report      write the per-tensor quantization error report as JSON
      --threads N   threads for quantization (default: UNCLIP_THREADS or the online cores)
    """

func die(_ message: String, code: Int32 = 1) -> Never {
    FileHandle.standardError.write(Data("unclip-weights: \(message)\n".utf8))
    exit(code)
}

struct Args {
    var positional: [String] = []
    var output: String?
    var type: WeightType?
    var keep: [String] = []
    var report: String?
}

func parseArgs(_ a: [String]) -> Args {
    var r = Args()
    var i = 0
    func value(_ flag: String) -> String {
        i += 1
        guard i < a.count, !a[i].hasPrefix("--") else { die("\(flag) needs a value\n\(usage)", code: 2) }
        return a[i]
    }
    while i < a.count {
        switch a[i] {
        case "-o", "--output": r.output = value("-o")
        case "--type":
            let v = value("--type")
            guard let t = WeightType(rawValue: v) else { die("--type must be one of f32, f16, q8 (got '\(v)')", code: 2) }
            r.type = t
        case "--keep-f32": r.keep.append(value("--keep-f32"))
        case "--report": r.report = value("--report")
        case "--threads":
            let v = value("--threads")
            guard let n = Int(v), (try? Runtime.setThreads(n)) != nil else { die("--threads must be an integer in 1...1024 (got '\(v)')", code: 2) }
        case "-h", "--help":
            print(usage)
            exit(0)
        default:
            if a[i].hasPrefix("-") { die("unknown option '\(a[i])'\n\(usage)", code: 2) }
            r.positional.append(a[i])
        }
        i += 1
    }
    return r
}

func printReport(_ r: ConversionResult) {
    if !r.quantization.isEmpty {
        print("quantized tensor".padding(toLength: 64, withPad: " ", startingAt: 0) + "  shape                 rel RMS    max abs    cosine")
        for e in r.quantization {
            let shape = "\(e.shape)".padding(toLength: 20, withPad: " ", startingAt: 0)
            print(e.name.padding(toLength: 64, withPad: " ", startingAt: 0) + "  " + shape
                  + String(format: "  %.2e  %.2e  %.6f", e.relativeRMS, e.maxAbs, e.cosine))
        }
        let rel = r.quantization.map(\.relativeRMS)
        print(String(format: "summary: %d tensors quantized; relative RMS mean %.3e, max %.3e; min cosine %.6f; max abs error %.3e",
                     r.quantization.count, rel.reduce(0, +) / Double(rel.count), rel.max() ?? 0,
                     r.quantization.map(\.cosine).min() ?? 1, r.quantization.map(\.maxAbs).max() ?? 0))
    }
    let mb = Double(r.inputBytes) / 1e6
    print(String(format: "%d tensors, %.1f MB in → %.1f MB out in %.2f s (%.0f MB/s of input); components: %@",
                 r.tensors, mb, Double(r.outputBytes) / 1e6, r.seconds, r.seconds > 0 ? mb / r.seconds : 0,
                 r.components.joined(separator: ", ")))
}

func writeReport(_ r: ConversionResult, _ path: String?) {
    guard let path else { return }
    do { try Data(r.reportJSON.text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
        die("cannot write the report \(path): \(error.localizedDescription)")
    }
}

func inspect(_ path: String) throws {
    let g = try GGUFFile(path: path)
    guard g.value("general.architecture")?.string == UnCLIPGGUF.architecture else {
        throw WeightsError(.malformed, file: path, "not an unclip model file (general.architecture is not \"unclip\")")
    }
    let comps = g.value(UnCLIPGGUF.components)?.strings ?? []
    print("\(path): GGUF v\(GGUF.version), \(g.tensors.count) tensors, \(g.metadata.count) metadata entries, weight type \(g.value(UnCLIPGGUF.weightType)?.string ?? "?")")
    if let n = g.value(TokenizerFiles.tokensKey)?.strings?.count, let m = g.value(TokenizerFiles.mergesKey)?.strings?.count {
        print("tokenizer: \(n) tokens, \(m) merges")
    }
    for c in comps {
        let cls = g.value(UnCLIPGGUF.className(c))?.string ?? "?"
        let ts = g.tensors.filter { $0.name.hasPrefix(c + ".") }
        var byType: [String: (Int, Int)] = [:]
        for t in ts { byType[t.type.name, default: (0, 0)].0 += 1; byType[t.type.name, default: (0, 0)].1 += t.byteCount }
        let types = byType.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value.0) (\(String(format: "%.2f", Double($0.value.1) / 1e6)) MB)" }
        print("\(c): \(cls), \(ts.count) tensors, \(String(format: "%.2f", Double(ts.reduce(0) { $0 + $1.byteCount }) / 1e6)) MB"
              + (types.isEmpty ? "" : " — " + types.joined(separator: ", ")))
        if let cfg = g.value(UnCLIPGGUF.config(c))?.string, let j = try? JSON.parse(cfg) { print("  config: \(j.text)") }
    }
}

let argv = Array(CommandLine.arguments.dropFirst())
guard let command = argv.first else { die("missing command\n\(usage)", code: 2) }
let args = parseArgs(Array(argv.dropFirst()))
do {
    switch command {
    case "convert", "quantize":
        guard args.positional.count == 1 else { die("\(command) takes one input, got \(args.positional.count)\n\(usage)", code: 2) }
        guard let out = args.output else { die("\(command) needs -o <out.gguf>", code: 2) }
        let options = ConvertOptions(type: args.type ?? (command == "quantize" ? .q8 : .f32), keepF32: args.keep)
        if command == "quantize", options.type == .f32 { die("quantize makes q8 or f16 files; use --type q8 or --type f16", code: 2) }
        let log: (String) -> Void = { FileHandle.standardError.write(Data("\($0)\n".utf8)) }
        let r = command == "convert"
            ? try Converter.convert(modelDirectory: args.positional[0], output: out, options: options, log: log)
            : try Converter.quantize(input: args.positional[0], output: out, options: options, log: log)
        printReport(r)
        writeReport(r, args.report)
    case "inspect":
        guard args.positional.count == 1 else { die("inspect takes one file\n\(usage)", code: 2) }
        try inspect(args.positional[0])
    case "-h", "--help", "help":
        print(usage)
    default:
        die("unknown command '\(command)'\n\(usage)", code: 2)
    }
} catch {
    die("\(error)")
}
