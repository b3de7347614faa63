// unclip-weights: hub-layout checkpoints → one GGUF file; int8 quantization with an error report; inspection.
import ArgumentParser
import CLISupport
import Foundation
import UnCLIP

struct UnclipWeights: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unclip-weights",
        abstract: "Hub-layout unCLIP checkpoints → one GGUF model file; int8 quantization with an error report; inspection.",
        discussion: "Exit codes: 0 ok, 1 runtime error (nothing is left at the output path), 2 usage error.",
        version: "unclip-weights \(UnCLIPVersion.string)",
        subcommands: [Convert.self, Quantize.self, Verify.self, AddChecksums.self, Inspect.self])

    func run() throws { throw UsageError("missing command (convert, quantize, verify, add-checksums or inspect)") }
}

/// What convert and quantize share.
struct ConversionOptions: ParsableArguments {
    @Option(name: [.short, .long], help: ArgumentHelp("The GGUF file to write.", valueName: "out.gguf")) var output: String
    @Option(help: ArgumentHelp("Storage of the large tensors: f32, f16 or q8 (int8 per output channel).", valueName: "type")) var type: [WeightType] = []
    @Option(name: .customLong("keep-f32"), help: ArgumentHelp("Keep tensors whose full name matches this glob in f32 (e.g. 'prior.*'); repeatable; each must match a tensor.", valueName: "glob"))
    var keepF32: [String] = []
    @Option(help: ArgumentHelp("Write the per-tensor quantization error report as JSON.", valueName: "report.json")) var report: String?
    @OptionGroup(title: "Runtime") var runtime: ThreadOptions

    func validate() throws {
        if type.count > 1 { throw ValidationError("--type given \(type.count) times (\(type.map(\.rawValue).joined(separator: ", "))); give it once") }
        do { try ConvertOptions(keepF32: keepF32).validate() } catch { throw ValidationError("\(error)") }
        if let report, URL(fileURLWithPath: report).standardized.path == URL(fileURLWithPath: output).standardized.path {
            throw ValidationError("--report and -o name the same file")
        }
    }

    func convertOptions(default d: WeightType) -> ConvertOptions { ConvertOptions(type: type.first ?? d, keepF32: keepF32) }

    /// Both outputs are checked before the conversion starts: each one's folder exists and is writable, neither is a
    /// folder (the converter itself refuses an output that is its input).
    func checkOutputs() throws {
        for p in [output] + (report.map { [$0] } ?? []) { try AtomicFile.checkWritable(p) }
    }

    func finish(_ r: ConversionResult) throws {
        do { try writeReport(r, report) } catch {
            unlink(output)  // no half-finished result: the report was asked for and could not be written
            throw error
        }
        printReport(r)
    }
}

extension WeightType: ExpressibleByArgument {}

func log(_ line: String) { Terminal.err(line + "\n") }

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Convert a hub-layout model folder (diffusers/transformers safetensors) to GGUF.")
    @Argument(help: "The model folder (model_index.json and one folder per component).") var modelDir: String
    @OptionGroup var options: ConversionOptions

    func run() throws {
        try options.checkOutputs()
        let r = try Converter.convert(modelDirectory: modelDir, output: options.output, options: options.convertOptions(default: .f32), log: log)
        try options.finish(r)
    }
}

struct Quantize: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Re-store an f32 GGUF model file as q8 (default) or f16.")
    @Argument(help: "The f32 GGUF file.") var input: String
    @OptionGroup var options: ConversionOptions

    func validate() throws {
        if options.type.first == .f32 { throw ValidationError("quantize makes q8 or f16 files; use --type q8 or --type f16") }
    }

    func run() throws {
        try options.checkOutputs()
        let r = try Converter.quantize(input: input, output: options.output, options: options.convertOptions(default: .q8), log: log)
        try options.finish(r)
    }
}

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a whole model file: every tensor's checksum, every float value finite, every int8 column sum.",
        discussion: "Exit 0 when the file is sound, 1 with the first damaged tensor named. Files written before checksums existed are checked as far as they can be, with a note (add-checksums adds them).")
    @Argument(help: "The GGUF model file.") var file: String
    @OptionGroup(title: "Runtime") var runtime: ThreadOptions

    func run() throws {
        let r = try TensorIntegrity.verify(path: file)
        if !r.checksummed {
            Terminal.err("note: \(file) has no tensor checksums (written before they existed): only finite values and int8 column sums were checked; `unclip-weights add-checksums` adds them\n")
        }
        Terminal.out(String(format: "%@: ok — %d tensors, %.1f MB%@ in %.2f s (%.2f GB/s)", file, r.tensors, Double(r.bytes) / 1e6,
                            r.checksummed ? ", every checksum matches" : "", r.seconds, r.seconds > 0 ? Double(r.bytes) / 1e9 / r.seconds : 0))
    }
}

