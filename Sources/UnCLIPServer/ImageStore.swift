import Foundation
import Synchronization
import UnCLIP

/// The images behind `response_format: url`: PNGs in one folder the server owns, named by random 128-bit ids,
/// served at /v1/images/files/<id>.png, deleted after `ttl` (OpenAI's URLs expire after 60 minutes) and, when the
/// store is full, oldest first. A request's id is only ever looked up in the in-memory index: no path is built
/// from what a client sent.
public final class ImageStore: Sendable {
    public let directory: String
    public let ttl: TimeInterval
    public let maxFiles: Int
    public let maxBytes: Int

    struct Entry { let path: String; let bytes: Int; let created: Date }
    let index = Mutex<[(id: String, entry: Entry)]>([])

    public init(directory: String, ttl: TimeInterval = 3600, maxFiles: Int = 1000, maxBytes: Int = 1 << 30) throws {
        self.directory = directory
        self.ttl = ttl
        self.maxFiles = maxFiles
        self.maxBytes = maxBytes
        try AtomicFile.makeDirectory(directory)
        // files an earlier run left: no URL points at them any more
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where Self.isStoreName(name) {
            unlink((directory as NSString).appendingPathComponent(name))
        }
    }

    static func isStoreName(_ name: String) -> Bool {
        name.hasSuffix(".png") && name.utf8.count == 36 && isID(String(name.dropLast(4)))
    }

    /// 32 lowercase hex digits.
    public static func isID(_ s: String) -> Bool {
        s.utf8.count == 32 && s.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
    }

    /// Stores the bytes (written whole or not at all) and returns their id.
    public func put(_ png: [UInt8]) throws -> String {
        sweep()
        var rng = SystemRandomNumberGenerator()
        let id = (0..<2).map { _ in String(format: "%016llx", rng.next() as UInt64) }.joined()
        let path = (directory as NSString).appendingPathComponent(id + ".png")
        try AtomicFile.write(png, to: path)
        let evicted: [String] = index.withLock { list in
            list.append((id, Entry(path: path, bytes: png.count, created: Date())))
            var out: [String] = []
            var total = list.reduce(0) { $0 + $1.entry.bytes }
            while list.count > maxFiles || total > maxBytes, list.count > 1 {
                let old = list.removeFirst()
                total -= old.entry.bytes
                out.append(old.entry.path)
            }
            return out
        }
        for p in evicted { unlink(p) }
        return id
    }

    /// The bytes of a stored, unexpired image.
    public func get(_ id: String) -> [UInt8]? {
        guard Self.isID(id) else { return nil }
        sweep()
        guard let e = index.withLock({ list in list.first { $0.id == id }?.entry }) else { return nil }
        return FileManager.default.contents(atPath: e.path).map { [UInt8]($0) }
    }

    public var count: Int { index.withLock { $0.count } }

    /// Deletes expired images.
    public func sweep(now: Date = Date()) {
        let expired: [String] = index.withLock { list in
            let old = list.filter { now.timeIntervalSince($0.entry.created) >= ttl }.map(\.entry.path)
            list.removeAll { now.timeIntervalSince($0.entry.created) >= ttl }
            return old
        }
        for p in expired { unlink(p) }
    }

    /// Deletes every stored image (shutdown of a store in a temporary folder).
    public func removeAll() {
        let all = index.withLock { list in defer { list = [] }; return list.map(\.entry.path) }
        for p in all { unlink(p) }
    }
}
