import Foundation
import XCTest
@testable import UnCLIP

func temporaryDirectory(_ tag: String) throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("unclip-\(tag)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}

final class JSONTests: XCTestCase {
    func testParsesValuesExactly() throws {
        let j = try JSON.parse(#"{"a": [1, -2.5e3, true, null, "x\u00e9\ud83d\ude00\n"], "b": {"c": 9007199254740993}}"#)
        XCTAssertEqual(j["a"]?.array?.count, 5)
        XCTAssertEqual(j["a"]?.array?[1].double, -2500)
        XCTAssertEqual(j["a"]?.array?[4].string, "xé😀\n")
        XCTAssertEqual(j["b"]?["c"]?.int, 9007199254740993)  // kept exact, beyond Double's 2^53
        XCTAssertEqual(try JSON.parse(j.text), j)
    }

    func testRefusesInvalidInput() {
        for bad in ["", "{", "[1,]", "{\"a\":1,}", "{\"a\":1,\"a\":2}", "01", "1.", "-", "\"\\x\"", "\"\u{01}\"", "[1] 2",
                    "\"\\ud800\"", "nul", "{1:2}", String(repeating: "[", count: 100) + String(repeating: "]", count: 100)] {
            XCTAssertThrowsError(try JSON.parse(bad), "accepted \(bad.debugDescription)")
        }
        XCTAssertThrowsError(try JSON.parse([0x22, 0xff, 0xfe, 0x22]))  // not UTF-8
    }
}

final class SafeTensorsTests: XCTestCase {
    func testRoundTripAndDTypes() throws {
        let dir = try temporaryDirectory("st")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("a.safetensors").path
        try SafeTensorsWriter.write(path, tensors: [("w", [2, 3], [1, 2, 3, 4, 5, 6]), ("b", [3], [7, 8, 9]), ("e", [0, 4], [])],
                                    metadata: [("format", "pt")])
        let f = try SafeTensorsFile(path: path)
        XCTAssertEqual(f.tensors.map(\.name), ["w", "b", "e"])
        XCTAssertEqual(try f.readFloats("w"), [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(try f.readFloats("e"), [])
        XCTAssertEqual(f.metadata.first?.1, "pt")
        XCTAssertThrowsError(try f.readFloats("missing"))
    }

    /// Builds a file from a raw header and data (for malformed inputs).
    static func raw(_ header: String, data: [UInt8] = [], lengthOverride: UInt64? = nil) -> Data {
        var d = Data()
        withUnsafeBytes(of: (lengthOverride ?? UInt64(header.utf8.count)).littleEndian) { d.append(contentsOf: $0) }
        d.append(contentsOf: Array(header.utf8))
        d.append(contentsOf: data)
        return d
    }

    func testMalformedFilesGiveTypedErrors() throws {
        let dir = try temporaryDirectory("stbad")
        defer { try? FileManager.default.removeItem(at: dir) }
        let cases: [(String, Data, WeightsError.Kind)] = [
            ("short", Data([1, 2, 3]), .malformed),
            ("huge header length", SafeTensorsTests.raw("{}", lengthOverride: 1 << 40), .malformed),
            ("not json", SafeTensorsTests.raw("{nope"), .malformed),
            ("not object", SafeTensorsTests.raw("[1]"), .malformed),
            ("unknown dtype", SafeTensorsTests.raw(#"{"t":{"dtype":"Q9","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), .unsupported),
            ("negative shape", SafeTensorsTests.raw(#"{"t":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), .tensor),
            ("overflowing shape", SafeTensorsTests.raw(#"{"t":{"dtype":"F32","shape":[2147483647,2147483647,2147483647],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), .tensor),
            ("size mismatch", SafeTensorsTests.raw(#"{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), .tensor),
            ("past the end", SafeTensorsTests.raw(#"{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: [0, 0, 0, 0]), .tensor),
            ("overlap", SafeTensorsTests.raw(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), .tensor),
            ("duplicate", SafeTensorsTests.raw(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), .malformed),
            ("non-utf8 name", { var d = SafeTensorsTests.raw(#"{"\#u{00}":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]); d[10] = 0xff; return d }(), .malformed),
        ]
        for (what, data, kind) in cases {
            let p = dir.appendingPathComponent("x.safetensors").path
            try data.write(to: URL(fileURLWithPath: p))
            XCTAssertThrowsError(try SafeTensorsFile(path: p), what) { e in
                guard let w = e as? WeightsError else { return XCTFail("\(what): untyped \(e)") }
                XCTAssertEqual(w.kind, kind, "\(what): \(w)")
                XCTAssertEqual(w.file, p)
            }
        }
        XCTAssertThrowsError(try SafeTensorsFile(path: dir.path)) { XCTAssertEqual(($0 as? WeightsError)?.kind, .io) }
    }
}

/// A small GGUF with three tensor types and four metadata kinds.
func makeSmallGGUF(_ path: String) throws {
        let w = try GGUFWriter(path: path)
        let tensors = [GGUFWriter.Tensor(name: "a.weight", type: .f32, shape: [3, 5]),
                       GGUFWriter.Tensor(name: "b.q", type: .i8, shape: [2, 64]),
                       GGUFWriter.Tensor(name: "c", type: .f16, shape: [7])]
        try w.write(metadata: [("general.architecture", .string("unclip")), ("x.list", .strings(["p", "q"])),
                               ("x.int", .u32(7)), ("x.ints", .ints([1, -2]))],
                    tensors: tensors) { i, buf in
            for k in 0..<buf.count { buf[k] = UInt8(truncatingIfNeeded: k * 7 + i) }
        }
}

final class GGUFTests: XCTestCase {
    func makeFile(_ path: String) throws { try makeSmallGGUF(path) }

    func testWriteReadRoundTrip() throws {
        let dir = try temporaryDirectory("gguf")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("m.gguf").path
        try makeFile(path)
        let g = try GGUFFile(path: path)
        XCTAssertEqual(g.value("general.architecture")?.string, "unclip")
        XCTAssertEqual(g.value("x.list")?.strings, ["p", "q"])
        XCTAssertEqual(g.value("x.ints")?.ints, [1, -2])
        XCTAssertEqual(g.tensors.map(\.shape), [[3, 5], [2, 64], [7]])
        for t in g.tensors { XCTAssertEqual(t.offset % g.alignment, 0) }
        let b = g.tensor("b.q")!
        var bytes = [UInt8](repeating: 0, count: b.byteCount)
        try bytes.withUnsafeMutableBytes { try g.read(b, into: $0.baseAddress!) }
        XCTAssertEqual(bytes, (0..<128).map { UInt8(truncatingIfNeeded: $0 * 7 + 1) })
        let m = try g.map([b])!
        XCTAssertEqual(Array(UnsafeRawBufferPointer(start: m.data, count: m.count)), bytes)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["m.gguf"])  // no temp left
    }

    func testMalformedFilesGiveTypedErrors() throws {
        let dir = try temporaryDirectory("ggufbad")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("m.gguf").path
        try makeFile(path)
        let good = try Data(contentsOf: URL(fileURLWithPath: path))
        func check(_ what: String, _ d: Data) throws {
            let p = dir.appendingPathComponent("bad.gguf").path
            try d.write(to: URL(fileURLWithPath: p))
            XCTAssertThrowsError(try GGUFFile(path: p), what) { e in XCTAssertNotNil(e as? WeightsError, "\(what): \(e)") }
        }
        var d = good; d[0] = 0x00; try check("magic", d)
        d = good; d[4] = 2; try check("version", d)
        try check("truncated header", good.prefix(40))
        try check("truncated data", good.prefix(good.count - 24))  // past the 18 bytes of final padding
        d = good; d.replaceSubrange(8..<16, with: [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]); try check("tensor count", d)
        d = good; d.replaceSubrange(24..<32, with: [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]); try check("key length", d)
    }

    func testOutputPathThatCannotBeWritten() throws {
        XCTAssertThrowsError(try GGUFWriter(path: "/nonexistent-dir/x.gguf")) { XCTAssertEqual(($0 as? WeightsError)?.kind, .io) }
    }
}

/// Seeded mutation fuzzing of the two binary parsers: any input must give a typed error or a valid parse, never a
/// crash or a hang. Bounded iterations so it runs in CI; a crashing input found here belongs in the cases above.
final class ParserFuzzTests: XCTestCase {
    func mutate(_ seed: Data, _ rng: inout TestRNG) -> Data {
        var d = seed
        for _ in 0..<(1 + Int(rng.next() % 4)) {
            guard !d.isEmpty else { break }
            let at = Int(rng.next() % UInt64(d.count))
            switch rng.next() % 6 {
            case 0: d[at] ^= UInt8(1 << (rng.next() % 8))                                    // bit flip
            case 1: d[at] = UInt8(truncatingIfNeeded: rng.next())                           // byte
            case 2: d = d.prefix(at)                                                         // truncate
            case 3: d.insert(contentsOf: (0..<Int(rng.next() % 16)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, at: at)
            case 4: let n = min(8, d.count - at); d.replaceSubrange(at..<(at + n), with: [UInt8](repeating: 0xff, count: n))  // huge field
            default: d.remove(at: at)
            }
        }
        return d
    }

    func fuzz(_ name: String, seed: Data, iterations: Int, parse: (String) throws -> Void) throws {
        let dir = try temporaryDirectory("fuzz-\(name)")
        defer { try? FileManager.default.removeItem(at: dir) }
        var rng = TestRNG(seed: 0xF022)
        let p = dir.appendingPathComponent("in").path
        var accepted = 0, refused = 0
        for _ in 0..<iterations {
            try mutate(seed, &rng).write(to: URL(fileURLWithPath: p))
            do { try parse(p); accepted += 1 } catch is WeightsError { refused += 1 } catch {
                XCTFail("\(name): untyped error \(error)")
            }
        }
        XCTAssertGreaterThan(refused, iterations / 4, "the mutations should break most inputs")
        XCTAssertEqual(accepted + refused, iterations)
    }

    func testSafeTensorsHeaderFuzz() throws {
        let dir = try temporaryDirectory("fuzzseed")
        defer { try? FileManager.default.removeItem(at: dir) }
        let p = dir.appendingPathComponent("s.safetensors").path
        try SafeTensorsWriter.write(p, tensors: [("w", [2, 3], [1, 2, 3, 4, 5, 6]), ("b", [3], [7, 8, 9])], metadata: [("k", "v")])
        try fuzz("safetensors", seed: try Data(contentsOf: URL(fileURLWithPath: p)), iterations: 3000) { path in
            let f = try SafeTensorsFile(path: path)
            for t in f.tensors where t.dtype.isFloat { _ = try f.readFloats(t.name) }
        }
    }

    func testGGUFReaderFuzz() throws {
        let dir = try temporaryDirectory("fuzzseed2")
        defer { try? FileManager.default.removeItem(at: dir) }
        let p = dir.appendingPathComponent("m.gguf").path
        try makeSmallGGUF(p)
        try fuzz("gguf", seed: try Data(contentsOf: URL(fileURLWithPath: p)), iterations: 3000) { path in
            let g = try GGUFFile(path: path)
            for t in g.tensors where t.byteCount > 0 { _ = try g.map([t]) }
        }
    }
}
