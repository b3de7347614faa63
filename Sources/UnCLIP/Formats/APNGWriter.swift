import CImageIO
import Foundation

/// Animated PNG (the APNG specification, Mozilla 2008; PNG 3rd edition): IHDR, acTL (frame count, plays), then for
/// each frame an fcTL (sequence number, full-canvas region, delay, dispose none, blend source) and its data — the
/// first frame's as IDAT, so it is also the default image decoders without APNG show, the others as fdAT (sequence
/// number + zlib data); text chunks (iTXt, uncompressed UTF-8) before the first frame; IEND. Rows are written with
/// filter 0 (none), 8-bit RGB or RGBA. Every frame has the first's size and channels.
public enum APNGWriter {
    /// Frames of an animation: at least one, all of one size.
    public static let maxFrames = 10_000

    /// Writes `frames` to `path` atomically (a temporary file beside it, renamed): `delay` seconds per frame as the
    /// fraction num/den (fcTL's delay_num/delay_den, 16-bit each), `plays` 0 = loop forever.
    public static func write(_ path: String, frames: [PNGImage], delay: (num: UInt16, den: UInt16), plays: UInt32 = 0,
                             text: [(String, String)] = []) throws {
        let data = try encode(frames: frames, delay: delay, plays: plays, text: text)
        try AtomicFile.write(data, to: path)
    }

    /// The file's bytes.
    public static func encode(frames: [PNGImage], delay: (num: UInt16, den: UInt16), plays: UInt32 = 0,
                              text: [(String, String)] = []) throws -> [UInt8] {
        guard let first = frames.first, frames.count <= maxFrames else {
            throw UnCLIPError.invalidArgument(name: "animation", detail: "\(frames.count) frames (need 1...\(maxFrames))")
        }
        for (i, f) in frames.enumerated() where f.width != first.width || f.height != first.height || f.channels != first.channels {
            throw UnCLIPError.invalidArgument(name: "animation", detail: "frame \(i) is \(f.width)x\(f.height)x\(f.channels), frame 0 \(first.width)x\(first.height)x\(first.channels): frames must match")
        }
        guard delay.den > 0 else { throw UnCLIPError.invalidArgument(name: "animation", detail: "a frame delay's denominator must be > 0") }
        var out: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        func chunk(_ type: String, _ body: [UInt8]) {
            let t = Array(type.utf8)
            out += be32(UInt32(body.count)) + t + body
            var crc = ci_crc32(0, t, t.count)
            crc = body.withUnsafeBufferPointer { ci_crc32(crc, $0.baseAddress, body.count) }
            out += be32(crc)
        }
        let colourType: UInt8 = first.channels == 4 ? 6 : 2
        chunk("IHDR", be32(UInt32(first.width)) + be32(UInt32(first.height)) + [8, colourType, 0, 0, 0])
        chunk("acTL", be32(UInt32(frames.count)) + be32(plays))
        try PNGImage.checkText(text)
        for (k, v) in text {
            chunk("iTXt", Array(k.utf8) + [0, 0, 0, 0, 0] + Array(v.utf8))   // keyword, NUL, uncompressed, method, "" lang, "" translated
        }
        var sequence: UInt32 = 0
        for (i, f) in frames.enumerated() {
            chunk("fcTL", be32(sequence) + be32(UInt32(f.width)) + be32(UInt32(f.height)) + be32(0) + be32(0)
                  + be16(delay.num) + be16(delay.den) + [0, 0])                                    // dispose none, blend source
            sequence += 1
            let z = try deflate(scanlines(f))
            if i == 0 {
                chunk("IDAT", z)
            } else {
                chunk("fdAT", be32(sequence) + z)
                sequence += 1
            }
        }
        chunk("IEND", [])
        return out
    }

    /// Each row preceded by its filter byte (0: none).
    static func scanlines(_ f: PNGImage) -> [UInt8] {
        let row = f.width * f.channels
        var raw = [UInt8]()
        raw.reserveCapacity((row + 1) * f.height)
        for y in 0..<f.height {
            raw.append(0)
            raw += f.pixels[(y * row)..<((y + 1) * row)]
        }
        return raw
    }

    static func deflate(_ raw: [UInt8]) throws -> [UInt8] {
        var out: UnsafeMutablePointer<UInt8>?
        var n = 0
        var err = [CChar](repeating: 0, count: 256)
        let rc = raw.withUnsafeBufferPointer { ci_zlib_compress($0.baseAddress, raw.count, &out, &n, &err, err.count) }
        guard rc == 0, let out else {
            throw UnCLIPError.invalidArgument(name: "animation", detail: String(decoding: err.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        defer { ci_free(out) }
        return Array(UnsafeBufferPointer(start: out, count: n))
    }

    static func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)] }
    static func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xFF)] }
}
