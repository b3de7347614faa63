import ArgumentParser
import CLISupport
import Foundation
import UnCLIP

/// -o (an animated PNG), --frames, --fps, --loop, --bounce, --frames-dir, --quiet.
struct AnimationOptions: ParsableArguments {
    @Option(name: [.short, .long], help: ArgumentHelp("The animated PNG to write (APNG; its default image is frame 0).", valueName: "out.png"))
    var output: String
    @Option(help: ArgumentHelp("Frames (2…\(MorphOptions.maxFrames); default 8).", valueName: "n"))
    var frames = 8
    @Option(help: ArgumentHelp("Frames per second of the animation (0.1…100; default 8).", valueName: "f"))
    var fps = 8.0
    @Option(help: ArgumentHelp("How many times the animation plays (0 = forever; default 0).", valueName: "n"))
    var loop = 0
    @Flag(help: "Play there and back: the frames, then the inner ones in reverse.")
    var bounce = false
    @Option(help: ArgumentHelp("Also write each frame as <dir>/frame-0000.png … (made if missing).", valueName: "dir"))
    var framesDir: String?
    @Flag(name: [.short, .long], help: "No progress on stderr.")
    var quiet = false

    func validate() throws {
        guard output.lowercased().hasSuffix(".png") else { throw ValidationError("the output must be a .png file (got '\(output)')") }
        guard (2...MorphOptions.maxFrames).contains(frames) else { throw ValidationError("--frames must be in 2...\(MorphOptions.maxFrames) (got \(frames))") }
        guard fps.isFinite, (0.1...100).contains(fps) else { throw ValidationError("--fps must be in 0.1...100 (got \(fps))") }
        guard (0...65535).contains(loop) else { throw ValidationError("--loop must be in 0...65535 (got \(loop))") }
    }

    /// The frame files' paths (frame-0000.png …), the folder made and checked before any work.
    func framePaths() throws -> [String] {
        try OutputOptions.checkWritable(output)
        guard let dir = framesDir else { return [] }
        try AtomicFile.makeDirectory(dir)
        let paths = (0..<frames).map { (dir as NSString).appendingPathComponent(String(format: "frame-%04d.png", $0)) }
        for p in paths { try OutputOptions.checkWritable(p) }
        return paths
    }

    /// fcTL's delay as a fraction of a second: round(1000 / fps) / 1000.
    var delay: (num: UInt16, den: UInt16) { (UInt16(max(1, min(65535, (1000 / fps).rounded()))), 1000) }

    func sequence(_ frames: [PNGImage]) -> [PNGImage] {
        bounce && frames.count > 2 ? frames + frames.dropFirst().dropLast().reversed() : frames
    }
}

/// --inversion-iterations.
struct InversionOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Fixed-point iterations of each DDIM inversion step (1 = plain inversion; default \(MorphOptions().inversionIterations)).", valueName: "n"))
    var inversionIterations = MorphOptions().inversionIterations

    func validate() throws {
        guard (1...MorphOptions.maxInversionIterations).contains(inversionIterations) else {
            throw ValidationError("--inversion-iterations must be in 1...\(MorphOptions.maxInversionIterations) (got \(inversionIterations))")
        }
    }
}

/// What interpolate and textdiff share: options → frames → the frame PNGs, then the APNG; paths on stdout.
struct MorphRun {
    let model: ModelOption, noise: NoiseOptions, decoder: DecoderOptions, sampler: SamplerOptions, animation: AnimationOptions
    let inversion: InversionOptions

    typealias Body = (UnCLIPPipeline, MorphOptions, NoiseSource, @escaping ProgressHandler) throws -> (MorphResult, ImageMetadata)

    /// Guidance for runs that decode from DDIM-inverted latents when --decoder-guidance is not given: 1 (none).
    /// Guided DDIM inversion does not reconstruct on the embedded model: a red circle came back a red triangle at
    /// 23.2 dB with the model's guidance 4, a red circle at 29.7 dB without guidance (docs/morphs.md).
    static let invertedGuidance: Float = 1

