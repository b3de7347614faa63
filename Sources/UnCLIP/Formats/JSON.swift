/// A strict JSON (RFC 8259) value and parser for the files this engine reads: safetensors headers,
/// diffusers/transformers configs, tokenizer vocabularies. Strict where it matters for untrusted input:
/// valid UTF-8 only, duplicate object keys rejected, nesting depth bounded, integers kept exact.
public indirect enum JSON: Equatable, Sendable {
    case null
    case bool(Bool)
    /// A number: `int` when it is written as an integer that fits Int64, else only `double`.
    case number(double: Double, int: Int64?)
    case string(String)
    case array([JSON])
    /// Members in file order (keys are unique).
    case object([(String, JSON)])

    public static func == (a: JSON, b: JSON) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.number(x, i), .number(y, j)): return x == y && i == j
        case let (.string(x), .string(y)): return x == y
        case let (.array(x), .array(y)): return x == y
        case let (.object(x), .object(y)): return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    public subscript(key: String) -> JSON? {
        if case let .object(members) = self { return members.first { $0.0 == key }?.1 }
        return nil
    }

    public var int: Int64? { if case let .number(_, i) = self { return i } else { return nil } }
    public var double: Double? { if case let .number(d, _) = self { return d } else { return nil } }
    public var string: String? { if case let .string(s) = self { return s } else { return nil } }
    public var bool: Bool? { if case let .bool(b) = self { return b } else { return nil } }
    public var array: [JSON]? { if case let .array(a) = self { return a } else { return nil } }
    public var object: [(String, JSON)]? { if case let .object(o) = self { return o } else { return nil } }

    /// Serialises compactly (keys in stored order); numbers keep their integer form when they have one.
    public var text: String {
        switch self {
        case .null: return "null"
        case let .bool(b): return b ? "true" : "false"
        case let .number(d, i):
            if let i { return String(i) }
            return d.isFinite ? "\(d)" : "null"
        case let .string(s): return JSON.quote(s)
        case let .array(a): return "[" + a.map(\.text).joined(separator: ",") + "]"
        case let .object(o): return "{" + o.map { JSON.quote($0.0) + ":" + $0.1.text }.joined(separator: ",") + "}"
        }
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 { out += "\\u" + String(repeating: "0", count: 4 - String(u.value, radix: 16).count) + String(u.value, radix: 16) }
                else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }
}

/// Why a JSON text was refused, with the byte offset.
public struct JSONError: Error, Equatable, CustomStringConvertible {
    public let offset: Int
    public let reason: String
    public var description: String { "invalid JSON at byte \(offset): \(reason)" }
}

extension JSON {
    /// Nesting deeper than this is refused (configs are a few levels deep).
    public static let maxDepth = 64

    public static func parse(_ bytes: some Collection<UInt8>) throws(JSONError) -> JSON {
        let array = Array(bytes)
        return try array.withUnsafeBufferPointer { (buf) throws(JSONError) -> JSON in
            var p = JSONParser(buf: buf)
            p.skipSpace()
            let v = try p.value(depth: 0)
            p.skipSpace()
            guard p.i == buf.count else { throw JSONError(offset: p.i, reason: "unexpected data after the value") }
            return v
        }
    }

    public static func parse(_ text: String) throws(JSONError) -> JSON { try parse(Array(text.utf8)) }
}

private struct JSONParser {
    let buf: UnsafeBufferPointer<UInt8>
    var i = 0

    func fail(_ reason: String) -> JSONError { JSONError(offset: i, reason: reason) }

    mutating func skipSpace() {
        while i < buf.count, buf[i] == 0x20 || buf[i] == 0x0A || buf[i] == 0x0D || buf[i] == 0x09 { i += 1 }
    }

    mutating func expect(_ literal: StaticString) throws(JSONError) {
        let n = literal.utf8CodeUnitCount
        guard i + n <= buf.count else { throw fail("truncated literal") }
        let lit = UnsafeBufferPointer(start: literal.utf8Start, count: n)
        for k in 0..<n where buf[i + k] != lit[k] { throw fail("invalid literal") }
        i += n
    }

