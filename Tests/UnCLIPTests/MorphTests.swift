import CImageIO
import Foundation
import XCTest
@testable import UnCLIP

/// Slerp, the text-diff direction, the APNG writer's structure, and interpolations / text diffs on the embedded model
/// (DDIM-inverted end frames reconstruct their inputs) and through the CLI.
final class MorphTests: XCTestCase {
    func randomVector(_ n: Int, seed: UInt64) throws -> [Float] { try SeededNoise(seed: seed).draw("v", shape: [n]) }

    func testSlerpTurnsByTheTrueAngleWithLinearNorm() throws {
        // a quarter turn in a plane: the direction at θ is θ·90° from a, the norm 1 → 2 linearly
        let a: [Float] = [1, 0, 0], b: [Float] = [0, 2, 0]
        for t: Float in [0, 0.25, 0.5, 0.8, 1] {
            let s = try Slerp.interpolate(a, b, t)
            XCTAssertEqual(Slerp.angle(a, s), Double(t) * .pi / 2, accuracy: 1e-6, "θ \(t)")
            XCTAssertEqual(Slerp.norm(s), 1 + Double(t), accuracy: 1e-6)
            XCTAssertEqual(s[2], 0, accuracy: 1e-7)
        }
        // 768-d random vectors: angle(a, s) = θΩ and angle(s, b) = (1 − θ)Ω; the ends are a and b
        let u = try randomVector(768, seed: 1), v = try randomVector(768, seed: 2).map { $0 * 3 }
        let omega = Slerp.angle(u, v)
        XCTAssertGreaterThan(omega, 1.3)   // nearly orthogonal
        let nu = Slerp.norm(u), nv = Slerp.norm(v)
        // the element-wise angles of diffusers' community pipelines (acos(â ⊙ b̂), no sum) are not the angle: for
        // two close vectors (Ω ≈ 0.3) every component's "angle" is near π/2
        let close = zip(u, v).map { $0 + 0.1 * $1 }
        XCTAssertLessThan(Slerp.angle(u, close), 0.35)
        let nc = Slerp.norm(close)
        let elementwise = zip(u, close).map { acos(Double($0) / nu * Double($1) / nc) }
        XCTAssertGreaterThan(elementwise.min()!, 1.3)
        for t: Float in [0.1, 0.5, 0.9] {
            let s = try Slerp.interpolate(u, v, t)
            XCTAssertEqual(Slerp.angle(u, s), Double(t) * omega, accuracy: 1e-5)
            XCTAssertEqual(Slerp.angle(s, v), Double(1 - t) * omega, accuracy: 1e-5)
            XCTAssertEqual(Slerp.norm(s), (1 - Double(t)) * nu + Double(t) * nv, accuracy: 1e-3)
        }
        XCTAssertEqual(zip(try Slerp.interpolate(u, v, 0), u).map { abs($0 - $1) }.max()!, 0, accuracy: 1e-5)
        XCTAssertEqual(zip(try Slerp.interpolate(u, v, 1), v).map { abs($0 - $1) }.max()!, 0, accuracy: 1e-5)
    }

    func testSlerpDegenerateCases() throws {
        let u = try randomVector(64, seed: 3)
        // the same direction: â, with the norm interpolated
        let s = try Slerp.interpolate(u, u.map { $0 * 3 }, 0.5)
        XCTAssertEqual(Slerp.angle(u, s), 0, accuracy: 1e-6)
        XCTAssertEqual(Slerp.norm(s), 2 * Slerp.norm(u), accuracy: 1e-4)
        // opposite directions: a chosen plane; halfway is perpendicular, every θ is θπ from a
        let minus = u.map { -$0 }
        for t: Float in [0.25, 0.5, 0.75] {
            let o = try Slerp.interpolate(u, minus, t)
            XCTAssertEqual(Slerp.angle(u, o), Double(t) * .pi, accuracy: 1e-5)
            XCTAssertEqual(Slerp.norm(o), Slerp.norm(u), accuracy: 1e-4)
        }
        XCTAssertEqual(zip(try Slerp.interpolate(u, minus, 0.5), u).map { Double($0) * Double($1) }.reduce(0, +), 0, accuracy: 1e-4)
        // typed errors: a zero vector, different lengths, θ outside [0, 1], opposite 1-d vectors
        XCTAssertThrowsError(try Slerp.interpolate([0, 0], [1, 0], 0.5))
        XCTAssertThrowsError(try Slerp.interpolate([1, 0], [1, 0, 0], 0.5))
        XCTAssertThrowsError(try Slerp.interpolate([1, 0], [0, 1], 1.5))
        XCTAssertThrowsError(try Slerp.interpolate([1, 0], [0, 1], .nan))
        XCTAssertThrowsError(try Slerp.interpolate([2], [-1], 0.5))
    }