    func run(kind: ImageMetadata.Kind, prior: PriorOptions? = nil, inverted: Bool, prompts: [(label: String, text: String)] = [], _ body: Body) throws {
        let framePaths = try animation.framePaths()                 // checked before minutes of work
        let source = try noise.noiseSet(count: 1).sources[0]
        let modelPath = try model.path()
        let file = try model.open(modelPath)
        var opts = MorphOptions()
        opts.frames = animation.frames
        opts.inversionIterations = inversion.inversionIterations
        opts.generation = try GenerationOptions(defaultsOf: file)
        decoder.apply(to: &opts.generation, guidance: inverted ? Self.invertedGuidance : nil)
        opts.generation.sampler = sampler.value
        prior?.apply(to: &opts.generation)
        let pipe = try UnCLIPPipeline(model: file)
        let truncated = truncationFacts(pipe.tokenizer, prompts)
        let progress = ProgressReporter(quiet: animation.quiet)
        let (result, base) = try body(pipe, opts, source, progress.handler)
        progress.finish("\(result.frames.count) frames")
        var meta = base
        meta.extra += truncated
        meta.kind = kind
        meta.record(opts.generation, prior: prior != nil)
        try meta.record(model: file, path: modelPath)
        meta.noiseFile = noise.noise
        meta.seed = try noise.firstSeed()
        if inverted {
            meta.extra.append(("inversion iterations", "\(opts.inversionIterations)"))
        }
        let first = result.frames[0]
        (meta.width, meta.height) = (first.width, first.height)
        let psnr = result.reconstructionPSNR.map { String(format: "%.2f", $0) }.joined(separator: " ")
        if !psnr.isEmpty && !animation.quiet {
            Terminal.err((kind == .textDiff ? "frame 0 reconstructs the input at " : "the end frames reconstruct the inputs at ") + psnr + " dB\n")
        }
        for (k, path) in framePaths.enumerated() {
            var m = meta
            m.extra += [("frame", "\(k + 1) of \(result.frames.count)"), ("theta", String(format: "%.4f", result.thetas[k]))]
            try result.frames[k].write(path, text: m.textChunks)
            Terminal.out(path)
        }
        var m = meta
        m.extra += [("frames", "\(result.frames.count)"), ("thetas", result.thetas.map { String(format: "%.4f", $0) }.joined(separator: " ")),
                    ("fps", "\(animation.fps)"), ("bounce", "\(animation.bounce)")]
        if !psnr.isEmpty { m.extra.append(("reconstruction psnr db", psnr)) }
        try APNGWriter.write(animation.output, frames: animation.sequence(result.frames), delay: animation.delay,
                             plays: UInt32(animation.loop), text: m.textChunks)
        Terminal.out(animation.output)
    }
}

enum LatentsChoice: String, ExpressibleByArgument, CaseIterable { case inverted, fixed }

