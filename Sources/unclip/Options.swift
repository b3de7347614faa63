import ArgumentParser
import CLISupport
import Foundation
import UnCLIP

/// -m, else $UNCLIP_MODEL, else the embedded model: next to the sources this binary was built from (#filePath:
/// <repo>/Sources/unclip/Options.swift), next to the binary (<repo>/.build/<config>/unclip), or under ./models.
struct ModelOption: ParsableArguments {
    static let defaultModelName = "unclip-shapes64-q8.gguf"

    @Option(name: [.short, .long], help: ArgumentHelp("The model file (unclip-weights convert).", valueName: "model.gguf"))
    var model: String?

    func path() throws -> String {
        if let model { return model }
        if let m = ProcessInfo.processInfo.environment["UNCLIP_MODEL"], !m.isEmpty { return m }
        let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let candidates = [sources.appendingPathComponent("models"), binary.appendingPathComponent("../../models"),
                          URL(fileURLWithPath: "models")].map { $0.appendingPathComponent(Self.defaultModelName).standardized.path }
        guard let found = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
            throw UsageError("no model given and the embedded model \(Self.defaultModelName) was not found (looked in \(candidates.joined(separator: ", "))); give -m <model.gguf> or set UNCLIP_MODEL")
        }
        return found
    }

    /// Opens the model file; one without tensor checksums (written before they existed) gets a note on stderr.
    func open(_ path: String) throws -> ModelFile {
        let file = try ModelFile(path: path)
        if file.checksums == nil {
            Terminal.err("note: \(path) has no tensor checksums, so damage to its float weights cannot be detected; `unclip-weights add-checksums` adds them\n")
        }
        return file
    }
}

/// --seed / --noise.
struct NoiseOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: ArgumentHelp("Seed of the first image (the next images use seed+1, …); -1 or 'random' draws one and records it.", valueName: "n"))
    var seed: String?

    @Option(help: ArgumentHelp("Replay the random draws a reference run recorded (safetensors; weights-tools/reference).", valueName: "noise.safetensors"))
    var noise: String?

    func validate() throws {
        if seed != nil, noise != nil { throw ValidationError("give --seed or --noise, not both") }
        _ = try firstSeed()
    }

    /// The first image's seed (nil with --noise).
    func firstSeed() throws -> UInt64? {
        if noise != nil { return nil }
        guard let seed else { return 0 }
        if seed == "-1" || seed.lowercased() == "random" { return Self.randomSeed }
        guard let v = UInt64(seed) else { throw ValidationError("--seed must be a non-negative integer, -1 or 'random' (got '\(seed)')") }
        return v
    }

    /// Drawn once per process, so validate() and run() agree.
    static let randomSeed = UInt64.random(in: 0..<(1 << 32))

    func noiseSet(count: Int) throws -> NoiseSet {
        if let noise { return try NoiseSet([try ReplayNoise(path: noise)], batch: count) }
        return try NoiseSet.seeded(try firstSeed()!, count: count)
    }
}

struct PriorOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Prior denoising steps (default 25).", valueName: "n")) var priorSteps: Int?
    @Option(help: ArgumentHelp("Prior classifier-free guidance (default 4.0).", valueName: "g")) var priorGuidance: Float?

    func validate() throws {
        try checkSteps("--prior-steps", priorSteps)
        try checkGuidance("--prior-guidance", priorGuidance)
    }

    /// The flags over the defaults (diffusers', then the model's).
    func apply(to o: inout GenerationOptions) {
        o.priorSteps = priorSteps ?? o.priorSteps
        o.priorGuidance = priorGuidance ?? o.priorGuidance
    }
}

struct DecoderOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Decoder denoising steps (default 25).", valueName: "n")) var decoderSteps: Int?
    @Option(help: ArgumentHelp("Super-resolution denoising steps (default 7).", valueName: "n")) var superResSteps: Int?
    @Option(help: ArgumentHelp("Decoder classifier-free guidance (default 8.0, or the model's own).", valueName: "g")) var decoderGuidance: Float?

    func validate() throws {
        try checkSteps("--decoder-steps", decoderSteps)
        try checkSteps("--super-res-steps", superResSteps)
        try checkGuidance("--decoder-guidance", decoderGuidance)
    }

    /// The flags over the defaults (diffusers', then the model's; `guidance` replaces the decoder guidance default).
    func apply(to o: inout GenerationOptions, guidance: Float? = nil) {
        o.decoderSteps = decoderSteps ?? o.decoderSteps
        o.superResSteps = superResSteps ?? o.superResSteps
        o.decoderGuidance = decoderGuidance ?? guidance ?? o.decoderGuidance
    }
}

enum SamplerName: String, ExpressibleByArgument, CaseIterable { case unclip, ddim }

