import Foundation

/// The text conditioning of B images: the CLIP text encoder's pooled embeddings, last hidden states and masks,
/// with the unconditional ("") rows first when guided — the layout every guided stage expects.
public struct TextConditioning: @unchecked Sendable {
    public let promptEmbeds: Tensor      // [B', E], B' = 2B when guided (uncond rows first), else B
    public let hidden: Tensor            // [B', L, D]
    public let mask: [[Bool]]            // [B'][L]
    public let batch: Int
    public let guided: Bool

    /// The row indices of images `r` in a [B'] tensor: [uncond r; cond B + r] when guided, else r.
    public func rowIndex(_ r: Range<Int>) -> [Int] { guided ? Array(r) + r.map { batch + $0 } : Array(r) }

    /// The conditioning of images `r` alone.
    public func rows(_ r: Range<Int>) throws -> TextConditioning {
        if r == 0..<batch { return self }
        let idx = rowIndex(r)
        return TextConditioning(promptEmbeds: try TextEncoderStage.gather(promptEmbeds, idx), hidden: try TextEncoderStage.gather(hidden, idx),
                                mask: idx.map { mask[$0] }, batch: r.count, guided: guided)
    }

    /// The conditional rows alone (the prompts' own): [B, E] and [B, L, D].
    public func conditional() throws -> (embeds: Tensor, hidden: Tensor) {
        let r = guided ? batch..<(2 * batch) : 0..<batch
        return (try promptEmbeds.slice(dim: 0, r).contiguous(), try hidden.slice(dim: 0, r).contiguous())
    }
}

/// CLIPTextModelWithProjection over the prompts (and "" for guidance): each distinct text is encoded once and its
/// rows repeated, so an image's conditioning does not depend on the rest of its batch.
public struct TextEncoderStage {
    public let model: StageModel
    public let tokenizer: CLIPTokenizer

    public init(_ model: StageModel, tokenizer: CLIPTokenizer) {
        self.model = model
        self.tokenizer = tokenizer
    }

    public func callAsFunction(prompts: [String], guided: Bool) throws -> TextConditioning {
        try require(!prompts.isEmpty, "text encoder", "no prompts")
        try model.require(["text_encoder"], for: "text encoding")
        var texts: [String] = guided ? [""] : []
        for p in prompts where !texts.contains(p) { texts.append(p) }
        let rows = (guided ? [String](repeating: "", count: prompts.count) : []) + prompts
        let encoded = texts.map { tokenizer.encode($0) }
        let enc = try model.build("text_encoder") { try CLIPTextModelWithProjection(scope: $0, config: try .init(try model.config("text_encoder"))) }
        let (embeds, hidden) = try enc(encoded.map(\.ids))                                                  // [T, E], [T, L, D]
        try requireFinite(embeds.toArray(), stage: "text_encoder", "the text embeddings")
        try requireFinite(hidden.toArray(), stage: "text_encoder", "the last hidden states")
        let index = rows.map { texts.firstIndex(of: $0)! }
        return TextConditioning(promptEmbeds: try Self.gather(embeds, index), hidden: try Self.gather(hidden, index),
                                mask: index.map { encoded[$0].mask.map { $0 != 0 } }, batch: prompts.count, guided: guided)
    }

    /// Rows `index` of a [T, …] tensor.
    static func gather(_ t: Tensor, _ index: [Int]) throws -> Tensor {
        if index == Array(0..<t.shape[0]) { return t }
        let per = t.count / t.shape[0], v = t.toArray()
        return try Tensor(shape: [index.count] + t.shape.dropFirst(), values: index.flatMap { v[($0 * per)..<(($0 + 1) * per)] })
    }
}
