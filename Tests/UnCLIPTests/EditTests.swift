import Foundation
import XCTest
@testable import UnCLIP

/// Inpainting and outpainting: the mask's geometry at other resolutions, the pixel invariant (every kept pixel is the
/// input's, byte for byte, at the input's size), batches, and the CLI's bad-input errors.
final class EditTests: XCTestCase {
    static func randomImage(_ w: Int, _ h: Int, channels: Int, seed: UInt64) throws -> PNGImage {
        var rng = TestRNG(seed: seed)
        return try PNGImage(width: w, height: h, channels: channels, pixels: (0..<(w * h * channels)).map { _ in UInt8(truncatingIfNeeded: rng.next() >> 7) })
    }

    /// The resized mask never calls a pixel known when a regenerated source pixel lies in its filter support, and
    /// only dilates (brute force over random masks, shrinking, enlarging and non-integer scales).
    func testMaskResizeOnlyDilates() throws {
        var rng = TestRNG(seed: 5)
        for (w, h, ow, oh) in [(64, 64, 32, 32), (37, 23, 64, 64), (100, 60, 64, 64), (64, 64, 64, 64), (5, 9, 16, 16)] {
            let keep = (0..<(w * h)).map { _ in rng.next() % 13 != 0 }
            let mask = try EditMask(width: w, height: h, keep: keep)
            let low = mask.resized(width: ow, height: oh)
            for y in 0..<oh {
                for x in 0..<ow where low[y * ow + x] {
                    // brute force: every source pixel within the bicubic support is kept
                    let (sx, sy) = (Double(w) / Double(ow), Double(h) / Double(oh))
                    let (cx, cy) = ((Double(x) + 0.5) * sx, (Double(y) + 0.5) * sy)
                    let (rx, ry) = (w == ow ? 0.5 : 2 * max(sx, 1), h == oh ? 0.5 : 2 * max(sy, 1))
                    for j in 0..<h where abs(Double(j) + 0.5 - cy) < ry {
                        for i in 0..<w where abs(Double(i) + 0.5 - cx) < rx {
                            XCTAssertTrue(keep[j * w + i], "\(w)x\(h)→\(ow)x\(oh): (\(x),\(y)) known but source (\(i),\(j)) is regenerated")
                        }
                    }
                }
            }
            if (w, h) == (ow, oh) { XCTAssertEqual(low, keep) }
        }
        // a fully kept mask stays fully known; a single hole grows by the support (2 output pixels each way at 2×)
        let one = try EditMask(width: 64, height: 64, keep: (0..<4096).map { $0 != 32 * 64 + 32 })
        let r = one.resized(width: 32, height: 32)
        XCTAssertEqual(r.filter { !$0 }.count, 16)   // 4×4 around (16, 16)
        XCTAssertEqual(try EditMask(width: 8, height: 8, keep: .init(repeating: true, count: 64)).resized(width: 4, height: 4), .init(repeating: true, count: 16))
    }

    func testMaskModes() throws {
        let rgba = try PNGImage(width: 2, height: 1, channels: 4, pixels: [255, 255, 255, 0, 0, 0, 0, 7])
        XCTAssertEqual(try EditMask(image: rgba, mode: .alpha).keep, [false, true])
        XCTAssertEqual(try EditMask(image: rgba, mode: .luminance).keep, [false, true])   // white = regenerate
        let rgb = try PNGImage(width: 2, height: 1, channels: 3, pixels: [255, 255, 255, 10, 10, 10])
        XCTAssertThrowsError(try EditMask(image: rgb, mode: .alpha))
        XCTAssertThrowsError(try EditMask(alphaOf: rgb))
        XCTAssertEqual(try EditMask(image: rgb, mode: .luminance).keep, [false, true])
    }

