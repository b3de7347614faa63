import Foundation
import UnCLIP
import UnCLIPAPI

/// The fuzz targets: each feeds arbitrary bytes to one parser of user-controlled input and must return (any thrown
/// error is a correct answer) without trapping, hanging or touching memory it does not own.
enum FuzzTarget: String, CaseIterable {
    /// GGUFFile, then ModelFile's checks, every component mapped (checksums, finite floats), int8 column sums, configs
    /// and the tokenizer the file carries.
    case gguf
    /// SafeTensorsFile and every tensor read as floats.
    case safetensors
    /// The JSON parser (configs, model_index.json, tokenizer files).
    case json
    /// PNGImage.read (libpng behind our checks), then the CLIP preprocessing and the edit-mask reading of the image.
    case png
    /// The CLIP tokenizer (the embedded vocabulary) on arbitrary UTF-8.
    case tokenizer
    /// The noise-file reader: every draw a run would ask for, with the file's own shapes.
    case noise
    /// The server's multipart/form-data reader (boundary "fuzzboundary"), then the OpenAI edits and variations
    /// checks on the parts (PNG uploads decoded from memory).
    case multipart
    /// The server's JSON request checks: OpenAI generations, AUTOMATIC1111 txt2img and img2img (base64 PNGs).
    case request

    static let boundary = "fuzzboundary"

    /// A file per input for the readers that take paths (in /dev/shm when it exists: no disk writes).
    static let scratch: String = {
        let dir = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        return (dir as NSString).appendingPathComponent("unclip-fuzz-\(getpid())")
    }()

    static func file(_ bytes: [UInt8]) -> String {
        FileManager.default.createFile(atPath: scratch, contents: Data(bytes))
        return scratch
    }

    /// The tokenizer fixture's vocabulary (Tests/UnCLIPTests/Fixtures/tiny-karlo/tokenizer: CLIP's real one).
    static let clipTokenizer: CLIPTokenizer? = {
        let dir = FuzzPaths.repository.appendingPathComponent("Tests/UnCLIPTests/Fixtures/tiny-karlo/tokenizer").path
        guard let meta = try? TokenizerFiles.ggufMetadata(directory: dir, config: nil) else { return nil }
        let d = Dictionary(meta, uniquingKeysWith: { a, _ in a })
        guard let tokens = d[TokenizerFiles.tokensKey]?.strings, let merges = d[TokenizerFiles.mergesKey]?.strings else { return nil }
        return try? CLIPTokenizer(tokens: tokens, merges: merges, bos: 49406, eos: 49407, pad: 0)
    }()

    /// CLIP's preprocessing at the tiny fixture's 32×32.
    static let processor = try? CLIPImageProcessor(config: JSON.parse(Array(#"{"size": {"shortest_edge": 32}, "crop_size": {"height": 32, "width": 32}}"#.utf8)))

    func run(_ bytes: [UInt8]) {
        switch self {
        case .gguf:
            let path = Self.file(bytes)
            _ = try? GGUFFile(path: path)
            guard let m = try? ModelFile(path: path) else { return }
            _ = try? CLIPTokenizer(file: m.gguf)
            for c in m.components {
                _ = m.config(c)
                guard let scope = try? m.load(c) else { continue }
                for name in scope.names {
                    if scope.has(name + ".scale") { _ = try? scope.linear(String(name.dropLast(".weight".count))) } else { _ = try? scope.tensor(name) }
                }
            }
        case .safetensors:
            guard let f = try? SafeTensorsFile(path: Self.file(bytes)) else { return }
            for t in f.tensors where t.count <= 1 << 20 { _ = try? f.readFloats(t.name) }
        case .json:
            if let j = try? JSON.parse(bytes) { _ = j.text }
        case .png:
            guard let img = try? PNGImage.read(Self.file(bytes)), img.width * img.height <= 1 << 20 else { return }
            _ = try? Self.processor?(img)
            _ = try? EditMask(image: img, mode: .luminance)
            _ = try? EditMask(alphaOf: img)
        case .tokenizer:
            let text = String(decoding: bytes, as: UTF8.self)
            _ = Self.clipTokenizer?.encode(text)
        case .noise:
            guard let f = try? SafeTensorsFile(path: Self.file(bytes)), let n = try? ReplayNoise(path: Self.scratch) else { return }
            for t in f.tensors where t.count <= 1 << 20 { _ = try? n.draw(t.name, shape: t.shape) }
        case .multipart:
            guard let parts = try? Multipart.parse(bytes, boundary: Self.boundary) else { return }
            _ = try? OpenAIImages.edit(parts, modelName: "m")
            _ = try? OpenAIImages.variation(parts, modelName: "m")
        case .request:
            _ = try? OpenAIImages.generation(bytes, modelName: "m")
            _ = try? A1111.txt2img(bytes)
            _ = try? A1111.img2img(bytes)
        }
    }
}

enum FuzzPaths {
    /// <repo>/fuzz/unclip-fuzz/Targets.swift → <repo>
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
}
