import Foundation

/// The safetensors of one model component: a single file, or shards listed by `*.safetensors.index.json`.
/// Every tensor name is unique across the files; every tensor the index names is in its shard.
public struct ComponentWeights {
    public struct Entry {
        public let info: SafeTensorInfo
        public let file: SafeTensorsFile
    }
    public let entries: [Entry]

    public init(directory: String, files: [String]) throws {
        let fm = FileManager.default
        let indexFiles = ((try? fm.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".safetensors.index.json") }.sorted()
        var chosen = files
        var weightMap: [(String, String)]? = nil
        if let idx = indexFiles.first {
            let path = (directory as NSString).appendingPathComponent(idx)
            let (_, json) = try ModelDirectory.readJSON(path)
            guard let map = json["weight_map"]?.object else { throw WeightsError(.malformed, file: path, "has no weight_map object") }
            var pairs: [(String, String)] = []
            for (t, f) in map {
                guard let f = f.string, !f.contains("/"), f.hasSuffix(".safetensors") else {
                    throw WeightsError(.malformed, file: path, "weight_map entry for '\(t)' is not a .safetensors file in this folder")
                }
                pairs.append((t, f))
            }
            weightMap = pairs
            chosen = Array(Set(pairs.map(\.1))).sorted()
            for f in chosen where !files.contains(f) { throw WeightsError(.malformed, file: path, "names shard \(f), which is missing") }
        } else if files.count > 1 {
            throw WeightsError(.malformed, file: directory, "has \(files.count) .safetensors files but no *.safetensors.index.json saying which tensor is where")
        }
        var entries: [Entry] = []
        var seen: [String: String] = [:]
        for f in chosen {
            let st = try SafeTensorsFile(path: (directory as NSString).appendingPathComponent(f))
            for t in st.tensors {
                if let other = seen[t.name] { throw WeightsError(.tensor, file: st.path, tensor: t.name, "also appears in \(other)") }
                seen[t.name] = f
                entries.append(Entry(info: t, file: st))
            }
        }
        if let map = weightMap {
            for (t, f) in map {
                guard let actual = seen[t] else {
                    throw WeightsError(.tensor, file: (directory as NSString).appendingPathComponent(f), tensor: t, "listed in the index but missing from the shard")
                }
                guard actual == f else {
                    throw WeightsError(.tensor, file: (directory as NSString).appendingPathComponent(actual), tensor: t, "the index says it is in \(f)")
                }
            }
            let listed = Set(map.map(\.0))
            if let extra = entries.first(where: { !listed.contains($0.info.name) }) {
                throw WeightsError(.tensor, file: extra.file.path, tensor: extra.info.name, "is in a shard but not in the index")
            }
        }
        self.entries = entries
    }
}