    /// Any size in, the same size out, kept pixels untouched; a batch equals its images made alone.
    func testEditKeepsPixelsAndSizeAndBatches() throws {
        var o = GenerationOptions()
        (o.priorSteps, o.decoderSteps, o.superResSteps) = (3, 4, 2)
        for (model, w, h) in [(try TinyKarlo.model(.f32), 37, 23), (try ModelFile(path: EmbeddedModelTests.modelPath), 80, 48)] {
            let pipe = try UnCLIPPipeline(model: model)
            let source = try Self.randomImage(w, h, channels: 4, seed: 9)
            var rng = TestRNG(seed: 3)
            let mask = try EditMask(width: w, height: h, keep: (0..<(w * h)).map { i in i % w < w / 2 || rng.next() % 3 == 0 })
            for resamples in [1, 2] {
                o.resamples = resamples
                o.count = 2
                let (images, _) = try pipe.edit(image: source, mask: mask, prompt: "a red circle", options: o, noises: try .seeded(4, count: 2))
                for img in images {
                    XCTAssertEqual([img.width, img.height, img.channels], [w, h, 3])
                    for i in 0..<(w * h) where mask.keep[i] {
                        for c in 0..<3 { XCTAssertEqual(img.pixels[i * 3 + c], source.pixels[i * 4 + c]) }
                    }
                    let changed = (0..<(w * h)).filter { i in !mask.keep[i] && (0..<3).contains { c in img.pixels[i * 3 + c] != source.pixels[i * 4 + c] } }
                    XCTAssertGreaterThan(changed.count, mask.regenerated / 2)
                }
                o.count = 1
                let (alone, _) = try pipe.edit(image: source, mask: mask, prompt: "a red circle", options: o, noises: try .seeded(5, count: 1))
                XCTAssertEqual(alone[0], images[1], "image 1 of the batch vs seed 5 alone, resamples \(resamples)")
                // in chunks of one image per model call: the same images
                var chunked = o
                (chunked.count, chunked.maxBatch) = (2, 1)
                XCTAssertEqual(try pipe.edit(image: source, mask: mask, prompt: "a red circle", options: chunked, noises: try .seeded(4, count: 2)).images,
                               images, "chunked, resamples \(resamples)")
            }
        }
        // nothing to edit, and a mask of another size
        let pipe = try UnCLIPPipeline(model: try TinyKarlo.model(.f32))
        let img = try Self.randomImage(8, 8, channels: 3, seed: 1)
        XCTAssertThrowsError(try pipe.edit(image: img, mask: try EditMask(width: 8, height: 8, keep: .init(repeating: true, count: 64)), prompt: "x",
                                           options: o, noises: try .seeded(0, count: 1)))
        XCTAssertThrowsError(try pipe.edit(image: img, mask: try EditMask(width: 4, height: 4, keep: .init(repeating: false, count: 16)), prompt: "x",
                                           options: o, noises: try .seeded(0, count: 1)))
    }

    /// Outpainting grows the canvas; the source's pixels are byte-identical at their offset; every new pixel is painted.
    func testExtendKeepsTheSource() throws {
        let pipe = try UnCLIPPipeline(model: try ModelFile(path: EmbeddedModelTests.modelPath))
        var o = GenerationOptions()
        (o.priorSteps, o.decoderSteps, o.superResSteps) = (3, 4, 2)
        let source = try Self.randomImage(64, 64, channels: 3, seed: 2)
        let growth = CanvasGrowth(left: 10, right: 0, up: 0, down: 40)
        let (out, windows) = try pipe.extend(image: source, growth: growth, prompts: ["a red circle"], options: o, noises: try .seeded(1, count: 1))
        XCTAssertEqual([out[0].width, out[0].height], [74, 104])
        XCTAssertGreaterThanOrEqual(windows, 2)
        for y in 0..<64 { for x in 0..<64 { for c in 0..<3 {
            XCTAssertEqual(out[0].pixels[((y + 0) * 74 + x + 10) * 3 + c], source.pixels[(y * 64 + x) * 3 + c])
        } } }
        XCTAssertThrowsError(try CanvasGrowth().validate())
        XCTAssertThrowsError(try CanvasGrowth(right: CanvasGrowth.maxPerSide + 1).validate())
        XCTAssertThrowsError(try pipe.extend(image: source, growth: growth, prompts: ["x"], overlap: 0.1, options: o, noises: try .seeded(1, count: 1)))
        // more than maxWindows windows: refused before any work
        XCTAssertThrowsError(try pipe.extend(image: source, growth: CanvasGrowth(right: 2048, down: 2048), prompts: ["x"], options: o,
                                             noises: try .seeded(1, count: 1)))
    }

