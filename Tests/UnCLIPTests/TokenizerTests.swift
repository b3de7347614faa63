import Foundation
import XCTest
@testable import UnCLIP

/// The BPE tokenizer against transformers' CLIPTokenizer on Fixtures/tokenizer-corpus.json (1,251 strings made by
/// weights-tools/reference/make_tokenizer_corpus.py), with the vocabulary embedded by the converter.
final class TokenizerTests: XCTestCase {
    nonisolated(unsafe) static var shared: CLIPTokenizer?

    func tokenizer() throws -> CLIPTokenizer {
        if let t = TokenizerTests.shared { return t }
        let dir = try Fixtures.url("tiny-karlo").appendingPathComponent("tokenizer").path
        let meta = try TokenizerFiles.ggufMetadata(directory: dir, config: nil)
        let d = Dictionary(uniqueKeysWithValues: meta)
        let t = try CLIPTokenizer(tokens: d[TokenizerFiles.tokensKey]!.strings!, merges: d[TokenizerFiles.mergesKey]!.strings!,
                                  bos: 49406, eos: 49407, pad: 0)
        TokenizerTests.shared = t
        return t
    }

    func testCorpusMatchesTransformers() throws {
        let tok = try tokenizer()
        let data = try Data(contentsOf: try Fixtures.url("tokenizer-corpus.json"))
        let json = try JSON.parse(Array(data))
        let entries = json["entries"]!.array!
        XCTAssertGreaterThanOrEqual(entries.count, 1000)
        var failures = 0
        for e in entries {
            let text = e["text"]!.string!
            let want = e["ids"]!.array!.map { Int32($0.int!) }
            let (ids, mask) = tok.encode(text)
            let n = Int(mask.reduce(0, +))
            if Array(ids.prefix(n)) != want || ids.dropFirst(n).contains(where: { $0 != 0 }) || ids.count != 77 {
                failures += 1
                if failures <= 10 { XCTFail("\(text.debugDescription): got \(Array(ids.prefix(n))), want \(want)") }
            }
        }
        XCTAssertEqual(failures, 0, "\(failures) of \(entries.count) strings differ")
    }

    /// The priority-queue BPE against the reference loop (merge every occurrence of the best pair, repeat; CLIP's
    /// bpe()) on seeded random words: letters, repeats and arbitrary scalars, up to 400 symbols.
    func testFastBPEMatchesTheReferenceLoop() throws {
        let tok = try tokenizer()
        let dir = try Fixtures.url("tiny-karlo").appendingPathComponent("tokenizer").path
        let merges = Dictionary(uniqueKeysWithValues: try TokenizerFiles.ggufMetadata(directory: dir, config: nil))[TokenizerFiles.mergesKey]!.strings!
        var ranks: [String: Int] = [:]
        for (i, m) in merges.enumerated() where ranks[m] == nil { ranks[m] = i }
        let g = SeededNoise(seed: 16)
        func next(_ n: Int) -> Int { Int(g.next() % UInt64(n)) }
        let alphabets: [[Unicode.Scalar]] = [Array("abcdefghijklmnopqrstuvwxyz".unicodeScalars), Array("ab".unicodeScalars),
                                             Array("aeioué".unicodeScalars), Array("xyz0123!?".unicodeScalars)]
        for k in 0..<400 {
            let alphabet = alphabets[k % alphabets.count]
            let word: [Unicode.Scalar] = k % 10 == 9
                ? (0..<(1 + next(40))).map { _ in Unicode.Scalar(UInt32(0x21 + next(0x3000)))! }.filter { !$0.properties.isWhitespace }
                : (0..<(1 + next(400))).map { _ in alphabet[next(alphabet.count)] }
            XCTAssertEqual(tok.bpe(word), referenceBPE(tok, ranks, word), String(String.UnicodeScalarView(word)))
        }
    }

    func testTruncationIsReported() throws {
        let tok = try tokenizer()
        XCTAssertNil(tok.truncation("a red circle"))
        XCTAssertNil(tok.truncation(String(repeating: "cat ", count: 75)))
        let t = try XCTUnwrap(tok.truncation(String(repeating: "cat ", count: 80)))
        XCTAssertEqual(t.kept, 75)
        XCTAssertEqual(t.total, 80)
    }

    func testPipelinePromptIDs() throws {
        let tok = try tokenizer()
        XCTAssertEqual(tok.encode("").ids.prefix(3), [49406, 49407, 0])
        XCTAssertEqual(tok.encode("").mask.reduce(0, +), 2)
        XCTAssertEqual(tok.encode(String(repeating: "cat ", count: 200)).ids.last, 49407)  // truncated: EOS at 76
    }
}

/// CLIP's reference BPE (quadratic in the word's length): the lowest-ranked adjacent pair of strings, every
/// occurrence merged left to right, repeated; symbols → ids at the end (unknown ones → EOS).
func referenceBPE(_ tok: CLIPTokenizer, _ ranks: [String: Int], _ word: [Unicode.Scalar]) -> [Int32] {
    var text = ""
    text.unicodeScalars.append(contentsOf: word)
    var symbols = Array(text.utf8).map { tok.byteChars[Int($0)] }
    guard !symbols.isEmpty else { return [] }
    symbols[symbols.count - 1] += "</w>"
    while symbols.count > 1 {
        var best = Int.max, at = -1
        for k in 0..<(symbols.count - 1) {
            if let r = ranks[symbols[k] + " " + symbols[k + 1]], r < best { best = r; at = k }
        }
        if at < 0 { break }
        let (a, b) = (symbols[at], symbols[at + 1])
        var merged: [String] = []
        var k = 0
        while k < symbols.count {
            if k < symbols.count - 1, symbols[k] == a, symbols[k + 1] == b {
                merged.append(a + b)
                k += 2
            } else {
                merged.append(symbols[k])
                k += 1
            }
        }
        symbols = merged
    }
    return symbols.map { tok.encoder[$0] ?? tok.eos }
}
