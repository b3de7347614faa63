import Foundation

/// What a generated image records about how it was made, written as PNG iTXt chunks:
/// - one chunk per parameter (`prompt`, `seed`, `steps`, …), readable by `unclip info`;
/// - AUTOMATIC1111's `parameters` chunk (prompt line, then `Steps: …, Sampler: …, CFG scale: …, Seed: …, Size: WxH,
///   Model hash: …, Model: …, Version: …` and the unCLIP-specific values as more `Key: value` pairs), which tools
///   that read A1111 metadata parse;
/// - XMP (`XML:com.adobe.xmp`) marking the image as AI-generated with IPTC's digital source type
///   trainedAlgorithmicMedia, and `Software`.
public struct ImageMetadata: Sendable {
    public enum Kind: String, Sendable { case textToImage = "text-to-image", variation, edit, extend, interpolation, textDiff = "text-diff" }

    public var kind: Kind = .textToImage
    public var prompt = ""
    /// "seed N" or the noise file's path.
    public var seed: UInt64?
    public var noiseFile: String?
    public var priorSteps: Int?
    public var priorGuidance: Float?
    public var decoderSteps = 25
    public var decoderGuidance: Float = 8
    public var superResSteps = 7
    public var sampler: Sampler = .unclip
    public var width = 0, height = 0
    public var modelName = ""
    public var modelSHA256 = ""
    /// A variation's or edit's source image, and its own prompt when it recorded one.
    public var source: String?
    public var sourcePrompt: String?
    public var extra: [(String, String)] = []

    public init() {}

    /// The steps, guidance and sampler a run used (the prior's too when it ran).
    public mutating func record(_ o: GenerationOptions, prior: Bool) {
        if prior { (priorSteps, priorGuidance) = (o.priorSteps, o.priorGuidance) }
        (decoderSteps, decoderGuidance, superResSteps, sampler) = (o.decoderSteps, o.decoderGuidance, o.superResSteps, o.sampler)
    }

    /// The model's name (general.name, else the file's name) and the file's sha256.
    public mutating func record(model: ModelFile, path: String) throws {
        modelName = model.gguf.value("general.name")?.string ?? (path as NSString).lastPathComponent
        modelSHA256 = try ModelHash.sha256(of: path)
    }

    public static let software = "unclip \(UnCLIPVersion.string)"
    /// IPTC NewsCodes digital source type for media made by a trained model.
    public static let digitalSourceType = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
    public static let xmpKey = "XML:com.adobe.xmp"

    public var sha10: String { String(modelSHA256.prefix(10)) }

    static func g(_ v: Float) -> String { String(format: "%g", Double(v)).contains(".") ? String(format: "%g", Double(v)) : String(format: "%.1f", Double(v)) }

    /// The individual keys (kept from earlier versions), then `parameters`, XMP and Software.
    public var textChunks: [(String, String)] {
        var t: [(String, String)] = [("kind", kind.rawValue)]
        switch kind {
        case .textToImage: t.append(("prompt", prompt))
        case .variation: t.append(("variation of", source ?? ""))
        case .edit: t += [("prompt", prompt), ("edit of", source ?? "")]
        case .extend: t += [("prompt", prompt), ("extension of", source ?? "")]
        case .interpolation: t += [("prompt", prompt), ("interpolation of", source ?? "")]
        case .textDiff: t += [("prompt", prompt), ("text diff of", source ?? "")]
        }
        if let sourcePrompt { t.append(("source prompt", sourcePrompt)) }
        t.append(("noise", noiseFile ?? "seed \(seed ?? 0)"))
        if let seed { t.append(("seed", "\(seed)")) }
        t.append(("steps", (priorSteps.map { "prior \($0), " } ?? "") + "decoder \(decoderSteps), super-res \(superResSteps)"))
        t.append(("guidance", (priorGuidance.map { "prior \(Self.g($0)), " } ?? "") + "decoder \(Self.g(decoderGuidance))"))
        t += [("sampler", sampler.description), ("size", "\(width)x\(height)"), ("model", modelName), ("model sha256", modelSHA256)]
        t += extra
        t += [("parameters", a1111Parameters), (Self.xmpKey, xmp), ("Software", Self.software)]
        return t.map { ($0.0, Self.text($0.1)) }
    }

