// unclip: text → image with an unCLIP (Karlo-architecture) model file made by unclip-weights.
import Foundation
import UnCLIP

/// The embedded default model (issue 5; models/README.md is its card).
let defaultModelName = "unclip-shapes64-q8.gguf"

let usage = """
    usage:
      unclip generate "<prompt>" [-m <model.gguf>] -o <out.png> [--seed N | --noise <noise.safetensors>]
                     [--prior-steps 25] [--decoder-steps 25] [--super-res-steps 7]
                     [--prior-guidance 4.0] [--decoder-guidance 8.0] [--threads N] [--dump <stages.safetensors>]
      unclip vary <image.png> [-m <model.gguf>] -o <out.png> [--seed N | --noise <noise.safetensors>]
                     [--decoder-steps 25] [--super-res-steps 7] [--decoder-guidance 8.0] [--threads N] [--dump <stages.safetensors>]
      unclip tokenize [-m <model.gguf>] "<text>"...
    Without -m the model is $UNCLIP_MODEL, else the embedded one (models/\(defaultModelName) in the source tree
    this program was built from, or ./models/). Defaults are diffusers' UnCLIPPipeline's unless the model file sets
    its own (the embedded model: decoder guidance 4.0); flags override both. --noise replays the random draws a
    reference run recorded (weights-tools/reference/make_pipeline_fixtures.py); otherwise noise comes from --seed
    (default 0).
    """

/// -m, else $UNCLIP_MODEL, else the embedded model: next to the sources this binary was built from (#filePath:
/// <repo>/Sources/unclip/main.swift), next to the binary (<repo>/.build/<config>/unclip), or under ./models.
func modelPath(_ args: Args, for command: String) -> String {
    if let m = args.values["--model"] { return m }
    if let m = ProcessInfo.processInfo.environment["UNCLIP_MODEL"], !m.isEmpty { return m }
    let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    let candidates = [sources.appendingPathComponent("models"), binary.appendingPathComponent("../../models"),
                      URL(fileURLWithPath: "models")].map { $0.appendingPathComponent(defaultModelName).standardized.path }
    guard let found = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
        die("\(command): no model given and the embedded model \(defaultModelName) was not found (looked in \(candidates.joined(separator: ", "))); give -m <model.gguf> or set UNCLIP_MODEL", code: 2)
    }
    return found
}

func die(_ message: String, code: Int32 = 1) -> Never {
    FileHandle.standardError.write(Data("unclip: \(message)\n".utf8))
    exit(code)
}

struct Args {
    var positional: [String] = []
    var values: [String: String] = [:]
}

let valueFlags: Set<String> = ["-m", "--model", "-o", "--output", "--seed", "--noise", "--prior-steps", "--decoder-steps",
                                "--super-res-steps", "--prior-guidance", "--decoder-guidance", "--threads", "--dump"]

func parse(_ a: [String]) -> Args {
    var r = Args()
    var i = 0
    while i < a.count {
        let f = a[i]
        if f == "-h" || f == "--help" { print(usage); exit(0) }
        if f == "--" { r.positional += a[(i + 1)...]; break }
        if valueFlags.contains(f) {
            guard i + 1 < a.count else { die("\(f) needs a value\n\(usage)", code: 2) }
            let key = ["-m": "--model", "-o": "--output"][f] ?? f
            guard r.values[key] == nil else { die("\(f) given twice", code: 2) }
            r.values[key] = a[i + 1]
            i += 2
            continue
        }
        if f.hasPrefix("-"), f.count > 1, Double(f) == nil { die("unknown option '\(f)'\n\(usage)", code: 2) }
        r.positional.append(f)
        i += 1
    }
    return r
}

func int(_ args: Args, _ flag: String, _ def: Int, _ range: ClosedRange<Int>) -> Int {
    guard let s = args.values[flag] else { return def }
    guard let v = Int(s), range.contains(v) else { die("\(flag) must be an integer in \(range.lowerBound)...\(range.upperBound) (got '\(s)')", code: 2) }
    return v
}

func float(_ args: Args, _ flag: String, _ def: Float) -> Float {
    guard let s = args.values[flag] else { return def }
    guard let v = Float(s), v.isFinite, v >= 0, v <= 100 else { die("\(flag) must be a number in 0...100 (got '\(s)')", code: 2) }
    return v
}

/// A cheap identity for the model file: FNV-1a 64 over its first 16 MiB (header, configs, tokenizer) and its size.
func modelHash(_ path: String) -> String {
    guard let f = try? ReadOnlyFile(path), let bytes = try? f.bytes(at: 0, count: min(f.size, 16 << 20)) else { return "unknown" }
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
    h = (h ^ UInt64(f.size)) &* 0x0000_0100_0000_01b3
    return String(format: "fnv1a64-16MiB:%016llx", h)
}

