import Foundation

/// CLIP's byte-level BPE tokenizer, matching transformers' CLIPTokenizer (tokenizers backend):
/// special tokens (BOS, EOS and the pad token — Karlo's pad is "!", so every "!" in a prompt becomes id 0, as in
/// diffusers) split out of the raw text, leftmost-longest; NFC; runs of whitespace → one space; lowercase; the split
/// `<|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+` (the rest dropped), each
/// piece split again by the byte-level pre-tokenizer's GPT-2 pattern (which only changes the two literals);
/// UTF-8 bytes mapped to printable characters (GPT-2's table); BPE with "</w>" on each word's last symbol;
/// [BOS] ids [EOS], truncated to 75 content tokens and padded to `maxLength` with the pad id.
public final class CLIPTokenizer: @unchecked Sendable {
    public static let startOfText = "<|startoftext|>"
    public static let endOfText = "<|endoftext|>"
    public let maxLength: Int
    public let bos: Int32
    public let eos: Int32
    public let pad: Int32
    let encoder: [String: Int32]
    /// A merge of two adjacent symbols (symbol ids: the vocabulary's, then ids past it for strings the merges
    /// make that the vocabulary lacks — they become EOS, as the string-keyed reference maps unknown symbols):
    /// (left << 32 | right) → its rank (merges.txt line order) and the merged symbol.
    let pairs: [UInt64: (rank: UInt32, merged: Int32)]
    /// Each byte's symbol, and its word-final ("</w>") form.
    let byteSymbol: [Int32], finalByteSymbol: [Int32]
    let vocabularySize: Int
    let byteChars: [String]
    /// Special token strings matched in the raw text, with their ids.
    let specials: [([Unicode.Scalar], Int32)]
    private var cache: [String: [Int32]] = [:]
    private let lock = NSLock()

    public init(tokens: [String], merges: [String], bos: Int32, eos: Int32, pad: Int32, maxLength: Int = 77) throws {
        guard maxLength >= 2 else { throw UnCLIPError.invalidArgument(name: "maxLength", detail: "\(maxLength) must be ≥ 2") }
        var enc: [String: Int32] = [:]
        enc.reserveCapacity(tokens.count)
        for (i, t) in tokens.enumerated() { enc[t] = Int32(i) }
        for id in [bos, eos, pad] where id < 0 || Int(id) >= tokens.count {
            throw UnCLIPError.invalidArgument(name: "tokenizer", detail: "special token id \(id) is outside the \(tokens.count)-token vocabulary")
        }
        var extra: [String: Int32] = [:]
        func symbol(_ s: String) -> Int32 {
            if let i = enc[s] ?? extra[s] { return i }
            let i = Int32(tokens.count + extra.count)
            extra[s] = i
            return i
        }
        var p: [UInt64: (rank: UInt32, merged: Int32)] = [:]
        p.reserveCapacity(merges.count)
        for (i, m) in merges.enumerated() {
            let parts = m.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2 else { continue }  // never matched by a pair of symbols
            let (l, r) = (String(parts[0]), String(parts[1]))
            let key = UInt64(UInt32(bitPattern: symbol(l))) << 32 | UInt64(UInt32(bitPattern: symbol(r)))
            if p[key] == nil { p[key] = (UInt32(i), symbol(l + r)) }  // the first line of a repeated merge ranks
        }
        encoder = enc
        pairs = p
        vocabularySize = tokens.count
        self.bos = bos
        self.eos = eos
        self.pad = pad
        self.maxLength = maxLength
        let chars = CLIPTokenizer.bytesToUnicode()
        byteChars = chars
        specials = Set([bos, eos, pad]).sorted().map { (Array(tokens[Int($0)].unicodeScalars), $0) }
        for c in chars where enc[c] == nil || enc[c + "</w>"] == nil {
            throw UnCLIPError.invalidArgument(name: "tokenizer", detail: "vocabulary lacks the byte symbol \(c) (not a CLIP BPE vocabulary)")
        }
        byteSymbol = chars.map { enc[$0]! }
        finalByteSymbol = chars.map { enc[$0 + "</w>"]! }
    }