struct AddChecksums: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add-checksums",
        abstract: "Copy a model file written before tensor checksums existed, adding them (tensors copied byte for byte, after verify's checks).")
    @Argument(help: "The GGUF model file.") var input: String
    @Option(name: [.short, .long], help: ArgumentHelp("The GGUF file to write.", valueName: "out.gguf")) var output: String

    func run() throws {
        try AtomicFile.checkWritable(output)
        let r = try Converter.addChecksums(input: input, output: output, log: log)
        Terminal.out(String(format: "%d tensors, %.1f MB copied in %.2f s", r.tensors, Double(r.outputBytes) / 1e6, r.seconds))
    }
}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a model file's components, tensor types, sizes and configs.")
    @Argument(help: "The GGUF model file.") var file: String
    func run() throws { try inspect(file) }
}

func printReport(_ r: ConversionResult) {
    if !r.quantization.isEmpty {
        Terminal.out("quantized tensor".padding(toLength: 64, withPad: " ", startingAt: 0) + "  shape                 rel RMS    max abs    cosine")
        for e in r.quantization {
            let shape = "\(e.shape)".padding(toLength: 20, withPad: " ", startingAt: 0)
            Terminal.out(e.name.padding(toLength: 64, withPad: " ", startingAt: 0) + "  " + shape
                  + String(format: "  %.2e  %.2e  %.6f", e.relativeRMS, e.maxAbs, e.cosine))
        }
        let rel = r.quantization.map(\.relativeRMS)
        Terminal.out(String(format: "summary: %d tensors quantized; relative RMS mean %.3e, max %.3e; min cosine %.6f; max abs error %.3e",
                     r.quantization.count, rel.reduce(0, +) / Double(rel.count), rel.max() ?? 0,
                     r.quantization.map(\.cosine).min() ?? 1, r.quantization.map(\.maxAbs).max() ?? 0))
    }
    let mb = Double(r.inputBytes) / 1e6
    Terminal.out(String(format: "%d tensors, %.1f MB in → %.1f MB out in %.2f s (%.0f MB/s of input); components: %@",
                 r.tensors, mb, Double(r.outputBytes) / 1e6, r.seconds, r.seconds > 0 ? mb / r.seconds : 0,
                 r.components.joined(separator: ", ")))
}

func writeReport(_ r: ConversionResult, _ path: String?) throws {
    guard let path else { return }
    try AtomicFile.write(Data(r.reportJSON.text.utf8), to: path)
}

func inspect(_ path: String) throws {
    let g = try GGUFFile(path: path)
    guard g.value("general.architecture")?.string == UnCLIPGGUF.architecture else {
        throw WeightsError(.malformed, file: path, "not an unclip model file (general.architecture is not \"unclip\")")
    }
    let comps = g.value(UnCLIPGGUF.components)?.strings ?? []
    Terminal.out("\(path): GGUF v\(GGUF.version), \(g.tensors.count) tensors, \(g.metadata.count) metadata entries, weight type \(g.value(UnCLIPGGUF.weightType)?.string ?? "?")")
    if let n = g.value(TokenizerFiles.tokensKey)?.strings?.count, let m = g.value(TokenizerFiles.mergesKey)?.strings?.count {
        Terminal.out("tokenizer: \(n) tokens, \(m) merges")
    }
    for c in comps {
        let cls = g.value(UnCLIPGGUF.className(c))?.string ?? "?"
        let ts = g.tensors.filter { $0.name.hasPrefix(c + ".") }
        var byType: [String: (Int, Int)] = [:]
        for t in ts { byType[t.type.name, default: (0, 0)].0 += 1; byType[t.type.name, default: (0, 0)].1 += t.byteCount }
        let types = byType.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value.0) (\(String(format: "%.2f", Double($0.value.1) / 1e6)) MB)" }
        Terminal.out("\(c): \(cls), \(ts.count) tensors, \(String(format: "%.2f", Double(ts.reduce(0) { $0 + $1.byteCount }) / 1e6)) MB"
              + (types.isEmpty ? "" : " — " + types.joined(separator: ", ")))
        if let cfg = g.value(UnCLIPGGUF.config(c))?.string, let j = try? JSON.parse(cfg) { Terminal.out("  config: \(j.text)") }
    }
}

CommandMain.run(UnclipWeights.self, tool: "unclip-weights")
