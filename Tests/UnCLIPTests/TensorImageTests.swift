import Foundation
import XCTest
@testable import UnCLIP

final class TensorImageTests: XCTestCase {
    func testTensorShapesViewsAndErrors() throws {
        let t = try Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(try t.reshaped([3, 2]).toArray(), [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(try t.slice(dim: 1, 1..<3).toArray(), [2, 3, 5, 6])
        XCTAssertFalse(try t.slice(dim: 1, 1..<3).isContiguous)
        XCTAssertThrowsError(try t.reshaped([4, 2]))
        XCTAssertThrowsError(try t.slice(dim: 2, 0..<1))
        XCTAssertThrowsError(try Tensor(shape: [2, 2], values: [1, 2, 3]))
        XCTAssertThrowsError(try Tensor(zeros: [-1, 4]))
        XCTAssertThrowsError(try Tensor(zeros: [Int.max / 2, 4]))
    }

    func testArenaAlignsTracksAndRefusesOverflow() throws {
        let a = Arena(capacity: 1024)
        let x = try a.tensor([3])
        let y = try a.tensor([5])
        XCTAssertEqual(Int(bitPattern: x.storage.raw) % 64, 0)
        XCTAssertEqual(Int(bitPattern: y.storage.raw) % 64, 0)
        XCTAssertEqual(a.used, 64 + 20)
        XCTAssertThrowsError(try a.tensor([1000]))
        a.reset()
        XCTAssertEqual(a.used, 0)
        XCTAssertEqual(a.highWater, 84)
    }

    func testRuntimeSettingsValidate() throws {
        XCTAssertThrowsError(try Runtime.setThreads(0))
        XCTAssertThrowsError(try Runtime.setThreads(5000))
        XCTAssertTrue(Runtime.supportedPaths.contains(.ref))
        XCTAssertNotNil(KernelPath(name: "avx512"))
        XCTAssertNil(KernelPath(name: "sse9"))
        for p in KernelPath.allCases where !Runtime.supportedPaths.contains(p) {
            XCTAssertThrowsError(try Runtime.setPath(p), "\(p) is not supported here and must be refused")
        }
    }

    func testPNGRoundTripKeepsPixelsAndText() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("unclip-png-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for channels in [3, 4] {
            var rng = TestRNG(seed: UInt64(channels))
            let px = (0..<(7 * 5 * channels)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let img = try PNGImage(width: 7, height: 5, channels: channels, pixels: px)
            let path = dir.appendingPathComponent("rt\(channels).png").path
            try img.write(path, text: [("prompt", "a red circle"), ("seed", "42")])
            XCTAssertEqual(try PNGImage.read(path), img)
            let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
            XCTAssertNotNil(bytes.range(of: Data("a red circle".utf8)), "tEXt chunk missing")
        }
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".tmp") }
        XCTAssertEqual(leftovers, [])
    }

    func testPNGBadInputGivesTypedErrors() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("unclip-badpng-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let notPNG = dir.appendingPathComponent("x.png").path
        try Data("hello, not a png".utf8).write(to: URL(fileURLWithPath: notPNG))
        XCTAssertThrowsError(try PNGImage.read(notPNG)) { e in
            guard case UnCLIPError.image(_, let d) = e else { return XCTFail("\(e)") }
            XCTAssertTrue(d.contains("signature"), d)
        }
        // A valid PNG cut in half.
        let good = dir.appendingPathComponent("g.png").path
        try PNGImage(width: 32, height: 32, channels: 3, pixels: [UInt8](repeating: 9, count: 3072)).write(good)
        let data = try Data(contentsOf: URL(fileURLWithPath: good))
        let cut = dir.appendingPathComponent("cut.png").path
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: cut))
        XCTAssertThrowsError(try PNGImage.read(cut)) { e in
            guard case UnCLIPError.image = e else { return XCTFail("\(e)") }
        }
        XCTAssertThrowsError(try PNGImage.read(dir.appendingPathComponent("missing.png").path))
        // Unwritable destination: typed error, nothing left behind.
        let img = try PNGImage(width: 1, height: 1, channels: 3, pixels: [1, 2, 3])
        XCTAssertThrowsError(try img.write(dir.appendingPathComponent("no/such/dir/o.png").path)) { e in
            guard case UnCLIPError.io = e else { return XCTFail("\(e)") }
        }
        XCTAssertThrowsError(try PNGImage(width: 2, height: 2, channels: 3, pixels: [1]))
    }
}
