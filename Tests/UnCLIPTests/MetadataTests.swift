import Foundation
import XCTest
@testable import UnCLIP

/// SHA-256, PNG text chunks (iTXt written, tEXt/iTXt read back) and the metadata's formats.
final class MetadataTests: XCTestCase {
    func testSHA256KnownAnswers() {
        // FIPS 180-4 examples (NIST CSRC "SHA256.pdf") and the empty message
        XCTAssertEqual(SHA256.hash(Array("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hash([]), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hash(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        // Streaming in odd pieces gives the one-shot digest.
        let data = (0..<100_003).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        var s = SHA256()
        var i = 0
        for n in [1, 63, 64, 65, 1000, 7] + [Int](repeating: 4096, count: 30) where i < data.count {
            s.update(Array(data[i..<min(i + n, data.count)]))
            i += n
        }
        if i < data.count { s.update(Array(data[i...])) }
        XCTAssertEqual(SHA256.hex(s.finalize()), SHA256.hash(data))
    }

    func testModelHashIsTheFilesSHA256AndCached() throws {
        let dir = try temporaryDirectory("modelhash")
        defer { try? FileManager.default.removeItem(at: dir) }
        let f = dir.appendingPathComponent("m.gguf")
        try Data([1, 2, 3]).write(to: f)
        XCTAssertEqual(try ModelHash.sha256(of: f.path), SHA256.hash([1, 2, 3]))
        XCTAssertTrue(FileManager.default.fileExists(atPath: f.path + ".sha256"))
        try Data([1, 2, 3, 4]).write(to: f)  // a changed file is hashed again (size differs)
        XCTAssertEqual(try ModelHash.sha256(of: f.path), SHA256.hash([1, 2, 3, 4]))
    }

    func testTextChunksRoundTripAsUTF8() throws {
        let dir = try temporaryDirectory("pngtext")
        defer { try? FileManager.default.removeItem(at: dir) }
        let p = dir.appendingPathComponent("t.png").path
        let img = try PNGImage(width: 2, height: 1, channels: 3, pixels: [1, 2, 3, 4, 5, 6])
        let text = [("prompt", "一只柯基 in a café, «naïve»"), ("empty", ""), ("multi", "line 1\nline 2")]
        try img.write(p, text: text)
        XCTAssertEqual(try PNGImage.read(p), img)
        let back = try PNGText.read(p)
        XCTAssertEqual(back.map(\.key), text.map(\.0))
        XCTAssertEqual(back.map(\.value), text.map(\.1))
        // the chunks are iTXt
        XCTAssertNotNil(try Data(contentsOf: URL(fileURLWithPath: p)).range(of: Data("iTXtprompt".utf8)))
        XCTAssertThrowsError(try img.write(p, text: [("", "x")]))
        XCTAssertThrowsError(try img.write(p, text: [("ключ", "x")]))
        XCTAssertThrowsError(try img.write(p, text: [("k", "a\u{0}b")]))
    }

    /// Truncated and mutated PNG streams give a typed error or a partial list, never a trap.
    func testTextParserSurvivesBadInput() throws {
        let dir = try temporaryDirectory("pngtextfuzz")
        defer { try? FileManager.default.removeItem(at: dir) }
        let p = dir.appendingPathComponent("t.png").path
        try PNGImage(width: 3, height: 2, channels: 3, pixels: [UInt8](repeating: 9, count: 18)).write(p, text: [("a", "b"), ("prompt", "x y")])
        let good = [UInt8](try Data(contentsOf: URL(fileURLWithPath: p)))
        var rng = TestRNG(seed: 99)
        for trial in 0..<2000 {
            var b = good
            if trial % 3 == 0 { b = Array(b.prefix(Int(rng.next() % UInt64(b.count)))) }
            for _ in 0..<(1 + Int(rng.next() % 4)) where !b.isEmpty { b[Int(rng.next() % UInt64(b.count))] = UInt8(truncatingIfNeeded: rng.next()) }
            _ = try? PNGText.parse(b, path: "fuzz")
        }
        XCTAssertThrowsError(try PNGText.parse([1, 2, 3], path: "x"))
    }

    func testA1111ParametersFormat() {
        var m = ImageMetadata()
        (m.prompt, m.seed, m.priorSteps, m.priorGuidance) = ("a cat, on a mat: red", 42, 25, 4)
        (m.decoderSteps, m.decoderGuidance, m.superResSteps, m.width, m.height) = (25, 8, 7, 256, 256)
        (m.modelName, m.modelSHA256) = ("karlo, v1: alpha", String(repeating: "ab", count: 32))
        XCTAssertEqual(m.a1111Parameters, "a cat, on a mat: red\nSteps: 25, Sampler: UnCLIP, CFG scale: 8.0, Seed: 42, Size: 256x256, "
                       + "Model hash: ababababab, Model: karlo  v1  alpha, Version: unclip \(UnCLIPVersion.string), Prior steps: 25, "
                       + "Prior CFG scale: 4.0, Super-res steps: 7")
        m.sampler = .ddim(.init(eta: 0.5, timestepSpacing: .trailing))
        XCTAssertTrue(m.a1111Parameters.contains("Sampler: DDIM,"), m.a1111Parameters)
        XCTAssertTrue(m.a1111Parameters.hasSuffix("Eta: 0.5, Timestep Spacing: trailing, Steps Offset: 0, Set Alpha To One: true"), m.a1111Parameters)
        // every value is a clean text chunk: no NUL or control characters, commas and colons out of A1111 values
        m.modelName = "evil,\u{0}name:\u{7}x"
        XCTAssertTrue(m.textChunks.allSatisfy { !$0.1.unicodeScalars.contains { $0.value == 0 || $0.value == 7 } })
        XCTAssertTrue(m.a1111Parameters.contains("Model: evil  name  x,"), m.a1111Parameters)
        m.decoderGuidance = 4.5
        XCTAssertTrue(m.a1111Parameters.contains("CFG scale: 4.5,"))
        XCTAssertTrue(m.xmp.contains("a cat, on a mat: red") && m.xmp.contains("trainedAlgorithmicMedia"))
        m.prompt = "<b>&"
        XCTAssertTrue(m.xmp.contains("&lt;b&gt;&amp;"))
    }
}