    /// A value as a text chunk holds it: no NUL or other control characters but newline and tab, at most 16 KiB of
    /// characters (prompts and names come from users and from other files).
    static func text(_ s: String) -> String {
        let scalars = s.unicodeScalars.map { u -> Character in
            (u.value < 32 && u != "\n" && u != "\t") || (0x7f...0x9f).contains(u.value) ? " " : Character(u)
        }
        return String(scalars.prefix(16 << 10))
    }

    /// AUTOMATIC1111's infotext. Its parsers split the last line on "," into `Key: value` pairs at the first ":"
    /// (sd-parsers drops pairs that do not split in two), so values here never contain "," or ":" (they become
    /// spaces) and a noise file is given by name only.
    public var a1111Parameters: String {
        var pairs: [(String, String)] = [("Steps", "\(decoderSteps)"), ("Sampler", sampler == .unclip ? "UnCLIP" : "DDIM"),
                                         ("CFG scale", Self.g(decoderGuidance))]
        if let seed { pairs.append(("Seed", "\(seed)")) }
        pairs += [("Size", "\(width)x\(height)"), ("Model hash", sha10), ("Model", Self.clean(modelName)), ("Version", Self.software)]
        if let priorSteps { pairs.append(("Prior steps", "\(priorSteps)")) }
        if let priorGuidance { pairs.append(("Prior CFG scale", Self.g(priorGuidance))) }
        pairs.append(("Super-res steps", "\(superResSteps)"))
        if let noiseFile { pairs.append(("Noise file", Self.clean((noiseFile as NSString).lastPathComponent))) }
        if kind != .textToImage { pairs.append(("unCLIP mode", kind.rawValue)) }
        for (k, v) in sampler.settings { pairs.append((k == "eta" ? "Eta" : k.replacingOccurrences(of: "_", with: " ").capitalized, v)) }
        for (k, v) in extra { pairs.append((Self.clean(k.capitalized), Self.clean(v))) }
        let promptLine = kind == .variation ? (sourcePrompt ?? "") : prompt
        return promptLine + "\n" + pairs.map { "\($0.0): \($0.1)" }.joined(separator: ", ")
    }

    static func clean(_ s: String) -> String {
        String(text(s).map { $0 == "," || $0 == ":" || $0 == "\n" || $0 == "\t" ? " " : $0 })
    }

    static func xmlEscape(_ s: String) -> String {
        text(s).replacingOccurrences(of: "\t", with: " ").replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    /// XMP packet: IPTC Extension DigitalSourceType, the creator tool, and the prompt as the description.
    public var xmp: String {
        let desc = kind == .variation ? "variation of \(source ?? "")" : prompt
        return """
            <?xpacket begin="\u{FEFF}" id="W5M0MpCehiHzreSzNTczkc9d"?>
            <x:xmpmeta xmlns:x="adobe:ns:meta/">
             <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
              <rdf:Description rdf:about=""
                xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
                xmlns:xmp="http://ns.adobe.com/xap/1.0/"
                xmlns:dc="http://purl.org/dc/elements/1.1/"
               Iptc4xmpExt:DigitalSourceType="\(Self.digitalSourceType)"
               xmp:CreatorTool="\(Self.xmlEscape(Self.software))">
               <dc:description><rdf:Alt><rdf:li xml:lang="x-default">\(Self.xmlEscape(desc))</rdf:li></rdf:Alt></dc:description>
              </rdf:Description>
             </rdf:RDF>
            </x:xmpmeta>
            <?xpacket end="r"?>
            """
    }
}
