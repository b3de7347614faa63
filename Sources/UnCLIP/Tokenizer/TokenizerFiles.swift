import Foundation

/// The CLIP tokenizer's files as GGUF metadata, in llama.cpp's key names: tokenizer.ggml.tokens (by id),
/// tokenizer.ggml.merges, and the special token ids. Reads both layouts hub folders come in: the tokenizers
/// library's `tokenizer.json` (all transformers 5 saves) and the older `vocab.json` + `merges.txt`; tokenizer.json is
/// preferred, and when both are there they must agree (same vocabulary, same merges). The special tokens come from
/// `tokenizer_config.json`, then `special_tokens_map.json`, then CLIP's defaults.
public enum TokenizerFiles {
    public static let modelKey = "tokenizer.ggml.model"
    public static let tokensKey = "tokenizer.ggml.tokens"
    public static let mergesKey = "tokenizer.ggml.merges"
    public static let bosKey = "tokenizer.ggml.bos_token_id"
    public static let eosKey = "tokenizer.ggml.eos_token_id"
    public static let padKey = "tokenizer.ggml.padding_token_id"

    /// A BPE vocabulary by id and its merges ("left right", in rank order).
    struct BPE: Equatable {
        var tokens: [String]
        var merges: [String]
    }

    public static func ggufMetadata(directory: String, config: JSON?) throws -> [(String, GGUFValue)] {
        func path(_ f: String) -> String { (directory as NSString).appendingPathComponent(f) }
        let fm = FileManager.default
        let fast = fm.fileExists(atPath: path("tokenizer.json")) ? try readTokenizerJSON(path("tokenizer.json")) : nil
        let slow = fm.fileExists(atPath: path("vocab.json")) && fm.fileExists(atPath: path("merges.txt"))
            ? try BPE(tokens: readVocab(path("vocab.json")), merges: readMerges(path("merges.txt"))) : nil
        guard let bpe = fast ?? slow else {
            throw WeightsError(.malformed, file: directory, "has neither tokenizer.json nor vocab.json + merges.txt")
        }
        if let fast, let slow, fast != slow {
            let what = fast.tokens != slow.tokens ? "vocabularies (\(fast.tokens.count) and \(slow.tokens.count) tokens\(firstDifference(fast.tokens, slow.tokens)))"
                : "merges (\(fast.merges.count) and \(slow.merges.count)\(firstDifference(fast.merges, slow.merges)))"
            throw WeightsError(.malformed, file: directory,
                               "tokenizer.json and vocab.json/merges.txt disagree on their \(what): remove the stale pair, or save the tokenizer again")
        }
        let specialMap = fm.fileExists(atPath: path("special_tokens_map.json")) ? try ModelDirectory.readJSON(path("special_tokens_map.json")).1 : nil
        func id(_ key: String, default d: String) throws -> UInt32 {
            func name(_ j: JSON?) -> String? { j?[key]?.string ?? j?[key]?["content"]?.string }
            let tok = name(config) ?? name(specialMap) ?? d
            guard let i = bpe.tokens.firstIndex(of: tok) else {
                throw WeightsError(.malformed, file: directory, "\(key) \(JSON.quote(tok)) is not in the tokenizer's vocabulary")
            }
            return UInt32(i)
        }
        // Defaults: CLIP's (Karlo's tokenizer_config sets pad "!").
        return [
            (modelKey, .string("clip")),
            (tokensKey, .strings(bpe.tokens)),
            (mergesKey, .strings(bpe.merges)),
            (bosKey, .u32(try id("bos_token", default: "<|startoftext|>"))),
            (eosKey, .u32(try id("eos_token", default: "<|endoftext|>"))),
            (padKey, .u32(try id("pad_token", default: "<|endoftext|>"))),
        ]
    }

    static func firstDifference(_ a: [String], _ b: [String]) -> String {
        guard let i = zip(a, b).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset else { return "" }
        return "; the first difference is at \(i): \(JSON.quote(a[i])) vs \(JSON.quote(b[i]))"
    }

