import Foundation
import HTTPTypes
import UnCLIP

/// API keys, compared in constant time (a key's bytes are never compared with an early exit, nor logged).
struct APIKeys: Sendable {
    let digests: [[UInt8]]

    init(_ keys: [String]) { digests = keys.map { Self.digest($0) } }

    var enabled: Bool { !digests.isEmpty }

    /// The SHA-256 of the key: comparing fixed-length digests leaks neither the key's bytes nor its length.
    static func digest(_ key: String) -> [UInt8] {
        let hex = SHA256.hash(Array(key.utf8))
        return Array(hex.utf8)
    }

    func accepts(_ presented: String) -> Bool {
        let d = Self.digest(presented)
        var ok = false
        for k in digests {
            var diff: UInt8 = 0
            for i in 0..<k.count { diff |= k[i] ^ d[i] }
            ok = ok || diff == 0
        }
        return ok
    }

    /// The key a request presents: `Authorization: Bearer <key>`, or Basic auth whose password is the key.
    static func presented(_ header: String?) -> String? {
        guard let header else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { return nil }
        switch parts[0].lowercased() {
        case "bearer": return parts[1].trimmingCharacters(in: .whitespaces)
        case "basic":
            guard let data = Data(base64Encoded: parts[1].trimmingCharacters(in: .whitespaces)),
                  let s = String(data: data, encoding: .utf8), let colon = s.firstIndex(of: ":") else { return nil }
            return String(s[s.index(after: colon)...])
        default: return nil
        }
    }
}
