import Foundation

/// The CLIP tokenizer's files (vocab.json, merges.txt, tokenizer_config.json) as GGUF metadata, in llama.cpp's
/// key names: tokenizer.ggml.tokens (by id), tokenizer.ggml.merges, and the special token ids.
public enum TokenizerFiles {
    public static let modelKey = "tokenizer.ggml.model"
    public static let tokensKey = "tokenizer.ggml.tokens"
    public static let mergesKey = "tokenizer.ggml.merges"
    public static let bosKey = "tokenizer.ggml.bos_token_id"
    public static let eosKey = "tokenizer.ggml.eos_token_id"
    public static let padKey = "tokenizer.ggml.padding_token_id"

    public static func ggufMetadata(directory: String, config: JSON?) throws -> [(String, GGUFValue)] {
        let vocabPath = (directory as NSString).appendingPathComponent("vocab.json")
        let (_, vocab) = try ModelDirectory.readJSON(vocabPath)
        guard let entries = vocab.object, !entries.isEmpty else { throw WeightsError(.malformed, file: vocabPath, "is not a non-empty object of token → id") }
        var tokens = [String?](repeating: nil, count: entries.count)
        for (tok, idJSON) in entries {
            guard let id = idJSON.int, id >= 0, id < Int64(entries.count) else {
                throw WeightsError(.malformed, file: vocabPath, "token \(JSON.quote(tok)) has id \(idJSON.text), outside 0..<\(entries.count)")
            }
            guard tokens[Int(id)] == nil else { throw WeightsError(.malformed, file: vocabPath, "id \(id) is used twice") }
            tokens[Int(id)] = tok
        }
        let vocabByID = tokens.map { $0! }  // n distinct ids in 0..<n: every slot is filled
        let mergesPath = (directory as NSString).appendingPathComponent("merges.txt")
        guard let data = FileManager.default.contents(atPath: mergesPath) else { throw WeightsError(.io, file: mergesPath, "cannot read") }
        guard let text = String(validating: Array(data), as: UTF8.self) else { throw WeightsError(.malformed, file: mergesPath, "is not UTF-8") }
        var merges: [String] = []
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let l = line.hasSuffix("\r") ? String(line.dropLast()) : String(line)
            if l.isEmpty || (n == 0 && l.hasPrefix("#version")) { continue }
            let parts = l.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw WeightsError(.malformed, file: mergesPath, "line \(n + 1) is not two space-separated symbols")
            }
            merges.append(l)
        }
        func id(_ key: String, default d: String) throws -> UInt32 {
            let tok = config?[key]?.string ?? config?[key]?["content"]?.string ?? d
            guard let i = vocabByID.firstIndex(of: tok) else {
                throw WeightsError(.malformed, file: directory, "\(key) \(JSON.quote(tok)) is not in vocab.json")
            }
            return UInt32(i)
        }
        // Defaults: CLIP's (and Karlo's tokenizer_config: pad "!").
        return [
            (modelKey, .string("clip")),
            (tokensKey, .strings(vocabByID)),
            (mergesKey, .strings(merges)),
            (bosKey, .u32(try id("bos_token", default: "<|startoftext|>"))),
            (eosKey, .u32(try id("eos_token", default: "<|endoftext|>"))),
            (padKey, .u32(try id("pad_token", default: "<|endoftext|>"))),
        ]
    }
}
