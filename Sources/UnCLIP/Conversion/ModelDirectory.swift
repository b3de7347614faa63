import Foundation

/// A diffusers/hub model directory (model_index.json and one subfolder per component), read without Python.
public struct ModelDirectory {
    public enum ComponentKind: Equatable {
        /// Weights: safetensors (single or sharded) and config.json.
        case model(files: [String])
        case scheduler
        case tokenizer
        case imageProcessor
    }

    public struct Component {
        public let name: String
        public let library: String
        public let className: String
        public let kind: ComponentKind
        /// config.json, scheduler_config.json or preprocessor_config.json (raw text, validated as JSON).
        public let config: String?
        public let configJSON: JSON?
        public var directory: String
    }

    public let path: String
    public let modelIndex: String
    public let components: [Component]

    public init(path: String) throws {
        self.path = path
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw WeightsError(.io, file: path, "no such folder: give the hub-layout model folder (the one with model_index.json)")
        }
        guard isDir.boolValue else {
            throw WeightsError(.io, file: path, path.lowercased().hasSuffix(".gguf")
                ? "is a GGUF file, not a model folder: convert reads hub-layout folders; `unclip-weights quantize` re-stores a GGUF file"
                : "is a file, not a model folder: give the hub-layout folder that holds model_index.json")
        }
        let indexPath = (path as NSString).appendingPathComponent("model_index.json")
        guard FileManager.default.fileExists(atPath: indexPath) else {
            throw WeightsError(.malformed, file: path, "not a diffusers model directory: it has no model_index.json")
        }
        let (indexText, index) = try ModelDirectory.readJSON(indexPath)
        modelIndex = indexText
        guard let members = index.object else { throw WeightsError(.malformed, file: indexPath, "model_index.json is not a JSON object") }
        var comps: [Component] = []
        for (name, value) in members where !name.hasPrefix("_") {
            guard let pair = value.array, pair.count == 2 else { continue }  // scalar options (e.g. requires_safety_checker)
            guard let lib = pair[0].string, let cls = pair[1].string else { continue }  // [null, null]: component absent
            guard name.range(of: "^[A-Za-z0-9_]+$", options: .regularExpression) != nil else {
                throw WeightsError(.malformed, file: indexPath, "component name '\(name)' is not a plain identifier")
            }
            let dir = (path as NSString).appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
                throw WeightsError(.malformed, file: indexPath, "lists component '\(name)' but the directory \(name)/ is missing")
            }
            comps.append(try ModelDirectory.component(name: name, library: lib, className: cls, dir: dir))
        }
        guard !comps.isEmpty else { throw WeightsError(.malformed, file: indexPath, "lists no components") }
        components = comps
    }

    static func readJSON(_ path: String) throws -> (String, JSON) {
        guard let data = FileManager.default.contents(atPath: path) else { throw WeightsError(.io, file: path, "cannot read") }
        do {
            let json = try JSON.parse(Array(data))
            return (String(decoding: data, as: UTF8.self), json)
        } catch {
            throw WeightsError(.malformed, file: path, "not valid JSON (\(error))")
        }
    }

    static func component(name: String, library: String, className: String, dir: String) throws -> Component {
        let fm = FileManager.default
        let files = ((try? fm.contentsOfDirectory(atPath: dir)) ?? []).sorted()
        func has(_ f: String) -> Bool { files.contains(f) }
        func configAt(_ f: String) throws -> (String, JSON) { try readJSON((dir as NSString).appendingPathComponent(f)) }
        if className.hasSuffix("Tokenizer") || className.hasSuffix("TokenizerFast") {
            guard has("tokenizer.json") || (has("vocab.json") && has("merges.txt")) else {
                throw WeightsError(.malformed, file: dir, "tokenizer has neither tokenizer.json (transformers 5, tokenizers) nor vocab.json + merges.txt")
            }
            let cfg = has("tokenizer_config.json") ? try configAt("tokenizer_config.json") : nil
            return Component(name: name, library: library, className: className, kind: .tokenizer, config: cfg?.0, configJSON: cfg?.1, directory: dir)
        }
        if className.hasSuffix("Scheduler") {
            guard has("scheduler_config.json") else { throw WeightsError(.malformed, file: dir, "scheduler has no scheduler_config.json") }
            let cfg = try configAt("scheduler_config.json")
            return Component(name: name, library: library, className: className, kind: .scheduler, config: cfg.0, configJSON: cfg.1, directory: dir)
        }
        if className.hasSuffix("ImageProcessor") || className.hasSuffix("FeatureExtractor") {
            guard has("preprocessor_config.json") else { throw WeightsError(.malformed, file: dir, "image processor has no preprocessor_config.json") }
            let cfg = try configAt("preprocessor_config.json")
            return Component(name: name, library: library, className: className, kind: .imageProcessor, config: cfg.0, configJSON: cfg.1, directory: dir)
        }
        guard has("config.json") else { throw WeightsError(.malformed, file: dir, "model component has no config.json") }
        let cfg = try configAt("config.json")
        let safetensors = files.filter { $0.hasSuffix(".safetensors") }
        if safetensors.isEmpty {
            if let pickle = files.first(where: { $0.hasSuffix(".bin") || $0.hasSuffix(".pt") || $0.hasSuffix(".ckpt") || $0.hasSuffix(".pth") }) {
                throw WeightsError(.unsupported, file: (dir as NSString).appendingPathComponent(pickle),
                    "pickle checkpoints are not read (loading them can run arbitrary code). Make safetensors with PyTorch: "
                    + "python -c \"import torch; from safetensors.torch import save_file; "
                    + "save_file({k: v.contiguous() for k, v in torch.load('\(pickle)', map_location='cpu').items()}, 'model.safetensors')\" "
                    + "in that folder, or load the model and call save_pretrained(..., safe_serialization=True)")
            }
            throw WeightsError(.malformed, file: dir, "model component has no .safetensors weights")
        }
        return Component(name: name, library: library, className: className, kind: .model(files: safetensors),
                         config: cfg.0, configJSON: cfg.1, directory: dir)
    }
}
