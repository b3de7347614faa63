/// transformers' CLIPVisionModelWithProjection (models/clip/modeling_clip.py): patch convolution (no bias) with a
/// prepended class embedding and position embeddings, pre_layrnorm, the encoder layers, post_layernorm of the
/// class token, projection without bias.
public final class CLIPVisionModelWithProjection: @unchecked Sendable {
    public struct Config: Sendable {
        let tower: CLIPTowerConfig
        public let imageSize, patchSize, channels: Int

        public init(_ c: JSON) throws {
            tower = try CLIPTowerConfig(c, what: "image_encoder")
            guard let s = c["image_size"]?.int, let p = c["patch_size"]?.int, s > 0, p > 0, s % p == 0, s <= 4096 else {
                throw UnCLIPError.invalidArgument(name: "image_encoder config", detail: "image_size must be a multiple of patch_size")
            }
            imageSize = Int(s)
            patchSize = Int(p)
            channels = Int(c["num_channels"]?.int ?? 3)
        }
    }

    public let config: Config
    let patch: Conv2dWeight
    let classEmbedding, positionEmbedding, preG, preB, postG, postB: Tensor
    let layers: [CLIPEncoderLayer]
    let projection: LinearWeight

    public init(scope s: ComponentScope, config: Config) throws {
        self.config = config
        let p = "vision_model."
        patch = try s.conv2d(p + "embeddings.patch_embedding", stride: config.patchSize)
        classEmbedding = try s.tensor(p + "embeddings.class_embedding")
        positionEmbedding = try s.tensor(p + "embeddings.position_embedding.weight")
        let tokens = (config.imageSize / config.patchSize) * (config.imageSize / config.patchSize) + 1
        try require(positionEmbedding.shape == [tokens, config.tower.hiddenSize], "CLIPVisionModel", "position_embedding \(positionEmbedding.shape)")
        preG = try s.tensor(p + "pre_layrnorm.weight"); preB = try s.tensor(p + "pre_layrnorm.bias")
        postG = try s.tensor(p + "post_layernorm.weight"); postB = try s.tensor(p + "post_layernorm.bias")
        layers = try (0..<config.tower.layers).map {
            try CLIPEncoderLayer(scope: s, prefix: p + "encoder.layers.\($0).", heads: config.tower.heads, eps: config.tower.eps,
                                 activation: config.tower.activation)
        }
        projection = try s.linear("visual_projection")
    }

    /// pixel values NHWC [B, S, S, 3] (normalised) → image_embeds [B, projectionDim]
    public func callAsFunction(_ pixels: Tensor) throws -> Tensor {
        let (b, s, d) = (pixels.shape[0], config.imageSize, config.tower.hiddenSize)
        try require(pixels.rank == 4 && pixels.shape[1] == s && pixels.shape[2] == s && pixels.shape[3] == config.channels,
                    "CLIPVisionModel", "pixels \(pixels.shape) vs image_size \(s)")
        let patches = try Ops.conv2d(pixels, patch)                                                 // [B, S/p, S/p, D]
        let n = patches.shape[1] * patches.shape[2]
        var tokens = [Float]()
        tokens.reserveCapacity(b * (n + 1) * d)
        let pv = patches.toArray(), cls = classEmbedding.toArray()
        for i in 0..<b { tokens += cls; tokens += pv[(i * n * d)..<((i + 1) * n * d)] }           // [B, 1+N, D]
        var x = try Ops.addBroadcastRows(try Tensor(shape: [b, n + 1, d], values: tokens), positionEmbedding)
        x = try Ops.layerNorm(x, eps: config.tower.eps, gamma: preG, beta: preB)
        for layer in layers { x = try layer(x, causal: false) }                                     // [B, 1+N, D]
        let cls0 = try x.slice(dim: 1, 0..<1).contiguous().reshaped([b, d])                         // [B, D]
        return try Ops.linear(try Ops.layerNorm(cls0, eps: config.tower.eps, gamma: postG, beta: postB), projection)  // [B, P]
    }
}
