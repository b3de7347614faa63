import Foundation

/// A model file's identity for image metadata: the sha256 of the whole file (AUTOMATIC1111's "Model hash" shows
/// its first 10 hex digits). Computed once per file and cached in memory and, where the folder is writable,
/// beside the model as `<file>.sha256` ("<hex>  <size> <mtime>"; recomputed when the size or mtime changes).
public enum ModelHash {
    nonisolated(unsafe) static var memory: [String: String] = [:]
    static let lock = NSLock()

    public static func sha256(of path: String) throws -> String {
        let attrs = try FileManager.default.attributesOfItem(atPath: path)
        let size = (attrs[.size] as? NSNumber)?.int64Value ?? -1
        let mtime = (attrs[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        let stamp = "\(size) \(Int64(mtime * 1000))"
        let key = path + "|" + stamp
        lock.lock(); defer { lock.unlock() }
        if let h = memory[key] { return h }
        let cache = path + ".sha256"
        if let text = try? String(contentsOfFile: cache, encoding: .utf8) {
            let parts = text.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)
            if parts.count == 3, parts[0].count == 64, "\(parts[1]) \(parts[2].trimmingCharacters(in: .whitespacesAndNewlines))" == stamp {
                memory[key] = String(parts[0])
                return String(parts[0])
            }
        }
        let file = try ReadOnlyFile(path)
        var s = SHA256()
        var offset = 0
        let chunk = 8 << 20
        while offset < file.size {
            let bytes = try file.bytes(at: offset, count: min(chunk, file.size - offset))
            s.update(bytes)
            offset += bytes.count
        }
        let h = SHA256.hex(s.finalize())
        memory[key] = h
        // best effort: a read-only folder keeps the hash in memory only
        try? Data("\(h) \(stamp)\n".utf8).write(to: URL(fileURLWithPath: cache), options: .atomic)
        return h
    }
}