    mutating func value(depth: Int) throws(JSONError) -> JSON {
        guard depth < JSON.maxDepth else { throw fail("nesting deeper than \(JSON.maxDepth)") }
        guard i < buf.count else { throw fail("unexpected end of input") }
        switch buf[i] {
        case UInt8(ascii: "{"): return try object(depth: depth)
        case UInt8(ascii: "["): return try array(depth: depth)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try expect("true"); return .bool(true)
        case UInt8(ascii: "f"): try expect("false"); return .bool(false)
        case UInt8(ascii: "n"): try expect("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
        default: throw fail("unexpected character")
        }
    }

    mutating func object(depth: Int) throws(JSONError) -> JSON {
        i += 1
        var members: [(String, JSON)] = []
        var seen = Set<String>()
        skipSpace()
        if i < buf.count, buf[i] == UInt8(ascii: "}") { i += 1; return .object([]) }
        while true {
            skipSpace()
            guard i < buf.count, buf[i] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
            let keyAt = i
            let key = try string()
            guard seen.insert(key).inserted else { throw JSONError(offset: keyAt, reason: "duplicate key \"\(key)\"") }
            skipSpace()
            guard i < buf.count, buf[i] == UInt8(ascii: ":") else { throw fail("expected ':'") }
            i += 1
            skipSpace()
            members.append((key, try value(depth: depth + 1)))
            skipSpace()
            guard i < buf.count else { throw fail("unterminated object") }
            if buf[i] == UInt8(ascii: ",") { i += 1; continue }
            if buf[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
            throw fail("expected ',' or '}'")
        }
    }

    mutating func array(depth: Int) throws(JSONError) -> JSON {
        i += 1
        var items: [JSON] = []
        skipSpace()
        if i < buf.count, buf[i] == UInt8(ascii: "]") { i += 1; return .array([]) }
        while true {
            skipSpace()
            items.append(try value(depth: depth + 1))
            skipSpace()
            guard i < buf.count else { throw fail("unterminated array") }
            if buf[i] == UInt8(ascii: ",") { i += 1; continue }
            if buf[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
            throw fail("expected ',' or ']'")
        }
    }

    mutating func hex4() throws(JSONError) -> UInt32 {
        guard i + 4 <= buf.count else { throw fail("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = buf[i]
            let d: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = c - UInt8(ascii: "A") + 10
            default: throw fail("bad hex digit in \\u escape")
            }
            v = v << 4 | UInt32(d)
            i += 1
        }
        return v
    }

    mutating func string() throws(JSONError) -> String {
        i += 1
        var out: [UInt8] = []
        let start = i
        // Fast path: no escapes.
        while i < buf.count, buf[i] != UInt8(ascii: "\""), buf[i] != UInt8(ascii: "\\"), buf[i] >= 0x20 { i += 1 }
        out.append(contentsOf: buf[start..<i])
        while true {
            guard i < buf.count else { throw fail("unterminated string") }
            let c = buf[i]
            if c == UInt8(ascii: "\"") { i += 1; break }
            if c < 0x20 { throw fail("control character in string") }
            if c != UInt8(ascii: "\\") { out.append(c); i += 1; continue }
            i += 1
            guard i < buf.count else { throw fail("truncated escape") }
            let e = buf[i]
            i += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var cp = try hex4()
                if (0xD800..<0xDC00).contains(cp) {
                    guard i + 2 <= buf.count, buf[i] == UInt8(ascii: "\\"), buf[i + 1] == UInt8(ascii: "u") else {
                        throw fail("unpaired surrogate")
                    }
                    i += 2
                    let lo = try hex4()
                    guard (0xDC00..<0xE000).contains(lo) else { throw fail("unpaired surrogate") }
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)
                } else if (0xDC00..<0xE000).contains(cp) {
                    throw fail("unpaired surrogate")
                }
                guard let scalar = Unicode.Scalar(cp) else { throw fail("invalid code point") }
                out.append(contentsOf: Array(String(Character(scalar)).utf8))
            default: throw fail("invalid escape")
            }
        }
        guard let s = String(validating: out, as: UTF8.self) else { throw JSONError(offset: start, reason: "string is not valid UTF-8") }
        return s
    }

    mutating func number() throws(JSONError) -> JSON {
        let start = i
        if buf[i] == UInt8(ascii: "-") { i += 1 }
        func digits(_ p: inout JSONParser) -> Int {
            let s = p.i
            while p.i < p.buf.count, p.buf[p.i] >= UInt8(ascii: "0"), p.buf[p.i] <= UInt8(ascii: "9") { p.i += 1 }
            return p.i - s
        }
        guard i < buf.count else { throw fail("truncated number") }
        if buf[i] == UInt8(ascii: "0") { i += 1 } else if digits(&self) == 0 { throw fail("expected digits") }
        var integral = true
        if i < buf.count, buf[i] == UInt8(ascii: ".") {
            i += 1
            integral = false
            guard digits(&self) > 0 else { throw fail("expected digits after '.'") }
        }
        if i < buf.count, buf[i] == UInt8(ascii: "e") || buf[i] == UInt8(ascii: "E") {
            i += 1
            integral = false
            if i < buf.count, buf[i] == UInt8(ascii: "+") || buf[i] == UInt8(ascii: "-") { i += 1 }
            guard digits(&self) > 0 else { throw fail("expected exponent digits") }
        }
        let text = String(decoding: buf[start..<i], as: UTF8.self)
        guard let d = Double(text) else { throw JSONError(offset: start, reason: "unrepresentable number") }
        return .number(double: d, int: integral ? Int64(text) : nil)
    }
}

extension JSON {
    /// A positive integer config value below 2^20 (`fallback` when absent), or a typed error naming the config.
    func positiveInt(_ key: String, in what: String, fallback: Int? = nil) throws -> Int {
        guard let v = self[key]?.int.map(Int.init) ?? fallback, v > 0, v < 1 << 20 else {
            throw UnCLIPError.invalidArgument(name: "\(what) config", detail: "\(key) is missing or invalid")
        }
        return v
    }
}
