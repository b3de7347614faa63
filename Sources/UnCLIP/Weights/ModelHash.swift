import Foundation

/// A model file's identity for image metadata: the sha256 of the whole file (AUTOMATIC1111's "Model hash" shows
/// its first 10 hex digits). Computed once per file and cached in memory and, where the folder is writable,
/// beside the model as `<file>.sha256` ("<hex> <size> <mtime>"; recomputed when the size or mtime changes), or,
/// where the model's folder is read-only, under `$XDG_CACHE_HOME/unclip/` (default `~/.cache/unclip/`).
public enum ModelHash {
    nonisolated(unsafe) static var memory: [String: String] = [:]
    static let lock = NSLock()

    public static func sha256(of path: String) throws -> String {
        let attrs = try FileManager.default.attributesOfItem(atPath: path)
        let size = (attrs[.size] as? NSNumber)?.int64Value ?? -1
        let mtime = (attrs[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        let ms = (mtime * 1000).rounded(.down)
        let stamp = "\(size) \(ms.isFinite && abs(ms) < 9e15 ? Int64(ms) : 0)"
        let key = path + "|" + stamp
        lock.lock(); defer { lock.unlock() }
        if let h = memory[key] { return h }
        for cache in cacheFiles(path) {
            guard ((try? FileManager.default.attributesOfItem(atPath: cache))?[.size] as? NSNumber)?.intValue ?? 0 < 4096,
                  let text = try? String(contentsOfFile: cache, encoding: .utf8) else { continue }
            let parts = text.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)
            if parts.count == 3, parts[0].count == 64, parts[0].allSatisfy({ $0.isHexDigit && !$0.isUppercase }), "\(parts[1]) \(parts[2].trimmingCharacters(in: .whitespacesAndNewlines))" == stamp {
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
        // best effort: beside the model, else the user's cache folder, else memory only
        for cache in cacheFiles(path) {
            try? FileManager.default.createDirectory(atPath: (cache as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            if (try? Data("\(h) \(stamp)\n".utf8).write(to: URL(fileURLWithPath: cache), options: .atomic)) != nil { break }
        }
        return h
    }

    static func cacheFiles(_ path: String) -> [String] {
        let env = ProcessInfo.processInfo.environment
        let base = env["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? ((env["HOME"] ?? "/tmp") as NSString).appendingPathComponent(".cache")
        let absolute = URL(fileURLWithPath: path).standardized.path
        let flat = String(absolute.map { $0 == "/" ? "_" : $0 })
        return [path + ".sha256", ((base as NSString).appendingPathComponent("unclip") as NSString).appendingPathComponent(flat + ".sha256")]
    }
}
