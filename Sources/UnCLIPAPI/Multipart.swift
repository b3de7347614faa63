import Foundation

/// One part of a `multipart/form-data` body (RFC 7578): its field name, the file name when it is a file, its
/// Content-Type, and its bytes.
public struct MultipartPart: Sendable, Equatable {
    public let name: String
    public let filename: String?
    public let contentType: String?
    public let body: [UInt8]

    /// The part as UTF-8 text (a plain form field), or nil when it is not valid UTF-8.
    public var text: String? { String(validating: body, as: UTF8.self) }
}

/// Why a multipart body was refused (each says what to send instead).
public struct MultipartError: Error, Equatable, CustomStringConvertible {
    public let description: String
    init(_ d: String) { description = d }
}

/// A `multipart/form-data` reader for upload bodies that are already bounded in size (the server's body limit).
/// Strict where a sloppy reader could be tricked (a part must start with its boundary line, header blocks are
/// bounded, the closing delimiter must be there), lenient where clients differ (a preamble before the first
/// boundary, LF-only header lines, quoted or bare parameters).
public enum Multipart {
    public static let maxParts = 64
    public static let maxHeaderBytes = 8 << 10

    /// The boundary of a `multipart/form-data; boundary=…` Content-Type, or a typed error.
    public static func boundary(contentType: String?) throws(MultipartError) -> String {
        guard let contentType else { throw MultipartError("the request has no Content-Type; send multipart/form-data") }
        let fields = contentType.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        guard let media = fields.first, media.lowercased() == "multipart/form-data" else {
            throw MultipartError("Content-Type is '\(contentType.prefix(100))'; this endpoint takes multipart/form-data")
        }
        for f in fields.dropFirst() {
            guard let eq = f.firstIndex(of: "="), f[..<eq].trimmingCharacters(in: .whitespaces).lowercased() == "boundary" else { continue }
            var b = f[f.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            if b.count >= 2, b.hasPrefix("\""), b.hasSuffix("\"") { b = String(b.dropFirst().dropLast()) }
            // RFC 2046 §5.1.1: 1–70 characters
            guard (1...70).contains(b.utf8.count), !b.utf8.contains(where: { $0 < 32 || $0 > 126 }) else {
                throw MultipartError("the multipart boundary must be 1–70 printable ASCII characters")
            }
            return b
        }
        throw MultipartError("Content-Type multipart/form-data has no boundary parameter")
    }

    /// The parts of `body`, in order.
    public static func parse(_ body: [UInt8], boundary: String) throws(MultipartError) -> [MultipartPart] {
        let dash = Array("--\(boundary)".utf8)
        let delimiter = [13, 10] + dash                       // CRLF--boundary: what ends a part's content
        // the first boundary line: at the start, or after a preamble that ends with CRLF
        guard var pos = find(dash, in: body, from: 0), pos == 0 || (pos >= 2 && body[pos - 2] == 13 && body[pos - 1] == 10) else {
            throw MultipartError("the body does not contain its multipart boundary")
        }
        pos += dash.count
        var parts: [MultipartPart] = []
        while true {
            // after a boundary: "--" closes the body, else optional whitespace then CRLF (or LF)
            if pos + 1 < body.count, body[pos] == 45, body[pos + 1] == 45 { return parts }
            while pos < body.count, body[pos] == 32 || body[pos] == 9 { pos += 1 }
            if pos < body.count, body[pos] == 13 { pos += 1 }
            guard pos < body.count, body[pos] == 10 else { throw MultipartError("a multipart boundary line is malformed or the body ends early") }
            pos += 1
            guard parts.count < maxParts else { throw MultipartError("more than \(maxParts) parts in the multipart body") }
            // headers, up to an empty line
            var name: String?, filename: String?, contentType: String?
            var headerBytes = 0
            while true {
                guard let eol = body[pos...].firstIndex(of: 10) else { throw MultipartError("a part's headers are not terminated") }
                var line = body[pos..<eol]
                if line.last == 13 { line = line.dropLast() }
                headerBytes += eol + 1 - pos
                pos = eol + 1
                guard headerBytes <= maxHeaderBytes else { throw MultipartError("a part's headers exceed \(maxHeaderBytes) bytes") }
                if line.isEmpty { break }
                guard let text = String(validating: line, as: UTF8.self), let colon = text.firstIndex(of: ":") else {
                    throw MultipartError("a part's header line is malformed")
                }
                let key = text[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
                let value = text[text.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                switch key {
                case "content-disposition":
                    let params = parameters(value)
                    guard params.first?.0.lowercased() == "form-data" else {
                        throw MultipartError("a part's Content-Disposition is not form-data")
                    }
                    name = params.first { $0.0.lowercased() == "name" }?.1
                    filename = params.first { $0.0.lowercased() == "filename" }?.1
                case "content-type": contentType = value
                default: break
                }
            }
            guard let name, !name.isEmpty else { throw MultipartError("a part has no Content-Disposition name") }
            guard let end = find(delimiter, in: body, from: pos) else {
                throw MultipartError("the body ends inside the part '\(name.prefix(64))' (no closing boundary)")
            }
            parts.append(MultipartPart(name: name, filename: filename, contentType: contentType, body: Array(body[pos..<end])))
            pos = end + delimiter.count
        }
    }

    /// `form-data; name="a"; filename="b.png"` → [("form-data", ""), ("name", "a"), ("filename", "b.png")]; quoted
    /// values may hold ';' and backslash escapes.
    static func parameters(_ value: String) -> [(String, String)] {
        var out: [(String, String)] = []
        var chars = Array(value.unicodeScalars)[...]
        while !chars.isEmpty {
            while let c = chars.first, c == " " || c == "\t" || c == ";" { chars.removeFirst() }
            var key = "", val = ""
            while let c = chars.first, c != "=", c != ";" { key.unicodeScalars.append(c); chars.removeFirst() }
            if chars.first == "=" {
                chars.removeFirst()
                while chars.first == " " { chars.removeFirst() }
                if chars.first == "\"" {
                    chars.removeFirst()
                    while let c = chars.first, c != "\"" {
                        chars.removeFirst()
                        if c == "\\", let n = chars.first { val.unicodeScalars.append(n); chars.removeFirst() } else { val.unicodeScalars.append(c) }
                    }
                    if !chars.isEmpty { chars.removeFirst() }
                    while let c = chars.first, c != ";" { chars.removeFirst() }
                } else {
                    while let c = chars.first, c != ";" { val.unicodeScalars.append(c); chars.removeFirst() }
                }
            }
            let k = key.trimmingCharacters(in: .whitespaces)
            if !k.isEmpty { out.append((k, val.trimmingCharacters(in: .whitespaces))) }
        }
        return out
    }

    /// The first index ≥ `from` where `needle` occurs in `hay`.
    static func find(_ needle: [UInt8], in hay: [UInt8], from: Int) -> Int? {
        guard let first = needle.first, hay.count >= needle.count else { return nil }
        var i = from
        let last = hay.count - needle.count
        return hay.withUnsafeBufferPointer { h in
            needle.withUnsafeBufferPointer { n in
                while i <= last {
                    guard let p = memchr(h.baseAddress! + i, Int32(first), last - i + 1) else { return nil }
                    i = h.baseAddress!.distance(to: p.assumingMemoryBound(to: UInt8.self))
                    if memcmp(h.baseAddress! + i, n.baseAddress!, n.count) == 0 { return i }
                    i += 1
                }
                return nil
            }
        }
    }

    /// A body of the given fields and files (for tests and the fuzz seeds; clients build their own).
    public static func encode(_ parts: [MultipartPart], boundary: String) -> [UInt8] {
        var out: [UInt8] = []
        for p in parts {
            out += Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(p.name)\"".utf8)
            if let f = p.filename { out += Array("; filename=\"\(f)\"".utf8) }
            out += [13, 10]
            if let t = p.contentType { out += Array("Content-Type: \(t)\r\n".utf8) }
            out += [13, 10] + p.body + [13, 10]
        }
        out += Array("--\(boundary)--\r\n".utf8)
        return out
    }
}

extension MultipartPart {
    public init(name: String, text: String) { self.init(name: name, filename: nil, contentType: nil, body: Array(text.utf8)) }
    public init(name: String, filename: String, contentType: String = "image/png", bytes: [UInt8]) {
        self.init(name: name, filename: filename, contentType: contentType, body: bytes)
    }
}
