import Foundation

/// A PNG's text chunks (tEXt: Latin-1; iTXt: UTF-8, uncompressed), read straight from the chunk stream without
/// decoding the image. Compressed chunks (zTXt, compressed iTXt) are listed with the value "(compressed)".
/// Bounded: at most 16 MiB of file and 4,096 chunks are read; a malformed stream is a typed error.
public enum PNGText {
    public static let maxBytes = 16 << 20

    public static func read(_ path: String) throws -> [(key: String, value: String)] {
        let file: ReadOnlyFile
        do { file = try ReadOnlyFile(path) } catch { throw UnCLIPError.image(path: path, detail: "cannot open: \(error)") }
        let bytes = try file.bytes(at: 0, count: min(file.size, maxBytes))
        return try parse(bytes, path: path)
    }

    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    public static func parse(_ b: [UInt8], path: String) throws -> [(key: String, value: String)] {
        func bad(_ d: String) -> UnCLIPError { .image(path: path, detail: d + " (expected a PNG file)") }
        guard b.count >= 8, Array(b[0..<8]) == signature else { throw bad("no PNG signature") }
        var out: [(key: String, value: String)] = []
        var i = 8, chunks = 0
        while i + 8 <= b.count, chunks < 4096 {
            chunks += 1
            let len = Int(b[i]) << 24 | Int(b[i + 1]) << 16 | Int(b[i + 2]) << 8 | Int(b[i + 3])
            let type = String(decoding: b[(i + 4)..<(i + 8)], as: UTF8.self)
            guard len <= 0x7fff_ffff, i + 12 + len <= b.count else {
                if type == "IEND" || i + 8 + len > b.count { break }  // truncated after the text we can read
                throw bad("chunk \(type) runs past the end of the file")
            }
            let data = Array(b[(i + 8)..<(i + 8 + len)])
            switch type {
            case "tEXt":
                if let z = data.firstIndex(of: 0) {
                    out.append((latin1(data[..<z]), latin1(data[(z + 1)...])))
                }
            case "zTXt":
                if let z = data.firstIndex(of: 0) { out.append((latin1(data[..<z]), "(compressed)")) }
            case "iTXt":
                // keyword \0 compression-flag compression-method language \0 translated-keyword \0 text
                guard let z = data.firstIndex(of: 0), z + 2 < data.count else { break }
                let key = latin1(data[..<z]), compressed = data[z + 1] != 0
                var j = z + 3
                guard let l = data[j...].firstIndex(of: 0) else { break }
                j = l + 1
                guard let t = data[j...].firstIndex(of: 0) else { break }
                j = t + 1
                out.append((key, compressed ? "(compressed)" : String(decoding: data[j...], as: UTF8.self)))
            case "IEND":
                return out
            default: break
            }
            i += 12 + len
        }
        return out
    }

    static func latin1<S: Sequence>(_ s: S) -> String where S.Element == UInt8 { String(s.map { Character(Unicode.Scalar($0)) }) }
}
