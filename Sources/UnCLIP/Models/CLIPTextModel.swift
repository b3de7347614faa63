/// transformers' CLIPTextModelWithProjection (models/clip/modeling_clip.py): token + position embeddings, pre-LN
/// transformer layers with causal self-attention and a quick_gelu MLP, final LayerNorm; the pooled output is the
/// hidden state at the first EOS token, projected without bias.
public final class CLIPTextModelWithProjection: @unchecked Sendable {
    public struct Config: Sendable {
        let tower: CLIPTowerConfig
        public let maxPositions: Int
        public let eosTokenID: Int32
        public var hiddenSize: Int { tower.hiddenSize }

        public init(_ c: JSON) throws {
            tower = try CLIPTowerConfig(c, what: "text_encoder")
            guard let p = c["max_position_embeddings"]?.int, p > 0, p < 1 << 16 else {
                throw UnCLIPError.invalidArgument(name: "text_encoder config", detail: "max_position_embeddings is missing or invalid")
            }
            maxPositions = Int(p)
            eosTokenID = Int32(c["eos_token_id"]?.int ?? 49407)
        }
    }

    public let config: Config
    let tokenEmbedding, positionEmbedding, finalLNg, finalLNb: Tensor
    let layers: [CLIPEncoderLayer]
    let projection: LinearWeight

    public init(scope s: ComponentScope, config: Config) throws {
        self.config = config
        tokenEmbedding = try s.tensor("text_model.embeddings.token_embedding.weight")
        positionEmbedding = try s.tensor("text_model.embeddings.position_embedding.weight")
        try require(positionEmbedding.shape == [config.maxPositions, config.hiddenSize], "CLIPTextModel", "position_embedding \(positionEmbedding.shape)")
        layers = try (0..<config.tower.layers).map {
            try CLIPEncoderLayer(scope: s, prefix: "text_model.encoder.layers.\($0).", heads: config.tower.heads, eps: config.tower.eps,
                                 activation: config.tower.activation)
        }
        finalLNg = try s.tensor("text_model.final_layer_norm.weight")
        finalLNb = try s.tensor("text_model.final_layer_norm.bias")
        projection = try s.linear("text_projection")
    }

    /// ids [B][L] → (text_embeds [B, projectionDim], last_hidden_state [B, L, hidden]).
    public func callAsFunction(_ ids: [[Int32]]) throws -> (textEmbeds: Tensor, lastHiddenState: Tensor) {
        let b = ids.count, l = ids.first?.count ?? 0, d = config.hiddenSize
        guard b > 0, l > 0, l <= config.maxPositions, ids.allSatisfy({ $0.count == l }) else {
            throw UnCLIPError.invalidArgument(name: "token ids", detail: "need B ≥ 1 rows of the same length 1...\(config.maxPositions)")
        }
        var x = try Ops.embedding(tokenEmbedding, ids: ids.flatMap { $0 }).reshaped([b, l, d])        // [B, L, D]
        x = try Ops.addBroadcastRows(x, try positionEmbedding.slice(dim: 0, 0..<l).contiguous())      // [B, L, D]
        for layer in layers { x = try layer(x, causal: true) }                                       // [B, L, D]
        let last = try Ops.layerNorm(x, eps: config.tower.eps, gamma: finalLNg, beta: finalLNb)      // [B, L, D]
        // pooled = hidden state at the first EOS (transformers: argmax(input_ids == eos_token_id)); configs with the
        // legacy eos_token_id 2 (copied from openai/clip-vit-large-patch14 before transformers PR #24773) take
        // argmax(input_ids) instead, as transformers does — the same position whenever EOS is the largest id present.
        var pooled = [Float]()
        pooled.reserveCapacity(b * d)
        let all = last.toArray()
        for (r, row) in ids.enumerated() {
            let at = config.eosTokenID == 2 ? row.indices.max { row[$0] < row[$1] || (row[$0] == row[$1] && $0 > $1) } ?? 0
                                            : row.firstIndex(of: config.eosTokenID) ?? 0
            pooled += all[((r * l + at) * d)..<((r * l + at + 1) * d)]
        }
        let embeds = try Ops.linear(try Tensor(shape: [b, d], values: pooled), projection)           // [B, P]
        return (embeds, last)
    }
}