struct Interpolate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Morph between two images (their CLIP embeddings slerped, DDIM-inverted latents slerped or fixed) or two prompts (through the prior).",
        discussion: """
            unclip interpolate a.png b.png --frames 8 -o morph.png
            unclip interpolate --from-prompt "a red circle" --to-prompt "a blue square" -o morph.png
            Images are decoded with DDIM (eta 0, clip_sample off) from their inverted latents, so with --latents inverted \
            (the default) the end frames reconstruct the inputs; --latents fixed decodes every frame from one random x_T. \
            Every frame's super-resolution uses the same draws.
            """)

    @Argument(help: "The first and the last image (PNG; none with --from-prompt/--to-prompt).") var images: [String] = []
    @Option(help: ArgumentHelp("Interpolate between two prompts instead: the first.", valueName: "prompt")) var fromPrompt: String?
    @Option(help: ArgumentHelp("… and the last.", valueName: "prompt")) var toPrompt: String?
    @Option(help: ArgumentHelp("x_T of the frames: inverted (slerp of the images' DDIM-inverted latents) or fixed (one random x_T).", valueName: "kind"))
    var latents: LatentsChoice = .inverted
    @Option(help: ArgumentHelp("With --latents inverted: the fraction of the decoder's steps both images are inverted through, in (0, 1] (default \(Interpolate.defaultInversionDepth); 1: to x_T, the paper's); below 1 the frames slerp those intermediate samples and decode the remaining steps.", valueName: "fraction"))
    var inversionDepth: Float?
    @OptionGroup(title: "Model") var model: ModelOption
    @OptionGroup(title: "Noise") var noise: NoiseOptions
    @OptionGroup(title: "Prior (prompt interpolation)") var prior: PriorOptions
    @OptionGroup(title: "Decoder and super-resolution") var decoder: DecoderOptions
    @OptionGroup(title: "Sampler (super-resolution; the prompt interpolation's every stage)") var sampler: SamplerOptions
    @OptionGroup(title: "Inversion") var inversion: InversionOptions
    @OptionGroup(title: "Animation") var animation: AnimationOptions
    @OptionGroup(title: "Runtime") var runtime: ThreadOptions

    /// Measured on the validation stream (10 pairs, docs/morphs.md): depth 1 / 0.75 / 0.5 → end frames ≥ 25 dB in
    /// 95% / 100% / 100%, middle frame valid 100% / 100% / 90%.
    static let defaultInversionDepth: Float = 0.75

    var prompted: Bool { fromPrompt != nil || toPrompt != nil }

    func validate() throws {
        if let d = inversionDepth {
            guard d.isFinite, d > 0, d <= 1 else { throw ValidationError("--inversion-depth must be in (0, 1] (got \(d))") }
            if d < 1 && (prompted || latents == .fixed) {
                throw ValidationError("--inversion-depth below 1 applies only to two images with --latents inverted")
            }
        }
        if prompted {
            guard let f = fromPrompt, let t = toPrompt else { throw ValidationError("give both --from-prompt and --to-prompt") }
            guard images.isEmpty else { throw ValidationError("give two images or --from-prompt/--to-prompt, not both") }
            try checkPrompt(f)
            try checkPrompt(t)
        } else {
            guard images.count == 2 else { throw ValidationError("give two images (got \(images.count)), or --from-prompt and --to-prompt") }
            guard prior.priorSteps == nil, prior.priorGuidance == nil else {
                throw ValidationError("--prior-steps and --prior-guidance apply only with --from-prompt/--to-prompt (images are encoded, not drawn by the prior)")
            }
        }
    }

    func run() throws {
        let run = MorphRun(model: model, noise: noise, decoder: decoder, sampler: sampler, animation: animation, inversion: inversion)
        if let from = fromPrompt, let to = toPrompt {
            try run.run(kind: .interpolation, prior: prior, inverted: false, prompts: [("--from-prompt", from), ("--to-prompt", to)]) { pipe, o, source, progress in
                var meta = ImageMetadata()
                meta.prompt = "\(from) → \(to)"
                return (try pipe.interpolate(fromPrompt: from, toPrompt: to, options: o, noise: source, progress: progress), meta)
            }
            return
        }
        let a = try PNGImage.read(images[0]), b = try PNGImage.read(images[1])
        if (a.width, a.height) != (b.width, b.height) && !animation.quiet {
            Terminal.err("note: the images differ in size (\(a.width)x\(a.height), \(b.width)x\(b.height)); both are resized to the model's resolution\n")
        }
        try run.run(kind: .interpolation, inverted: latents == .inverted) { pipe, o, source, progress in
            var meta = ImageMetadata()
            meta.source = images.map { ($0 as NSString).lastPathComponent }.joined(separator: " → ")
            meta.extra = [("latents", latents.rawValue)]
            let depth = latents == .inverted ? inversionDepth ?? Self.defaultInversionDepth : 1
            if depth < 1 { meta.extra.append(("inversion depth", "\(depth)")) }
            let choice: UnCLIPPipeline.InterpolationLatents = latents == .inverted ? .inverted : .fixed
            return (try pipe.interpolate(a, b, latents: choice, options: o, inversionDepth: depth, noise: source,
                                         progress: progress), meta)
        }
    }
}

