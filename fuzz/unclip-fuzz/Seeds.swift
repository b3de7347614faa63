import Foundation
import UnCLIP
import UnCLIPAPI

/// Seed corpora from the repository's fixtures, small enough for libFuzzer (each a few KiB): a tiny unclip GGUF
/// (int8 and float tensors, a config, checksums), safetensors and noise files, configs, PNGs of each layout, prompts.
enum FuzzSeeds {
    static func write(into dir: String) throws {
        let fm = FileManager.default
        let fixtures = FuzzPaths.repository.appendingPathComponent("Tests/UnCLIPTests/Fixtures")
        func put(_ target: FuzzTarget, _ name: String, _ bytes: [UInt8]) throws {
            let d = (dir as NSString).appendingPathComponent(target.rawValue)
            try AtomicFile.makeDirectory(d)
            try AtomicFile.write(bytes, to: (d as NSString).appendingPathComponent(name))
        }
        try AtomicFile.makeDirectory(dir)
        let tmp = (dir as NSString).appendingPathComponent(".tmp-\(getpid())")
        defer { unlink(tmp) }
        // GGUF: two components, an int8-packed weight with its companions, an f16 and an f32 tensor
        let cfg = #"{"in_features": 64}"#
        let n = 32, k = 64
        let np = n, kp = 64
        var meta: [(String, GGUFValue)] = [("general.architecture", .string("unclip")), ("general.alignment", .u32(32)),
                                           (UnCLIPGGUF.weightType, .string("q8")), (UnCLIPGGUF.components, .strings(["a", "b"])),
                                           (UnCLIPGGUF.config("a"), .string(cfg)), (UnCLIPGGUF.q8Shape("a.w.weight"), .ints([n, k]))]
        meta.append((UnCLIPGGUF.className("a"), .string("Linear")))
        let tensors = [GGUFWriter.Tensor(name: "a.w.weight", type: .i8, shape: [np, kp]), GGUFWriter.Tensor(name: "a.w.weight.scale", type: .f32, shape: [n]),
                       GGUFWriter.Tensor(name: "a.w.weight.colsum", type: .i32, shape: [n]), GGUFWriter.Tensor(name: "a.w.bias", type: .f32, shape: [n]),
                       GGUFWriter.Tensor(name: "b.h", type: .f16, shape: [4, 8])]
        try GGUFWriter(path: tmp).write(metadata: meta, tensors: tensors, checksumKey: UnCLIPGGUF.tensorChecksums) { i, buf in
            for j in 0..<buf.count { buf[j] = 0 }
            if i == 1 { let f = buf.bindMemory(to: Float.self); for j in f.indices { f[j] = 0.01 } }
            if i == 4 { let h = buf.bindMemory(to: UInt16.self); for j in h.indices { h[j] = 0x3c00 } }
        }
        try put(.gguf, "tiny-q8.gguf", Array(try Data(contentsOf: URL(fileURLWithPath: tmp))))
        // safetensors and noise: a small recorded-noise layout
        try SafeTensorsWriter.write(tmp, tensors: [("prior.latents", [1, 8], (0..<8).map { Float($0) }), ("decoder.latents", [1, 3, 2, 2], [Float](repeating: 0.5, count: 12))])
        let st = Array(try Data(contentsOf: URL(fileURLWithPath: tmp)))
        try put(.safetensors, "small.safetensors", st)
        try put(.noise, "noise.safetensors", st)
        let noise = try Data(contentsOf: fixtures.appendingPathComponent("tiny-karlo-run.noise.safetensors"))
        let headerLength = Int(noise.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        try put(.noise, "fixture-header.safetensors", Array(noise.prefix(min(noise.count, 8 + headerLength + 256))))
        // JSON: the tiny model's configs
        for (i, f) in ["model_index.json", "decoder/config.json", "prior/config.json", "text_encoder/config.json",
                       "feature_extractor/preprocessor_config.json", "decoder_scheduler/scheduler_config.json"].enumerated() {
            if let d = fm.contents(atPath: fixtures.appendingPathComponent("tiny-karlo/" + f).path) { try put(.json, "config-\(i).json", Array(d)) }
        }
        try put(.json, "literals.json", Array(#"[1, -2.5e3, true, null, "é\u00e9\ud83d\ude00", {"a": {}}]"#.utf8))
        // PNG: RGB, RGBA, and the fixture image
        for (name, c) in [("rgb.png", 3), ("rgba.png", 4)] {
            try PNGImage(width: 5, height: 3, channels: c, pixels: (0..<(15 * c)).map { UInt8($0 * 7 % 256) }).write(tmp)
            try put(.png, name, Array(try Data(contentsOf: URL(fileURLWithPath: tmp))))
        }
        if let d = fm.contents(atPath: fixtures.appendingPathComponent("tiny-karlo-run-vary.input.png").path), d.count < 64 << 10 {
            try put(.png, "fixture.png", Array(d))
        }
        // prompts: the tokenizer corpus's first entries
        if let d = fm.contents(atPath: fixtures.appendingPathComponent("tokenizer-corpus.json").path),
           let entries = try JSON.parse(Array(d))["entries"]?.array {
            for (i, e) in entries.prefix(64).enumerated() { if let t = e["text"]?.string { try put(.tokenizer, "prompt-\(i).txt", Array(t.utf8)) } }
        }
        // server requests: multipart edits/variations with small PNGs, JSON bodies of both APIs
        let rgbaPixels: [UInt8] = (0..<64).map { (i: Int) -> UInt8 in i % 4 != 3 ? UInt8(truncatingIfNeeded: i * 5) : (i < 32 ? 0 : 255) }
        let rgba = try PNGImage(width: 4, height: 4, channels: 4, pixels: rgbaPixels).encoded()
        let rgb = try PNGImage(width: 4, height: 4, channels: 3, pixels: (0..<48).map { UInt8($0 * 5) }).encoded()
        let b = FuzzTarget.boundary
        try put(.multipart, "edit.bin", Multipart.encode([MultipartPart(name: "image", filename: "a.png", bytes: rgba), MultipartPart(name: "prompt", text: "a red circle"),
                                                         MultipartPart(name: "n", text: "2"), MultipartPart(name: "size", text: "256x256")], boundary: b))
        try put(.multipart, "edit-mask.bin", Multipart.encode([MultipartPart(name: "image[]", filename: "a.png", bytes: rgb), MultipartPart(name: "mask", filename: "m.png", bytes: rgba),
                                                              MultipartPart(name: "prompt", text: "a")], boundary: b))
        try put(.multipart, "variation.bin", Multipart.encode([MultipartPart(name: "image", filename: "a.png", bytes: rgb), MultipartPart(name: "response_format", text: "b64_json")], boundary: b))
        try put(.request, "generation.json", Array(#"{"prompt": "a red circle", "n": 2, "size": "512x512", "response_format": "url", "model": "dall-e-2", "user": "u"}"#.utf8))
        try put(.request, "txt2img.json", Array(#"{"prompt": "a red circle", "seed": -1, "steps": 20, "cfg_scale": 7.0, "width": 512, "height": 512, "batch_size": 2, "n_iter": 1, "sampler_name": "DDIM", "negative_prompt": ""}"#.utf8))
        let b64rgb = Data(rgb).base64EncodedString(), b64mask = Data(rgba).base64EncodedString()
        try put(.request, "img2img.json", Array(#"{"prompt": "a", "init_images": ["data:image/png;base64,\#(b64rgb)"], "mask": "\#(b64mask)", "inpainting_mask_invert": 1, "steps": 5}"#.utf8))
        print("wrote seed corpora under \(dir): \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))")
    }
}
