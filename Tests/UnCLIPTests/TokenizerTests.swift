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

    func testPipelinePromptIDs() throws {
        let tok = try tokenizer()
        XCTAssertEqual(tok.encode("").ids.prefix(3), [49406, 49407, 0])
        XCTAssertEqual(tok.encode("").mask.reduce(0, +), 2)
        XCTAssertEqual(tok.encode(String(repeating: "cat ", count: 200)).ids.last, 49407)  // truncated: EOS at 76
    }
}