    /// token → id object → tokens by id (ids must be exactly 0..<n).
    static func tokensByID(_ entries: [(String, JSON)], file: String, extra: [(String, Int64)] = []) throws -> [String] {
        var byID: [Int64: String] = [:]
        for (tok, idJSON) in entries {
            guard let id = idJSON.int, id >= 0 else { throw WeightsError(.malformed, file: file, "token \(JSON.quote(tok)) has id \(idJSON.text), not a non-negative integer") }
            guard byID[id] == nil else { throw WeightsError(.malformed, file: file, "id \(id) is used twice") }
            byID[id] = tok
        }
        for (tok, id) in extra {
            if let have = byID[id] {
                guard have == tok else { throw WeightsError(.malformed, file: file, "added token \(JSON.quote(tok)) has id \(id), which the vocabulary gives \(JSON.quote(have))") }
            } else {
                guard id >= 0 else { throw WeightsError(.malformed, file: file, "added token \(JSON.quote(tok)) has a negative id") }
                byID[id] = tok
            }
        }
        guard !byID.isEmpty else { throw WeightsError(.malformed, file: file, "has an empty vocabulary") }
        let n = byID.count
        guard let top = byID.keys.max(), top == Int64(n - 1) else {
            throw WeightsError(.malformed, file: file, "its \(n) token ids are not 0..<\(n) (the largest is \(byID.keys.max() ?? 0))")
        }
        return (0..<n).map { byID[Int64($0)]! }
    }

    static func readVocab(_ file: String) throws -> [String] {
        let (_, vocab) = try ModelDirectory.readJSON(file)
        guard let entries = vocab.object else { throw WeightsError(.malformed, file: file, "is not an object of token → id") }
        return try tokensByID(entries, file: file)
    }

    static func readMerges(_ file: String) throws -> [String] {
        guard let data = FileManager.default.contents(atPath: file) else { throw WeightsError(.io, file: file, "cannot read") }
        guard let text = String(validating: Array(data), as: UTF8.self) else { throw WeightsError(.malformed, file: file, "is not UTF-8") }
        var merges: [String] = []
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let l = line.hasSuffix("\r") ? String(line.dropLast()) : String(line)
            if l.isEmpty || (n == 0 && l.hasPrefix("#version")) { continue }
            let parts = l.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw WeightsError(.malformed, file: file, "line \(n + 1) is not two space-separated symbols")
            }
            merges.append(l)
        }
        return merges
    }

    /// The tokenizers library's file: model.type BPE, model.vocab (token → id), model.merges ("a b" strings, or
    /// ["a", "b"] pairs since tokenizers 0.20), added_tokens ({id, content}).
    static func readTokenizerJSON(_ file: String) throws -> BPE {
        let (_, json) = try ModelDirectory.readJSON(file)
        guard let model = json["model"] else { throw WeightsError(.malformed, file: file, "has no \"model\" object") }
        guard model["type"]?.string == "BPE" else {
            throw WeightsError(.unsupported, file: file, "model.type is \(model["type"]?.text ?? "missing"); CLIP's tokenizer is BPE")
        }
        if let suffix = model["end_of_word_suffix"]?.string, suffix != "</w>" {
            throw WeightsError(.unsupported, file: file, "model.end_of_word_suffix is \(JSON.quote(suffix)); CLIP's BPE marks word ends with \"</w>\"")
        }
        guard let vocab = model["vocab"]?.object else { throw WeightsError(.malformed, file: file, "model.vocab is not an object of token → id") }
        var added: [(String, Int64)] = []
        for t in json["added_tokens"]?.array ?? [] {
            guard let id = t["id"]?.int, let content = t["content"]?.string else {
                throw WeightsError(.malformed, file: file, "an added_tokens entry lacks its id or content")
            }
            added.append((content, id))
        }
        let tokens = try tokensByID(vocab, file: file, extra: added)
        guard let list = model["merges"]?.array else { throw WeightsError(.malformed, file: file, "model.merges is not a list") }
        var merges: [String] = []
        merges.reserveCapacity(list.count)
        for (n, m) in list.enumerated() {
            if let s = m.string {
                let parts = s.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                    throw WeightsError(.malformed, file: file, "merge \(n) \(JSON.quote(s)) is not two space-separated symbols")
                }
                merges.append(s)
            } else if let pair = m.array, pair.count == 2, let a = pair[0].string, let b = pair[1].string, !a.isEmpty, !b.isEmpty,
                      !a.contains(" "), !b.contains(" ") {
                merges.append(a + " " + b)
            } else {
                throw WeightsError(.malformed, file: file, "merge \(n) is neither \"a b\" nor [\"a\", \"b\"] (symbols without spaces)")
            }
        }
        return BPE(tokens: tokens, merges: merges)
    }
}