    /// From an unclip GGUF file's tokenizer metadata.
    public convenience init(file: GGUFFile) throws {
        guard let tokens = file.value(TokenizerFiles.tokensKey)?.strings, let merges = file.value(TokenizerFiles.mergesKey)?.strings,
              let bos = file.value(TokenizerFiles.bosKey)?.int, let eos = file.value(TokenizerFiles.eosKey)?.int,
              let pad = file.value(TokenizerFiles.padKey)?.int else {
            throw WeightsError(.malformed, file: file.path, "has no complete tokenizer (tokenizer.ggml.tokens/merges/bos/eos/padding ids)")
        }
        try self.init(tokens: tokens, merges: merges, bos: Int32(bos), eos: Int32(eos), pad: Int32(pad))
    }

    /// GPT-2's reversible byte → printable-character table.
    static func bytesToUnicode() -> [String] {
        var bs = Array(0x21...0x7e) + Array(0xa1...0xac) + Array(0xae...0xff)
        var cs = bs
        var n = 0
        for b in 0..<256 where !bs.contains(b) {
            bs.append(b)
            cs.append(256 + n)
            n += 1
        }
        var table = [String](repeating: "", count: 256)
        for (b, c) in zip(bs, cs) { table[b] = String(Character(Unicode.Scalar(UInt32(c))!)) }
        return table
    }

    /// Ids of `text` with [BOS]/[EOS], truncated and padded to maxLength, and the attention mask (1 = token).
    public func encode(_ text: String) -> (ids: [Int32], mask: [Int32]) {
        var content = contentIDs(text)
        if content.count > maxLength - 2 { content = Array(content.prefix(maxLength - 2)) }
        let ids = [bos] + content + [eos]
        let mask = [Int32](repeating: 1, count: ids.count) + [Int32](repeating: 0, count: maxLength - ids.count)
        return (ids + [Int32](repeating: pad, count: maxLength - ids.count), mask)
    }

    /// How many content tokens `text` has and how many `encode` keeps (maxLength − 2); nil when nothing is cut.
    public func truncation(_ text: String) -> (kept: Int, total: Int)? {
        let n = contentIDs(text).count
        return n > maxLength - 2 ? (maxLength - 2, n) : nil
    }

    /// Ids without special tokens, truncation or padding.
    public func contentIDs(_ text: String) -> [Int32] {
        var out: [Int32] = []
        for (segment, special) in splitSpecial(text) {
            if let special { out.append(special); continue }
            for word in preTokenize(normalize(segment)) { out += bpe(word) }
        }
        return out
    }

    /// The raw text cut around exact occurrences of the special tokens (leftmost, then longest), before
    /// normalisation.
    func splitSpecial(_ text: String) -> [(String, Int32?)] {
        let u = Array(text.unicodeScalars)
        var parts: [(String, Int32?)] = []
        var start = 0, i = 0
        func flush(_ end: Int) {
            if end > start {
                var seg = ""
                seg.unicodeScalars.append(contentsOf: u[start..<end])
                parts.append((seg, nil))
            }
        }
        while i < u.count {
            var hit: ([Unicode.Scalar], Int32)? = nil
            for sp in specials where i + sp.0.count <= u.count && (hit == nil || sp.0.count > hit!.0.count) {
                if Array(u[i..<(i + sp.0.count)]) == sp.0 { hit = sp }
            }
            if let hit {
                flush(i)
                parts.append(("", hit.1))
                i += hit.0.count
                start = i
            } else {
                i += 1
            }
        }
        flush(u.count)
        return parts
    }

