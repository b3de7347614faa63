/// diffusers' Timesteps + TimestepEmbedding (models/embeddings.py): the sinusoid of t (flip_sin_to_cos, shift 0)
/// through linear_1 → SiLU → linear_2.
struct TimestepEmbedding {
    let linear1, linear2: LinearWeight
    let channels: Int

    init(scope s: ComponentScope, prefix: String, channels: Int) throws {
        linear1 = try s.linear(prefix + ".linear_1")
        linear2 = try s.linear(prefix + ".linear_2")
        self.channels = channels
        try require(linear1.inFeatures == channels, "TimestepEmbedding", "\(prefix).linear_1 takes \(linear1.inFeatures) inputs, expected \(channels)")
    }

    /// t [B] → [B, out]
    func callAsFunction(_ t: [Float]) throws -> Tensor {
        let proj = try Ops.timestepEmbedding(t, dim: channels)                 // [B, channels]
        return try Ops.linear(try Ops.activation(try Ops.linear(proj, linear1), .silu), linear2)  // [B, out]
    }
}
