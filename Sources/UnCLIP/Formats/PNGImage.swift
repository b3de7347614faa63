import CImageIO
import Foundation

/// An 8-bit RGB or RGBA image, rows top to bottom, read and written through libpng.
public struct PNGImage: Equatable, Sendable {
    public let width: Int
    public let height: Int
    public let channels: Int
    public var pixels: [UInt8]

    /// The largest image `read` decodes (pixels): 64 megapixels.
    public static let maxPixels = 64 << 20

    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) throws {
        guard width >= 1, height >= 1, channels == 3 || channels == 4 else {
            throw UnCLIPError.invalidArgument(name: "image", detail: "\(width)x\(height) with \(channels) channels (need ≥1x1, 3 or 4 channels)")
        }
        guard pixels.count == width * height * channels else {
            throw UnCLIPError.invalidArgument(name: "image", detail: "\(pixels.count) bytes for \(width)x\(height)x\(channels)")
        }
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    /// Reads any PNG as 8-bit RGB or RGBA.
    public static func read(_ path: String) throws -> PNGImage {
        var w: Int32 = 0, h: Int32 = 0, c: Int32 = 0
        var data: UnsafeMutablePointer<UInt8>?
        var err = [CChar](repeating: 0, count: 512)
        let rc = ci_png_read(path, maxPixels, &w, &h, &c, &data, &err, err.count)
        guard rc == 0, let data else {
            throw UnCLIPError.image(path: path, detail: String(decoding: err.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                                    + " (expected a readable PNG file)")
        }
        defer { ci_free(data) }
        let n = Int(w) * Int(h) * Int(c)
        return try PNGImage(width: Int(w), height: Int(h), channels: Int(c), pixels: Array(UnsafeBufferPointer(start: data, count: n)))
    }

    /// Decodes a PNG file's bytes (an upload, a base64 field) as 8-bit RGB or RGBA; `maxPixels` is checked from the
    /// header, before any pixel is allocated. `name` says in errors where the bytes came from.
    public static func decode(_ bytes: [UInt8], maxPixels: Int = PNGImage.maxPixels, name: String = "image") throws -> PNGImage {
        var w: Int32 = 0, h: Int32 = 0, c: Int32 = 0
        var data: UnsafeMutablePointer<UInt8>?
        var err = [CChar](repeating: 0, count: 512)
        let rc = bytes.withUnsafeBufferPointer { b in
            ci_png_read_mem(b.baseAddress, b.count, min(maxPixels, Self.maxPixels), &w, &h, &c, &data, &err, err.count)
        }
        guard rc == 0, let data else {
            throw UnCLIPError.image(path: name, detail: String(decoding: err.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                                    + " (expected a PNG image)")
        }
        defer { ci_free(data) }
        return try PNGImage(width: Int(w), height: Int(h), channels: Int(c), pixels: Array(UnsafeBufferPointer(start: data, count: Int(w) * Int(h) * Int(c))))
    }

    /// The image as a PNG file's bytes, with optional text chunks (as `write`).
    public func encoded(text: [(String, String)] = []) throws -> [UInt8] {
        try Self.checkText(text)
        var err = [CChar](repeating: 0, count: 512)
        let keys = text.map { strdup($0.0) }, values = text.map { strdup($0.1) }
        defer { (keys + values).forEach { free($0) } }
        let k = keys.map { UnsafePointer($0) }, v = values.map { UnsafePointer($0) }
        var out: UnsafeMutablePointer<UInt8>?
        var n = 0
        let rc = pixels.withUnsafeBufferPointer { px in
            ci_png_write_mem(Int32(width), Int32(height), Int32(channels), px.baseAddress, k, v, Int32(text.count), &out, &n, &err, err.count)
        }
        guard rc == 0, let out else {
            throw UnCLIPError.io(path: "PNG", detail: "cannot encode: " + String(decoding: err.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        defer { ci_free(out) }
        return Array(UnsafeBufferPointer(start: out, count: n))
    }

    /// Text chunks PNG can hold: keywords of 1–79 printable ASCII characters, no NUL anywhere (typed errors).
    static func checkText(_ text: [(String, String)]) throws {
        for (k, _) in text where k.isEmpty || k.utf8.count > 79 || k.unicodeScalars.contains(where: { $0.value > 126 || $0.value < 32 }) {
            throw UnCLIPError.invalidArgument(name: "PNG text keyword", detail: "'\(k)' must be 1–79 printable ASCII characters")
        }
        for (k, v) in text where v.utf8.contains(0) || k.utf8.contains(0) {
            throw UnCLIPError.invalidArgument(name: "PNG text", detail: "'\(k)' contains a NUL character")
        }
    }

    /// The RGB values 0…255 as floats, [h, w, 3] (an RGBA image's alpha dropped).
    var rgbFloats: [Float] {
        let n = width * height
        var rgb = [Float](repeating: 0, count: n * 3)
        for i in 0..<n { for c in 0..<3 { rgb[i * 3 + c] = Float(pixels[i * channels + c]) } }
        return rgb
    }

    /// Writes the image with optional text chunks (iTXt: UTF-8, uncompressed; keywords 1–79 printable ASCII characters). The file appears complete or not at all: it is written to a
    /// temporary name beside `path` and renamed.
    public func write(_ path: String, text: [(String, String)] = []) throws {
        try Self.checkText(text)
        let dir = (path as NSString).deletingLastPathComponent
        let tmp = (dir.isEmpty ? "." : dir) + "/.\((path as NSString).lastPathComponent).\(getpid()).tmp"
        var err = [CChar](repeating: 0, count: 512)
        let keys = text.map { strdup($0.0) }, values = text.map { strdup($0.1) }
        defer { (keys + values).forEach { free($0) } }
        let k = keys.map { UnsafePointer($0) }, v = values.map { UnsafePointer($0) }
        let rc = pixels.withUnsafeBufferPointer { px in
            ci_png_write(tmp, Int32(width), Int32(height), Int32(channels), px.baseAddress, k, v, Int32(text.count), &err, err.count)
        }
        guard rc == 0 else {
            unlink(tmp)
            throw UnCLIPError.io(path: path, detail: "cannot write PNG: " +
                String(decoding: err.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        guard rename(tmp, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(tmp)
            throw UnCLIPError.io(path: path, detail: "cannot move the written image into place: \(reason)")
        }
    }
}