    /// The CLI: a small edit and extension on the embedded model, metadata, and every bad input an error with nothing written.
    func testEditAndExtendCLI() throws {
        let work = try temporaryDirectory("editcli")
        defer { try? FileManager.default.removeItem(at: work) }
        func path(_ n: String) -> String { work.appendingPathComponent(n).path }
        let fast = ["--prior-steps", "3", "--decoder-steps", "4", "--super-res-steps", "2", "-q"]
        let source = try Self.randomImage(64, 64, channels: 3, seed: 7)
        try source.write(path("src.png"))
        let keepLeft = (0..<4096).map { $0 % 64 < 32 }
        try PNGImage(width: 64, height: 64, channels: 4, pixels: keepLeft.flatMap { k in [UInt8](repeating: 255, count: 3) + [k ? 255 : 0] }).write(path("mask.png"))
        var r = try runExecutable("unclip", ["edit", path("src.png"), "a red circle to the left of a blue square", "--mask", path("mask.png"), "-o", path("e.png")] + fast)
        XCTAssertEqual(r.code, 0, r.err)
        let e = try PNGImage.read(path("e.png"))
        for i in 0..<4096 where keepLeft[i] { for c in 0..<3 { XCTAssertEqual(e.pixels[i * 3 + c], source.pixels[i * 3 + c]) } }
        let info = try JSON.parse(Array(try runExecutable("unclip", ["info", path("e.png"), "--json"]).out.utf8))
        XCTAssertEqual(info["kind"]?.string, "edit")
        XCTAssertEqual(info["edit of"]?.string, "src.png")
        XCTAssertEqual(info["mask sha256"]?.string, SHA256.hash([UInt8](try Data(contentsOf: URL(fileURLWithPath: path("mask.png"))))))
        // luminance masks: white = regenerate
        try PNGImage(width: 64, height: 64, channels: 3, pixels: keepLeft.flatMap { $0 ? [0, 0, 0] : [255, 255, 255] as [UInt8] }).write(path("lum.png"))
        r = try runExecutable("unclip", ["edit", path("src.png"), "x", "--mask", path("lum.png"), "--mask-mode", "luminance", "-o", path("l.png")] + fast)
        XCTAssertEqual(r.code, 0, r.err)
        r = try runExecutable("unclip", ["extend", path("e.png"), "a red circle | a blue square", "--prompt-per-window", "--right", "32", "-o", path("x.png")] + fast)
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertEqual(try PNGImage.read(path("x.png")).width, 96)
        // bad input: exit 1 (files) or 2 (usage), nothing written
        try PNGImage(width: 32, height: 64, channels: 4, pixels: .init(repeating: 0, count: 32 * 64 * 4)).write(path("small.png"))
        try PNGImage(width: 64, height: 64, channels: 4, pixels: .init(repeating: 255, count: 4096 * 4)).write(path("opaque.png"))
        try PNGImage(width: 64, height: 64, channels: 3, pixels: .init(repeating: 0, count: 4096 * 3)).write(path("rgb.png"))
        for (args, code) in [(["edit", path("src.png"), "x", "--mask", path("small.png")], 1),          // another size
                             (["edit", path("src.png"), "x", "--mask", path("opaque.png")], 1),         // nothing to edit
                             (["edit", path("src.png"), "x", "--mask", path("rgb.png")], 1),            // alpha mode, no alpha
                             (["edit", path("src.png"), "x"], 1),                                       // RGB image, no --mask
                             (["edit", try TinyKarlo.noisePath(), "x", "--mask", path("mask.png")], 1),  // not a PNG
                             (["edit", path("src.png"), " ", "--mask", path("mask.png")], 2),            // empty prompt
                             (["edit", path("src.png"), "x", "--mask", path("mask.png"), "--mask-mode", "red"], 2),
                             (["edit", path("src.png"), "x", "--mask", path("mask.png"), "--resamples", "0"], 2),
                             (["extend", path("src.png"), "x"], 2),                                     // no growth
                             (["extend", path("src.png"), "x", "--right", "99999"], 2),
                             (["extend", path("src.png"), "x", "--right", "8", "--overlap", "1"], 2)] as [([String], Int32)] {
            r = try runExecutable("unclip", args + ["-o", path("bad.png")] + fast)
            XCTAssertEqual(r.code, code, "\(args): \(r.err)")
            XCTAssertTrue(r.err.hasPrefix("unclip: "), r.err)
            XCTAssertFalse(FileManager.default.fileExists(atPath: path("bad.png")), "\(args)")
        }
    }

    /// The feathering pulls a slightly lighter regenerated background toward the kept colour at the border, leaves a
    /// large step (an object's edge) alone, and only touches regenerated pixels.
    func testSeamHarmonizer() throws {
        let (w, h) = (16, 8)
        let keep = (0..<(w * h)).map { $0 % w < 8 }
        let mask = try EditMask(width: w, height: h, keep: keep)
        let source = try PNGImage(width: w, height: h, channels: 3, pixels: [UInt8](repeating: 240, count: w * h * 3))
        var gen = [UInt8](repeating: 246, count: w * h * 3)
        for y in 0..<h { for c in 0..<3 { gen[(y * w + 8) * 3 + c] = y < 4 ? 246 : 40 } }   // rows 4…7: a dark object at the border
        let out = SeamHarmonizer.apply(generated: gen, source: source, mask: mask)
        for i in 0..<(w * h) where keep[i] { XCTAssertEqual(out[i * 3], gen[i * 3]) }
        XCTAssertLessThan(out[(1 * w + 8) * 3], 244)                       // the light background's step shrank
        // the object's edge gets no correction of its own (only the smooth field of its background neighbours)
        XCTAssertLessThanOrEqual(abs(Int(out[(6 * w + 8) * 3]) - 40), 3)
        XCTAssertEqual(SeamHarmonizer.apply(generated: gen, source: source, mask: try EditMask(width: w, height: h, keep: .init(repeating: true, count: w * h))), gen)
    }
}