struct SamplerOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Sampler of every stage: unclip (the model's UnCLIPScheduler) or ddim.", valueName: "name"))
    var sampler: SamplerName = .unclip
    @Option(help: ArgumentHelp("DDIM's eta: 0 deterministic … 1 (ddim only; default 0).", valueName: "eta"))
    var eta: Float?
    @Option(help: ArgumentHelp("DDIM timestep spacing: leading, trailing or linspace (ddim only; default leading).", valueName: "spacing"))
    var timestepSpacing: String?

    func validate() throws {
        if sampler != .ddim, eta != nil || timestepSpacing != nil { throw ValidationError("--eta and --timestep-spacing need --sampler ddim") }
        if let eta, !(eta.isFinite && (0...1).contains(eta)) { throw ValidationError("--eta must be in 0...1 (got \(eta))") }
        if let s = timestepSpacing, TimestepSpacing(rawValue: s) == nil { throw ValidationError("--timestep-spacing must be leading, trailing or linspace (got '\(s)')") }
    }

    var value: Sampler {
        switch sampler {
        case .unclip: return .unclip
        case .ddim: return .ddim(.init(eta: eta ?? 0, timestepSpacing: timestepSpacing.flatMap(TimestepSpacing.init(rawValue:)) ?? .leading))
        }
    }
}

/// -o / --output-dir / -n / --dump / --quiet.
struct OutputOptions: ParsableArguments {
    @Option(name: [.short, .long], help: ArgumentHelp("The PNG to write; with -n N > 1: <name>-1.png … <name>-N.png.", valueName: "out.png"))
    var output: String?
    @Option(help: ArgumentHelp("Write into this folder (made if missing) as NNNNN-<seed>.png, numbered after the files already there.", valueName: "dir"))
    var outputDir: String?
    @Option(name: [.customShort("n"), .long], help: ArgumentHelp("Images to make (1…\(GenerationOptions.maxCount)), run as one batch.", valueName: "n"))
    var count: Int = 1
    @Option(help: ArgumentHelp("The most images one model call takes; bigger batches run in chunks (default: 8 at 64×64, 1 at 256×256).", valueName: "n"))
    var maxBatch: Int?
    @Option(help: ArgumentHelp("Also write every stage's result as F32 safetensors.", valueName: "stages.safetensors"))
    var dump: String?
    @Flag(name: [.short, .long], help: "No progress on stderr.")
    var quiet = false

    func validate() throws {
        if let m = maxBatch, !(1...GenerationOptions.maxCount).contains(m) { throw ValidationError("--max-batch must be in 1...\(GenerationOptions.maxCount) (got \(m))") }
        guard (1...GenerationOptions.maxCount).contains(count) else { throw ValidationError("-n/--count must be in 1...\(GenerationOptions.maxCount) (got \(count))") }
        switch (output, outputDir) {
        case (nil, nil): throw ValidationError("give -o <out.png> or --output-dir <dir>")
        case (.some, .some): throw ValidationError("give -o or --output-dir, not both")
        case (let o?, nil): guard o.lowercased().hasSuffix(".png") else { throw ValidationError("the output must be a .png file (got '\(o)')") }
        default: break
        }
    }

    /// The output paths, checked before any work: each one's folder exists and is writable, none is a folder.
    func paths(seeds: [UInt64?]) throws -> [String] {
        let paths: [String]
        if let o = output {
            paths = count == 1 ? [o] : (1...count).map { String(o.dropLast(4)) + "-\($0)" + String(o.suffix(4)) }
        } else {
            let dir = outputDir!
            try AtomicFile.makeDirectory(dir)
            let existing = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
            // the highest "<digits>-…" number already there (5 digits, more past 99999)
            let next = (existing.compactMap { name -> Int? in
                let digits = name.prefix { $0.isASCII && $0.isNumber }
                return digits.count >= 5 && digits.count <= 12 && name.dropFirst(digits.count).hasPrefix("-") ? Int(digits) : nil
            }.max() ?? 0) + 1
            paths = seeds.enumerated().map { k, s in (dir as NSString).appendingPathComponent(String(format: "%05d", next + k) + "-\(s.map(String.init) ?? "noise").png") }
        }
        for p in paths + (dump.map { [$0] } ?? []) { try Self.checkWritable(p) }
        return paths
    }

    static func checkWritable(_ path: String) throws { try AtomicFile.checkWritable(path) }
}

func checkSteps(_ name: String, _ v: Int?) throws {
    if let v, !(2...1000).contains(v) { throw ValidationError("\(name) must be an integer in 2...1000 (got \(v))") }
}

func checkGuidance(_ name: String, _ v: Float?) throws {
    if let v, !(v.isFinite && v >= 0 && v <= 100) { throw ValidationError("\(name) must be a number in 0...100 (got \(v))") }
}

/// CLIP reads 77 tokens (75 of the prompt's own): a longer prompt is cut, as in diffusers. Says so on stderr before
/// the work, and returns the metadata fact ("truncated": which prompt kept how many of its tokens).
func truncationFacts(_ tokenizer: CLIPTokenizer, _ prompts: [(label: String, text: String)]) -> [(String, String)] {
    var facts: [String] = []
    for (label, text) in prompts {
        guard let (kept, total) = tokenizer.truncation(text) else { continue }
        Terminal.err("warning: the \(label) has \(total) tokens; CLIP reads the first \(kept), the rest is ignored\n")
        facts.append("\(label) kept \(kept) of \(total) tokens")
    }
    return facts.isEmpty ? [] : [("truncated", facts.joined(separator: "; "))]
}