    func testTextDiffDirection() throws {
        let from: [Float] = [1, 2, 3], to: [Float] = [4, 6, 3]
        let d = try UnCLIPPipeline.textDiffDirection(from: from, to: to)
        XCTAssertEqual(d[0], 0.6, accuracy: 1e-6)
        XCTAssertEqual(d[1], 0.8, accuracy: 1e-6)
        XCTAssertEqual(d[2], 0, accuracy: 1e-7)
        XCTAssertThrowsError(try UnCLIPPipeline.textDiffDirection(from: from, to: from))
    }

    /// CRC-32 (ISO 3309, reflected 0xEDB88320) written out here, independently of zlib's.
    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            c ^= UInt32(b)
            for _ in 0..<8 { c = (c >> 1) ^ (c & 1 == 1 ? 0xEDB8_8320 : 0) }
        }
        return ~c
    }

    func testAPNGStructure() throws {
        let frames = try (0..<3).map { k in try PNGImage(width: 5, height: 4, channels: 3, pixels: (0..<60).map { UInt8(($0 * 7 + k * 50) % 256) }) }
        let bytes = try APNGWriter.encode(frames: frames, delay: (125, 1000), plays: 2, text: [("kind", "text-diff")])
        XCTAssertEqual(Array(bytes[0..<8]), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        func u32(_ i: Int) -> UInt32 { bytes[i..<(i + 4)].reduce(0) { $0 << 8 | UInt32($1) } }
        var chunks: [(type: String, body: [UInt8])] = []
        var i = 8
        while i < bytes.count {
            let n = Int(u32(i)), type = String(decoding: bytes[(i + 4)..<(i + 8)], as: UTF8.self)
            let body = Array(bytes[(i + 8)..<(i + 8 + n)])
            XCTAssertEqual(u32(i + 8 + n), Self.crc32(Array(bytes[(i + 4)..<(i + 8 + n)])), "CRC of \(type)")
            chunks.append((type, body))
            i += 12 + n
        }
        XCTAssertEqual(i, bytes.count)
        XCTAssertEqual(chunks.map(\.type), ["IHDR", "acTL", "iTXt", "fcTL", "IDAT", "fcTL", "fdAT", "fcTL", "fdAT", "IEND"])
        func be(_ b: [UInt8], _ at: Int) -> UInt32 { b[at..<(at + 4)].reduce(0) { $0 << 8 | UInt32($1) } }
        XCTAssertEqual(be(chunks[1].body, 0), 3)   // num_frames
        XCTAssertEqual(be(chunks[1].body, 4), 2)   // num_plays
        // sequence numbers run 0, 1, 2, … over fcTL and fdAT together; each fcTL covers the canvas with the delay
        let sequenced = chunks.filter { $0.type == "fcTL" || $0.type == "fdAT" }.map { be($0.body, 0) }
        XCTAssertEqual(sequenced, [0, 1, 2, 3, 4])
        for f in chunks where f.type == "fcTL" {
            XCTAssertEqual(f.body.count, 26)
            XCTAssertEqual([be(f.body, 4), be(f.body, 8), be(f.body, 12), be(f.body, 16)], [5, 4, 0, 0])
            XCTAssertEqual(Array(f.body[20..<26]), [0, 125, 0x03, 0xE8, 0, 0])
        }
        // a decoder without APNG (libpng) sees the first frame as the image, and the text chunk
        let dir = try temporaryDirectory("apng")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("a.png").path
        try APNGWriter.write(path, frames: frames, delay: (125, 1000), text: [("kind", "text-diff")])
        XCTAssertEqual(try PNGImage.read(path), frames[0])
        XCTAssertEqual(try PNGText.read(path).first?.value, "text-diff")
        // frames of different sizes, no frames, a zero denominator: typed errors, nothing written
        let other = try PNGImage(width: 4, height: 4, channels: 3, pixels: [UInt8](repeating: 0, count: 48))
        let bad = dir.appendingPathComponent("b.png").path
        XCTAssertThrowsError(try APNGWriter.write(bad, frames: [frames[0], other], delay: (1, 10)))
        XCTAssertThrowsError(try APNGWriter.write(bad, frames: [], delay: (1, 10)))
        XCTAssertThrowsError(try APNGWriter.write(bad, frames: frames, delay: (1, 0)))
        XCTAssertFalse(FileManager.default.fileExists(atPath: bad))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["a.png"])
    }

    /// End frames from DDIM-inverted latents reconstruct their inputs (≥ 25 dB on this pair, unguided); the text
    /// diff's frame 0 is the same image as the interpolation's frame 0 of the same input.
    func testInvertedEndsReconstructOnEmbeddedModel() throws {
        let pipe = try UnCLIPPipeline(model: try ModelFile(path: EmbeddedModelTests.modelPath))
        let a = try pipe.generate(prompt: "a red circle", noise: SeededNoise(seed: 1)).images[0]
        let b = try pipe.generate(prompt: "a large blue square", noise: SeededNoise(seed: 2)).images[0]
        var o = MorphOptions()
        o.frames = 3
        o.generation.decoderGuidance = 1
        let morph = try pipe.interpolate(a, b, latents: .inverted, options: o, noise: SeededNoise(seed: 5))
        XCTAssertEqual(morph.frames.count, 3)
        XCTAssertEqual(morph.thetas, [0, 0.5, 1])
        print("interpolation end frames: \(morph.reconstructionPSNR.map { String(format: "%.2f dB", $0) })")
        for p in morph.reconstructionPSNR { XCTAssertGreaterThanOrEqual(p, 25) }
        XCTAssertLessThan(UnCLIPPipeline.psnr(morph.frames[1], a), 25)   // the middle is neither input
        XCTAssertLessThan(UnCLIPPipeline.psnr(morph.frames[1], b), 25)
        let diff = try pipe.textDiff(image: a, from: "a red circle", to: "a blue circle", maxTheta: 0.5, options: o, noise: SeededNoise(seed: 5))
        XCTAssertEqual(diff.frames[0], morph.frames[0])
        XCTAssertEqual(diff.reconstructionPSNR[0], morph.reconstructionPSNR[0])
        XCTAssertNotEqual(diff.frames[2], diff.frames[0])
        // the guidance ramp decodes frame 0 unguided (alone, so batch invariance makes it the same image) and guides the rest
        let ramp = try pipe.textDiff(image: a, from: "a red circle", to: "a blue circle", maxTheta: 0.5, options: o, guidanceRamp: 4,
                                     noise: SeededNoise(seed: 5))
        XCTAssertEqual(ramp.frames[0], diff.frames[0])
        XCTAssertNotEqual(ramp.frames[2], diff.frames[2])
        // a partial inversion: every frame decodes from the sample at 60% of the schedule; frame 0 still reconstructs
        let shallow = try pipe.textDiff(image: a, from: "a red circle", to: "a blue circle", maxTheta: 0.5, options: o,
                                        inversionDepth: 0.6, noise: SeededNoise(seed: 5))
        print("text diff frame 0 at inversion depth 0.6: \(String(format: "%.2f dB", shallow.reconstructionPSNR[0]))")
        XCTAssertGreaterThanOrEqual(shallow.reconstructionPSNR[0], 25)
        XCTAssertNotEqual(shallow.frames[2], shallow.frames[0])
        XCTAssertThrowsError(try pipe.textDiff(image: a, from: nil, to: "x", maxTheta: 0.5, options: o, inversionDepth: 0, noise: SeededNoise(seed: 5)))
        XCTAssertThrowsError(try pipe.textDiff(image: a, from: nil, to: "x", maxTheta: 0.5, options: o, guidanceRamp: 0.5, noise: SeededNoise(seed: 5)))
        XCTAssertThrowsError(try pipe.textDiff(image: a, from: "a red circle", to: "a red circle", maxTheta: 0.5, options: o, noise: SeededNoise(seed: 5)))
        XCTAssertThrowsError(try pipe.textDiff(image: a, from: nil, to: "x", maxTheta: 0, options: o, noise: SeededNoise(seed: 5)))
        // interpolation from partially inverted latents: the ends still reconstruct, the middle is neither input
        let partial = try pipe.interpolate(a, b, latents: .inverted, options: o, inversionDepth: 0.75, noise: SeededNoise(seed: 5))
        print("interpolation end frames at inversion depth 0.75: \(partial.reconstructionPSNR.map { String(format: "%.2f dB", $0) })")
        for p in partial.reconstructionPSNR { XCTAssertGreaterThanOrEqual(p, 25) }
        XCTAssertNotEqual(partial.frames[0], morph.frames[0])    // decoded from another sample: not the full inversion's frame
        XCTAssertLessThan(UnCLIPPipeline.psnr(partial.frames[1], a), 25)
        XCTAssertLessThan(UnCLIPPipeline.psnr(partial.frames[1], b), 25)
        XCTAssertThrowsError(try pipe.interpolate(a, b, latents: .fixed, options: o, inversionDepth: 0.5, noise: SeededNoise(seed: 5)))
        XCTAssertThrowsError(try pipe.interpolate(a, b, latents: .inverted, options: o, inversionDepth: 0, noise: SeededNoise(seed: 5)))
        XCTAssertThrowsError(try pipe.interpolate(a, b, latents: .inverted, options: o, inversionDepth: .nan, noise: SeededNoise(seed: 5)))
        o.frames = 1
        XCTAssertThrowsError(try pipe.interpolate(a, b, latents: .fixed, options: o, noise: SeededNoise(seed: 5)))
    }

    func testMorphCLI() throws {
        let work = try temporaryDirectory("morphcli")
        defer { try? FileManager.default.removeItem(at: work) }
        let model = try TinyKarlo.model(.f32).path
        func path(_ n: String) -> String { work.appendingPathComponent(n).path }
        let fast = ["-m", model, "--decoder-steps", "3", "--super-res-steps", "2", "-q"]
        var r = try runExecutable("unclip", ["generate", "a red circle", "-o", path("a.png"), "--seed", "1"] + fast)
        XCTAssertEqual(r.code, 0, r.err)
        r = try runExecutable("unclip", ["generate", "a blue square", "-o", path("b.png"), "--seed", "2"] + fast)
        XCTAssertEqual(r.code, 0, r.err)
        r = try runExecutable("unclip", ["textdiff", path("a.png"), "--from", "a red circle", "--to", "a blue circle", "--frames", "3",
                                         "-o", path("d.png"), "--frames-dir", path("df"), "--bounce"] + fast)
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertEqual(r.out.split(separator: "\n").map(String.init), (0..<3).map { path("df/frame-000\($0).png") } + [path("d.png")])
        XCTAssertEqual(try PNGImage.read(path("d.png")), try PNGImage.read(path("df/frame-0000.png")))
        let text = try PNGText.read(path("df/frame-0002.png"))
        XCTAssertEqual(text.first { $0.key == "kind" }?.value, "text-diff")
        XCTAssertEqual(text.first { $0.key == "frame" }?.value, "3 of 3")
        r = try runExecutable("unclip", ["textdiff", path("a.png"), "--to", "a blue circle", "--frames", "3", "--guidance-ramp", "3",
                                         "--inversion-depth", "0.5", "-o", path("d2.png")] + fast)
        XCTAssertEqual(r.code, 0, r.err)
        let text2 = try PNGText.read(path("d2.png"))
        XCTAssertEqual(text2.first { $0.key == "inversion depth" }?.value, "0.5")
        XCTAssertEqual(text2.first { $0.key == "guidance ramp" }?.value, "3.0")
        r = try runExecutable("unclip", ["interpolate", path("a.png"), path("b.png"), "--frames", "2", "-o", path("i.png")] + fast)
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertEqual(try PNGText.read(path("i.png")).first { $0.key == "inversion depth" }?.value, "0.75")   // the CLI default
        r = try runExecutable("unclip", ["interpolate", path("a.png"), path("b.png"), "--frames", "2", "--inversion-depth", "1",
                                         "-o", path("i1.png")] + fast)
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertNil(try PNGText.read(path("i1.png")).first { $0.key == "inversion depth" })
        XCTAssertNotEqual(try PNGImage.read(path("i.png")), try PNGImage.read(path("i1.png")))
        r = try runExecutable("unclip", ["interpolate", path("a.png"), path("b.png"), "--frames", "2", "--latents", "fixed",
                                         "-o", path("i2.png")] + fast)   // the default depth applies to inverted latents only
        XCTAssertEqual(r.code, 0, r.err)
        r = try runExecutable("unclip", ["interpolate", "--from-prompt", "a red circle", "--to-prompt", "a blue square", "--frames", "2",
                                         "--prior-steps", "3", "-o", path("p.png")] + fast)
        XCTAssertEqual(r.code, 0, r.err)
        // usage errors (exit 2) and runtime errors (exit 1): nothing written
        try "not a png".write(toFile: path("x.png"), atomically: true, encoding: .utf8)
        let cases: [([String], Int32)] = [
            (["textdiff", path("a.png"), "--to", "x", "--frames", "1", "-o", path("e.png")], 2),
            (["textdiff", path("a.png"), "--to", "x", "--max-theta", "0", "-o", path("e.png")], 2),
            (["textdiff", path("a.png"), "--to", "x", "--max-theta", "1.5", "-o", path("e.png")], 2),
            (["textdiff", path("a.png"), "--to", "x", "--inversion-depth", "0", "-o", path("e.png")], 2),
            (["textdiff", path("a.png"), "--to", "x", "--inversion-depth", "1.5", "-o", path("e.png")], 2),
            (["textdiff", path("a.png"), "--to", "x", "--guidance-ramp", "0.5", "-o", path("e.png")], 2),
            (["textdiff", path("a.png"), "--to", "x", "--guidance-ramp", "nan", "-o", path("e.png")], 2),
            (["textdiff", path("a.png"), "--from", "a red circle", "--to", "a red circle", "-o", path("e.png")], 2),
            (["textdiff", path("a.png"), "--to", " ", "-o", path("e.png")], 2),
            (["textdiff", path("a.png"), "--to", "x", "--fps", "0", "-o", path("e.png")], 2),
            (["textdiff", path("a.png"), "--to", "x", "-o", path("e.gif")], 2),
            (["interpolate", path("a.png"), "-o", path("e.png")], 2),
            (["interpolate", path("a.png"), path("b.png"), "--frames", "\(MorphOptions.maxFrames + 1)", "-o", path("e.png")], 2),
            (["interpolate", "--from-prompt", "a", "-o", path("e.png")], 2),
            (["interpolate", path("a.png"), path("b.png"), "--prior-steps", "5", "-o", path("e.png")], 2),
            (["interpolate", path("a.png"), path("b.png"), "--inversion-depth", "0", "-o", path("e.png")], 2),
            (["interpolate", path("a.png"), path("b.png"), "--inversion-depth", "1.5", "-o", path("e.png")], 2),
            (["interpolate", path("a.png"), path("b.png"), "--latents", "fixed", "--inversion-depth", "0.5", "-o", path("e.png")], 2),
            (["interpolate", "--from-prompt", "a", "--to-prompt", "b", "--inversion-depth", "0.5", "-o", path("e.png")], 2),
            (["interpolate", path("a.png"), path("b.png"), "--from-prompt", "a", "--to-prompt", "b", "-o", path("e.png")], 2),
            (["textdiff", path("x.png"), "--to", "x", "-o", path("e.png")], 1),
            (["interpolate", path("a.png"), path("missing.png"), "-o", path("e.png")], 1),
            (["textdiff", path("a.png"), "--to", "x", "-o", path("nodir/e.png")], 1),
        ]
        for (args, code) in cases {
            let r = try runExecutable("unclip", args + fast)
            XCTAssertEqual(r.code, code, "\(args): \(r.err)")
            XCTAssertFalse(r.err.isEmpty, "\(args)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: path("e.png")), "\(args)")
        }
    }
}
