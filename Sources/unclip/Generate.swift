import ArgumentParser
import CLISupport
import Foundation
import UnCLIP

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Text → image: prior, decoder, super-resolution.")

    @Argument(help: "The prompt (quote it).") var prompt: String
    @OptionGroup(title: "Model") var model: ModelOption
    @OptionGroup(title: "Noise") var noise: NoiseOptions
    @OptionGroup(title: "Prior") var prior: PriorOptions
    @OptionGroup(title: "Decoder and super-resolution") var decoder: DecoderOptions
    @OptionGroup(title: "Sampler") var sampler: SamplerOptions
    @OptionGroup(title: "Output") var output: OutputOptions
    @OptionGroup(title: "Runtime") var runtime: ThreadOptions

    func validate() throws {
        guard !prompt.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw ValidationError("the prompt is empty") }
        guard !prompt.utf8.contains(0) else { throw ValidationError("the prompt contains a NUL character") }
    }

    func run() throws {
        try GenerationRun(model: model, noise: noise, decoder: decoder, sampler: sampler, output: output).run(kind: .textToImage, prompts: [("prompt", prompt)]) { pipe, opts, noises, progress in
            var o = opts
            prior.apply(to: &o)
            let (images, stages) = try pipe.generate(prompt: prompt, options: o, noises: noises, progress: progress)
            var meta = ImageMetadata()
            meta.prompt = prompt
            return (images, stages, meta, o)
        }
    }
}

struct Vary: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Variations of an image: its CLIP image embedding replaces the prior's.")

    @Argument(help: "The input image (PNG).") var image: String
    @OptionGroup(title: "Model") var model: ModelOption
    @OptionGroup(title: "Noise") var noise: NoiseOptions
    @OptionGroup(title: "Decoder and super-resolution") var decoder: DecoderOptions
    @OptionGroup(title: "Sampler") var sampler: SamplerOptions
    @OptionGroup(title: "Output") var output: OutputOptions
    @OptionGroup(title: "Runtime") var runtime: ThreadOptions

    func run() throws {
        try GenerationRun(model: model, noise: noise, decoder: decoder, sampler: sampler, output: output).run(kind: .variation) { pipe, opts, noises, progress in
            let input = try PNGImage.read(image)
            let (images, stages) = try pipe.vary(images: [PNGImage](repeating: input, count: opts.count), options: opts, noises: noises, progress: progress)
            var meta = ImageMetadata()
            meta.source = (image as NSString).lastPathComponent  // the name only: no local paths in shared images
            // the source's own prompt, when it recorded one (a variation of a variation: its source's)
            let text = (try? PNGText.read(image)) ?? []
            meta.sourcePrompt = text.first { $0.key == "prompt" }?.value ?? text.first { $0.key == "source prompt" }?.value
            return (images, stages, meta, opts)
        }
    }
}

/// What generate and vary share: options → pipeline → checked outputs, images first, then the dump; paths on stdout.
struct GenerationRun {
    let model: ModelOption, noise: NoiseOptions, decoder: DecoderOptions, sampler: SamplerOptions, output: OutputOptions

    typealias Body = (UnCLIPPipeline, GenerationOptions, NoiseSet, @escaping ProgressHandler) throws -> ([PNGImage], StageOutputs, ImageMetadata, GenerationOptions)

    /// `prompts`: the run's prompts, checked for truncation before the work.
    func run(kind: ImageMetadata.Kind, prompts: [(label: String, text: String)] = [], _ body: Body) throws {
        let first = try noise.firstSeed()
        let seeds: [UInt64?] = (0..<output.count).map { k in first.map { $0 &+ UInt64(k) } }
        let paths = try output.paths(seeds: seeds)                  // checked before minutes of work
        let noises = try noise.noiseSet(count: output.count)
        let modelPath = try model.path()
        let file = try model.open(modelPath)
        // diffusers' defaults, then the model's own (model_index.json's _unclip_generation_defaults), then the flags
        var opts = try GenerationOptions(defaultsOf: file)
        decoder.apply(to: &opts)
        opts.sampler = sampler.value
        opts.count = output.count
        opts.maxBatch = output.maxBatch
        let pipe = try UnCLIPPipeline(model: file)
        let truncated = truncationFacts(pipe.tokenizer, prompts)
        let progress = ProgressReporter(quiet: output.quiet)
        let (images, stages, base, used) = try body(pipe, opts, noises, progress.handler)
        progress.finish(output.count == 1 ? "done" : "\(output.count) images")
        var meta = base
        meta.extra += truncated
        meta.kind = kind
        meta.record(used, prior: kind != .variation)
        try meta.record(model: file, path: modelPath)
        meta.noiseFile = noise.noise
        for (k, image) in images.enumerated() {
            var m = meta
            m.seed = seeds[k]
            (m.width, m.height) = (image.width, image.height)
            try image.write(paths[k], text: m.textChunks)
            Terminal.out(paths[k])
        }
        if let dump = output.dump {
            try stages.write(dump)
            Terminal.out(dump)
        }
    }
}