let argv = Array(CommandLine.arguments.dropFirst())
guard let command = argv.first else { die("missing command\n\(usage)", code: 2) }
if ["-h", "--help", "help"].contains(command) { print(usage); exit(0) }
let args = parse(Array(argv.dropFirst()))
if let t = args.values["--threads"] {
    guard let n = Int(t), (try? Runtime.setThreads(n)) != nil else { die("--threads must be an integer in 1...1024 (got '\(t)')", code: 2) }
}

do {
    switch command {
    case "tokenize":
        let modelPath = modelPath(args, for: command)
        guard !args.positional.isEmpty else { die("tokenize needs at least one text", code: 2) }
        let tok = try CLIPTokenizer(file: try GGUFFile(path: modelPath))
        for text in args.positional { print("[" + tok.encode(text).ids.map(String.init).joined(separator: ",") + "]") }

    case "generate", "vary":
        let what = command == "generate" ? "one prompt (quote it)" : "one input image"
        guard args.positional.count == 1 else { die("\(command) takes \(what), got \(args.positional.count)\n\(usage)", code: 2) }
        if command == "vary", let f = ["--prior-steps", "--prior-guidance"].first(where: { args.values[$0] != nil }) {
            die("\(f) does not apply to vary (variations use the image's embedding, no prior)", code: 2)
        }
        guard let out = args.values["--output"] else { die("\(command) needs -o <out.png>", code: 2) }
        guard out.lowercased().hasSuffix(".png") else { die("the output must be a .png file (got '\(out)')", code: 2) }
        if args.values["--seed"] != nil, args.values["--noise"] != nil { die("give --seed or --noise, not both", code: 2) }
        let prompt = args.positional[0]
        let seedText = args.values["--seed"] ?? "0"
        guard let seed = UInt64(seedText) else { die("--seed must be a non-negative integer (got '\(seedText)')", code: 2) }
        // Check the destination before minutes of work.
        let dir = (out as NSString).deletingLastPathComponent
        guard FileManager.default.isWritableFile(atPath: dir.isEmpty ? "." : dir) else { die("\(out): its directory does not exist or is not writable") }
        let noise: NoiseSource = try args.values["--noise"].map { try ReplayNoise(path: $0) } ?? SeededNoise(seed: seed)
        let modelPath = modelPath(args, for: command)
        let model = try ModelFile(path: modelPath)
        // diffusers' defaults, then the model's own (model_index.json's _unclip_generation_defaults), then the flags
        var opts = try GenerationOptions(defaultsOf: model)
        opts.priorSteps = int(args, "--prior-steps", opts.priorSteps, 2...1000)
        opts.decoderSteps = int(args, "--decoder-steps", opts.decoderSteps, 2...1000)
        opts.superResSteps = int(args, "--super-res-steps", opts.superResSteps, 2...1000)
        opts.priorGuidance = float(args, "--prior-guidance", opts.priorGuidance)
        opts.decoderGuidance = float(args, "--decoder-guidance", opts.decoderGuidance)
        let pipe = try UnCLIPPipeline(model: model)
        let start = Date()
        let report: ProgressHandler = { stage, step, total in
            FileHandle.standardError.write(Data(String(format: "\r%@ %d/%d  (%.1f s)   ", stage, step, total, Date().timeIntervalSince(start)).utf8))
            return true
        }
        let (images, stages) = command == "generate"
            ? try pipe.generate(prompt: prompt, options: opts, noise: noise, progress: report)
            : try pipe.vary(image: try PNGImage.read(prompt), options: opts, noise: noise, progress: report)
        FileHandle.standardError.write(Data(String(format: "\rdone in %.1f s                \n", Date().timeIntervalSince(start)).utf8))
        if let dump = args.values["--dump"] { try stages.write(dump) }
        let name = model.gguf.value("general.name")?.string ?? (modelPath as NSString).lastPathComponent
        let text: [(String, String)] = [
            (command == "generate" ? "prompt" : "variation of", prompt), ("noise", args.values["--noise"] ?? "seed \(seed)"),
            ("steps", (command == "generate" ? "prior \(opts.priorSteps), " : "") + "decoder \(opts.decoderSteps), super-res \(opts.superResSteps)"),
            ("guidance", (command == "generate" ? "prior \(opts.priorGuidance), " : "") + "decoder \(opts.decoderGuidance)"),
            ("model", name), ("model hash", modelHash(modelPath)), ("Software", "unclip"),
        ]
        try images[0].write(out, text: text)

    default:
        die("unknown command '\(command)'\n\(usage)", code: 2)
    }
} catch {
    die("\(error)")
}