    /// NFC, whitespace runs to one space, lowercase (per character, as the tokenizers library does).
    func normalize(_ s: String) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        var inSpace = false
        for u in s.precomposedStringWithCanonicalMapping.unicodeScalars {
            if u.properties.isWhitespace {
                if !inSpace { out.append(" ") }
                inSpace = true
                continue
            }
            inSpace = false
            out += u.properties.lowercaseMapping.unicodeScalars
        }
        return out
    }

    static func isLetter(_ u: Unicode.Scalar) -> Bool {
        switch u.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return false
        }
    }

    static func isNumber(_ u: Unicode.Scalar) -> Bool {
        switch u.properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: return true
        default: return false
        }
    }

    static let contractions: [[Unicode.Scalar]] = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"].map { Array($0.unicodeScalars) }
    static let literals: [[Unicode.Scalar]] = [startOfText, endOfText].map { Array($0.unicodeScalars) }

    /// The split regex's matches, leftmost-first in the regex's alternative order; unmatched text is dropped.
    func preTokenize(_ s: [Unicode.Scalar]) -> [[Unicode.Scalar]] {
        var words: [[Unicode.Scalar]] = []
        var i = 0
        func hasPrefix(_ p: [Unicode.Scalar]) -> Bool { i + p.count <= s.count && Array(s[i..<(i + p.count)]) == p }
        while i < s.count {
            let u = s[i]
            if u.properties.isWhitespace { i += 1; continue }
            if let lit = CLIPTokenizer.literals.first(where: hasPrefix) {
                // GPT-2's pattern then cuts "<|endoftext|>" into "<|", "endoftext", "|>".
                words += [Array(lit.prefix(2)), Array(lit.dropFirst(2).dropLast(2)), Array(lit.suffix(2))]
                i += lit.count
                continue
            }
            if let c = CLIPTokenizer.contractions.first(where: hasPrefix) {
                words.append(c)
                i += c.count
                continue
            }
            var j = i
            if CLIPTokenizer.isLetter(u) {
                while j < s.count, CLIPTokenizer.isLetter(s[j]) { j += 1 }
            } else if CLIPTokenizer.isNumber(u) {
                j += 1
            } else {
                while j < s.count, !s[j].properties.isWhitespace, !CLIPTokenizer.isLetter(s[j]), !CLIPTokenizer.isNumber(s[j]) { j += 1 }
            }
            words.append(Array(s[i..<j]))
            i = j
        }
        return words
    }

    /// Byte-level BPE of one word: the lowest-ranked adjacent pair merged first, leftmost first among equals — the
    /// result of CLIP's reference loop (merge every occurrence of the best pair, repeat; the tests' `referenceBPE`) for merges
    /// learned in order, where a pair containing a merge's product always ranks after it. A priority queue over a
    /// linked list of symbols makes it O(n log n) in the word's length (the reference is quadratic: 32 s for one
    /// 120,000-letter word).
    func bpe(_ word: [Unicode.Scalar]) -> [Int32] {
        var text = ""
        text.unicodeScalars.append(contentsOf: word)
        let cacheable = word.count <= Self.maxCachedWord
        if cacheable {
            lock.lock()
            if let hit = cache[text] { lock.unlock(); return hit }
            lock.unlock()
        }
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty else { return [] }
        let n = bytes.count
        var sym = bytes.map { byteSymbol[Int($0)] }
        sym[n - 1] = finalByteSymbol[Int(bytes[n - 1])]
        var next = Array(1...n), prev = Array(-1..<(n - 1)), alive = [Bool](repeating: true, count: n)
        var heap = MinHeap()
        func key(_ i: Int) -> UInt64 { UInt64(UInt32(bitPattern: sym[i])) << 32 | UInt64(UInt32(bitPattern: sym[next[i]])) }
        func push(_ i: Int) {
            guard next[i] < n, let m = pairs[key(i)] else { return }
            heap.push(UInt64(m.rank) << 32 | UInt64(i))
        }
        for i in 0..<(n - 1) { push(i) }
        while let top = heap.pop() {
            let i = Int(top & 0xFFFF_FFFF), rank = UInt32(top >> 32)
            // stale entries: the node was merged away, or its pair changed since it was queued
            guard alive[i], next[i] < n, let m = pairs[key(i)], m.rank == rank else { continue }
            let j = next[i]
            sym[i] = m.merged
            alive[j] = false
            next[i] = next[j]
            if next[j] < n { prev[next[j]] = i }
            if prev[i] >= 0 { push(prev[i]) }
            push(i)
        }
        var ids: [Int32] = []
        var i = 0
        while i < n {
            ids.append(Int(sym[i]) < vocabularySize ? sym[i] : eos)
            i = next[i]
        }
        if cacheable {
            lock.lock()
            if cache.count < 65536 { cache[text] = ids }
            lock.unlock()
        }
        return ids
    }

    /// Words longer than this are not cached (a hostile prompt must not fill memory with one huge key).
    static let maxCachedWord = 64
}

/// A binary min-heap of UInt64 keys (BPE's merge queue: rank in the high half, position in the low).
struct MinHeap {
    var a: [UInt64] = []

    mutating func push(_ v: UInt64) {
        a.append(v)
        var i = a.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            guard a[p] > a[i] else { break }
            a.swapAt(p, i)
            i = p
        }
    }

    mutating func pop() -> UInt64? {
        guard let top = a.first else { return nil }
        let last = a.removeLast()
        if a.isEmpty { return top }
        a[0] = last
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < a.count, a[l] < a[m] { m = l }
            if r < a.count, a[r] < a[m] { m = r }
            if m == i { break }
            a.swapAt(i, m)
            i = m
        }
        return top
    }
}
