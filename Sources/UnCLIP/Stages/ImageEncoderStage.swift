import Foundation

/// CLIPImageProcessor + CLIPVisionModelWithProjection: images → CLIP image embeddings [B, E]
/// (diffusers' UnCLIPImageVariationPipeline._encode_image).
public struct ImageEncoderStage {
    public let model: StageModel

    public init(_ model: StageModel) { self.model = model }

    public func callAsFunction(_ images: [PNGImage]) throws -> Tensor {
        try require(!images.isEmpty, "image encoder", "no images")
        try model.require(["image_encoder", "feature_extractor"], for: "image encoding")
        let processor = try CLIPImageProcessor(config: try model.config("feature_extractor"))
        // each distinct image once (`vary -n N` repeats one image N times)
        let first = images.indices.map { i in images.firstIndex(of: images[i])! }
        let distinct = Array(Set(first)).sorted()
        let pixels = try distinct.map { try processor(images[$0]) }                                           // D × [1, S, S, 3]
        let enc = try model.build("image_encoder") { try CLIPVisionModelWithProjection(scope: $0, config: try .init(try model.config("image_encoder"))) }
        // one image at a time: an embedding does not depend on the rest of its batch
        let embeds = try pixels.map { try enc($0).toArray() }                                                 // D × [E]
        for e in embeds { try requireFinite(e, stage: "image_encoder", "the image embedding") }
        let rows = first.map { embeds[distinct.firstIndex(of: $0)!] }                                         // B × [E]
        return try Tensor(shape: [rows.count, rows[0].count], values: rows.flatMap { $0 })
    }
}
