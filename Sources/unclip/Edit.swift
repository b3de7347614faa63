import ArgumentParser
import CLISupport
import Foundation
import UnCLIP

/// --resamples: RePaint resampling for edits.
struct EditSamplingOptions: ParsableArguments {
    @Option(help: ArgumentHelp("RePaint resampling: run each decoder and super-res step this many times, noising back in between (1 = none; default 1).", valueName: "n"))
    var resamples: Int = EditSamplingOptions.defaultResamples

    static let defaultResamples = 1

    @Option(help: ArgumentHelp("Draw this many prior samples and decode the one whose CLIP embedding is closest to the kept content's (1 = the first sample; default \(EditSamplingOptions.defaultPriorCandidates)).", valueName: "k"))
    var priorCandidates: Int = EditSamplingOptions.defaultPriorCandidates

    static let defaultPriorCandidates = 1

    @Flag(inversion: .prefixedNo, help: "Smooth the regenerated region's colour into the kept pixels at the border (Poisson-style; kept pixels never change).")
    var harmonize = true

    func apply(to o: inout GenerationOptions) {
        o.resamples = resamples
        o.priorCandidates = priorCandidates
        o.harmonize = harmonize
    }

    func validate() throws {
        guard (1...GenerationOptions.maxResamples).contains(resamples) else {
            throw ValidationError("--resamples must be in 1...\(GenerationOptions.maxResamples) (got \(resamples))")
        }
        guard (1...GenerationOptions.maxPriorCandidates).contains(priorCandidates) else {
            throw ValidationError("--prior-candidates must be in 1...\(GenerationOptions.maxPriorCandidates) (got \(priorCandidates))")
        }
    }
}

func checkPrompt(_ prompt: String) throws {
    guard !prompt.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw ValidationError("the prompt is empty") }
    guard !prompt.utf8.contains(0) else { throw ValidationError("the prompt contains a NUL character") }
}

struct Edit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inpainting: regenerate the pixels where the mask is transparent (alpha 0); every other pixel is kept, byte for byte.",
        discussion: "The prompt describes the whole desired image (as DALL·E 2's edits). Without --mask the image's own alpha is the mask. The output has the input's size.")

    @Argument(help: "The image to edit (PNG, any size).") var image: String
    @Argument(help: "The prompt: the whole desired image.") var prompt: String
    @Option(help: ArgumentHelp("The mask (PNG, the image's size): alpha 0 = regenerate.", valueName: "mask.png")) var mask: String?
    @Option(help: ArgumentHelp("How the mask marks what to regenerate: alpha (alpha 0) or luminance (white).", valueName: "mode"))
    var maskMode: String = "alpha"
    @OptionGroup(title: "Model") var model: ModelOption
    @OptionGroup(title: "Noise") var noise: NoiseOptions
    @OptionGroup(title: "Prior") var prior: PriorOptions
    @OptionGroup(title: "Decoder and super-resolution") var decoder: DecoderOptions
    @OptionGroup(title: "Sampler") var sampler: SamplerOptions
    @OptionGroup(title: "Edit") var editing: EditSamplingOptions
    @OptionGroup(title: "Output") var output: OutputOptions
    @OptionGroup(title: "Runtime") var runtime: ThreadOptions

    func validate() throws {
        try checkPrompt(prompt)
        guard EditMask.Mode(rawValue: maskMode) != nil else { throw ValidationError("--mask-mode must be alpha or luminance (got '\(maskMode)')") }
        if mask == nil, maskMode != "alpha" { throw ValidationError("--mask-mode luminance needs --mask") }
    }

    /// The source and its mask, checked before any work.
    func inputs() throws -> (PNGImage, EditMask, maskSHA256: String) {
        let source = try PNGImage.read(image)
        let m: EditMask, digest: String
        if let mask {
            let mi = try PNGImage.read(mask)
            guard mi.width == source.width, mi.height == source.height else {
                throw RuntimeFailure("\(mask): the mask is \(mi.width)x\(mi.height), the image \(source.width)x\(source.height); they must be the same size")
            }
            m = try EditMask(image: mi, mode: EditMask.Mode(rawValue: maskMode)!, path: mask)
            digest = SHA256.hash([UInt8](try Data(contentsOf: URL(fileURLWithPath: mask))))
        } else {
            m = try EditMask(alphaOf: source, path: image)
            digest = SHA256.hash(m.keep.map { $0 ? 1 : 0 })
        }
        guard m.regenerated > 0 else {
            throw RuntimeFailure("\(mask ?? image): no pixel is marked for editing (\(maskMode == "alpha" ? "alpha 0" : "white") = regenerate): nothing to edit")
        }
        return (source, m, digest)
    }

    func run() throws {
        let (source, m, digest) = try inputs()
        try GenerationRun(model: model, noise: noise, decoder: decoder, sampler: sampler, output: output).run(kind: .edit, prompts: [("prompt", prompt)]) { pipe, opts, noises, progress in
            var o = opts
            prior.apply(to: &o)
            editing.apply(to: &o)
            let (images, stages) = try pipe.edit(image: source, mask: m, prompt: prompt, options: o, noises: noises, progress: progress)
            var meta = ImageMetadata()
            meta.prompt = prompt
            meta.source = (image as NSString).lastPathComponent
            meta.extra = [("mask sha256", digest), ("mask", mask.map { ($0 as NSString).lastPathComponent } ?? "the image's alpha"),
                          ("mask mode", maskMode), ("resamples", "\(o.resamples)"), ("prior candidates", "\(o.priorCandidates)"), ("harmonize", "\(o.harmonize)"),
                          ("regenerated pixels", "\(m.regenerated)")]
            return (images, stages, meta, o)
        }
    }
}