struct TextDiff: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "textdiff",
        abstract: "Text diff: turn an image's CLIP embedding towards the difference of two captions' embeddings, from its DDIM-inverted latent.",
        discussion: """
            unclip textdiff image.png --from "a red circle" --to "a blue circle" --frames 8 -o diff.png
            z_d = normalize(z_t(to) − z_t(from)); frame k decodes slerp(z_i, |z_i|·z_d, θ_k), θ rising from 0 to \
            --max-theta (the paper: typically 0.25–0.5). Without --from the empty caption is the baseline. Frame 0 \
            reconstructs the input (its PSNR is printed on stderr and recorded).
            """)

    @Argument(help: "The image (PNG).") var image: String
    @Option(help: ArgumentHelp("A caption of the image (default: the empty caption).", valueName: "caption")) var from: String?
    @Option(help: ArgumentHelp("The target caption.", valueName: "caption")) var to: String
    @Option(help: ArgumentHelp("The last frame's θ, in (0, 1] (default 0.5).", valueName: "θ")) var maxTheta: Float = 0.5
    @Option(help: ArgumentHelp("Decoder guidance rising with θ from 1 at frame 0 (the reconstruction, unguided) to this at the last frame, in [1, 100]; 1: none (default \(TextDiff.defaultGuidanceRamp), or none when --decoder-guidance is given).", valueName: "scale")) var guidanceRamp: Float?
    @Option(help: ArgumentHelp("The fraction of the decoder's steps the image is inverted through, in (0, 1] (default \(TextDiff.defaultInversionDepth); 1: to x_T, the paper's text diff); below 1 every frame decodes from that intermediate sample, which keeps the image's layout.", valueName: "fraction")) var inversionDepth: Float = TextDiff.defaultInversionDepth

    /// The measured defaults (docs/morphs.md): on the validation stream's 15 text-diff cases (morph_bench.py, seed 9102)
    /// the paper's text diff (depth 1, no ramp) succeeded in 33%; depth 0.5 alone in 20%; a ramp to 4 alone in 33%;
    /// ramp/depth 4/0.6 47%, 6/0.4 47%, 8/0.5 53%, 8/0.6 60%, 12/0.4 53%, 12/0.5 67%, 16/0.5 53%; frame 0 ≥ 25 dB in every case.
    static let defaultGuidanceRamp: Float = 12
    static let defaultInversionDepth: Float = 0.5
    @OptionGroup(title: "Model") var model: ModelOption
    @OptionGroup(title: "Noise") var noise: NoiseOptions
    @OptionGroup(title: "Decoder and super-resolution") var decoder: DecoderOptions
    @OptionGroup(title: "Sampler (super-resolution)") var sampler: SamplerOptions
    @OptionGroup(title: "Inversion") var inversion: InversionOptions
    @OptionGroup(title: "Animation") var animation: AnimationOptions
    @OptionGroup(title: "Runtime") var runtime: ThreadOptions

    func validate() throws {
        try checkPrompt(to)
        guard inversionDepth.isFinite, inversionDepth > 0, inversionDepth <= 1 else {
            throw ValidationError("--inversion-depth must be in (0, 1] (got \(inversionDepth))")
        }
        if let from { try checkPrompt(from) }
        guard maxTheta.isFinite, maxTheta > 0, maxTheta <= UnCLIPPipeline.maxTextDiffTheta else {
            throw ValidationError("--max-theta must be in (0, \(UnCLIPPipeline.maxTextDiffTheta)] (got \(maxTheta))")
        }
        if let g = guidanceRamp, !(g.isFinite && g >= 1 && g <= 100) {
            throw ValidationError("--guidance-ramp must be in [1, 100] (got \(g))")
        }
        if let from, from.trimmingCharacters(in: .whitespaces) == to.trimmingCharacters(in: .whitespaces) {
            throw ValidationError("--from and --to are the same caption: a text diff needs two different ones")
        }
    }

    func run() throws {
        let input = try PNGImage.read(image)
        try MorphRun(model: model, noise: noise, decoder: decoder, sampler: sampler, animation: animation, inversion: inversion).run(kind: .textDiff, inverted: true, prompts: [("--to caption", to)] + (from.map { [("--from caption", $0)] } ?? [])) { pipe, o, source, progress in
            var meta = ImageMetadata()
            meta.prompt = to
            meta.source = (image as NSString).lastPathComponent
            meta.sourcePrompt = from
            meta.extra = [("from", from ?? "(the empty caption)"), ("max theta", "\(maxTheta)")]
            let ramp = guidanceRamp ?? (decoder.decoderGuidance == nil ? Self.defaultGuidanceRamp : nil)
            if let g = ramp { meta.extra.append(("guidance ramp", "\(g)")) }
            if inversionDepth < 1 { meta.extra.append(("inversion depth", "\(inversionDepth)")) }
            return (try pipe.textDiff(image: input, from: from, to: to, maxTheta: maxTheta, options: o, guidanceRamp: ramp,
                                      inversionDepth: inversionDepth, noise: source, progress: progress), meta)
        }
    }
}