struct Extend: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Outpainting: grow the canvas and paint the new area in overlapping windows, each an edit; the original pixels are kept byte for byte.",
        discussion: "Chain calls to make a mural. Windows are the model's output size (or the canvas, if smaller) and run one after another, each seeing the last.")

    @Argument(help: "The image to extend (PNG).") var image: String
    @Argument(help: "The prompt (with --prompt-per-window: one prompt per window, separated by ' | ').") var prompt: String
    @Option(help: ArgumentHelp("Pixels to add on the left.", valueName: "n")) var left = 0
    @Option(help: ArgumentHelp("Pixels to add on the right.", valueName: "n")) var right = 0
    @Option(help: ArgumentHelp("Pixels to add on top.", valueName: "n")) var up = 0
    @Option(help: ArgumentHelp("Pixels to add at the bottom.", valueName: "n")) var down = 0
    @Option(help: ArgumentHelp("The share of each window already painted (0.25…0.9; default 0.5).", valueName: "f")) var overlap = 0.5
    @Flag(help: "Split the prompt on ' | ': one per window in painting order (the last repeats).") var promptPerWindow = false
    @OptionGroup(title: "Model") var model: ModelOption
    @OptionGroup(title: "Noise") var noise: NoiseOptions
    @OptionGroup(title: "Prior") var prior: PriorOptions
    @OptionGroup(title: "Decoder and super-resolution") var decoder: DecoderOptions
    @OptionGroup(title: "Sampler") var sampler: SamplerOptions
    @OptionGroup(title: "Edit") var editing: EditSamplingOptions
    @OptionGroup(title: "Output") var output: OutputOptions
    @OptionGroup(title: "Runtime") var runtime: ThreadOptions

    var labelledPrompts: [(label: String, text: String)] {
        prompts.count == 1 ? [("prompt", prompts[0])] : prompts.enumerated().map { ("prompt of window \($0.offset + 1)", $0.element) }
    }

    var prompts: [String] {
        promptPerWindow ? prompt.components(separatedBy: " | ").map { $0.trimmingCharacters(in: .whitespaces) } : [prompt]
    }

    func validate() throws {
        for p in prompts { try checkPrompt(p) }
        do { try CanvasGrowth(left: left, right: right, up: up, down: down).validate() } catch { throw ValidationError("\(error)") }
        guard overlap.isFinite, (0.25...0.9).contains(overlap) else { throw ValidationError("--overlap must be in 0.25...0.9 (got \(overlap))") }
    }

    func run() throws {
        let source = try PNGImage.read(image)
        let growth = CanvasGrowth(left: left, right: right, up: up, down: down)
        try GenerationRun(model: model, noise: noise, decoder: decoder, sampler: sampler, output: output).run(kind: .extend, prompts: labelledPrompts) { pipe, opts, noises, progress in
            var o = opts
            prior.apply(to: &o)
            editing.apply(to: &o)
            let (images, windows) = try pipe.extend(image: source, growth: growth, prompts: prompts, overlap: overlap, options: o,
                                                    noises: noises, progress: progress)
            var meta = ImageMetadata()
            meta.prompt = prompt
            meta.source = (image as NSString).lastPathComponent
            meta.extra = [("growth", "left \(left) right \(right) up \(up) down \(down)"), ("overlap", "\(overlap)"),
                          ("windows", "\(windows)"), ("resamples", "\(o.resamples)"), ("prior candidates", "\(o.priorCandidates)"), ("harmonize", "\(o.harmonize)")]
            return (images, StageOutputs(), meta, o)
        }
    }
}
