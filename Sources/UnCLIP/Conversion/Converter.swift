import CKernels
import Foundation

/// Per-tensor int8 quantization error against the source weights.
public struct QuantizationEntry: Sendable {
    public let name: String
    public let shape: [Int]
    /// ‖W − Ŵ‖ / ‖W‖
    public let relativeRMS: Double
    public let maxAbs: Double
    public let cosine: Double
}

public struct ConversionResult: Sendable {
    public var tensors = 0
    public var inputBytes = 0
    public var outputBytes = 0
    public var seconds = 0.0
    public var quantization: [QuantizationEntry] = []
    public var components: [String] = []

    /// The report as JSON (for --report).
    public var reportJSON: JSON {
        func num(_ d: Double) -> JSON { .number(double: d, int: nil) }
        func int(_ i: Int) -> JSON { .number(double: Double(i), int: Int64(i)) }
        let rel = quantization.map(\.relativeRMS), cos = quantization.map(\.cosine)
        return .object([
            ("components", .array(components.map { .string($0) })),
            ("tensors", int(tensors)), ("input_bytes", int(inputBytes)), ("output_bytes", int(outputBytes)),
            ("seconds", num(seconds)),
            ("summary", .object([
                ("quantized_tensors", int(quantization.count)),
                ("mean_relative_rms", num(rel.isEmpty ? 0 : rel.reduce(0, +) / Double(rel.count))),
                ("max_relative_rms", num(rel.max() ?? 0)),
                ("min_cosine", num(cos.min() ?? 1)),
                ("max_abs", num(quantization.map(\.maxAbs).max() ?? 0)),
            ])),
            ("quantized", .array(quantization.map { e in
                .object([("name", .string(e.name)), ("shape", .array(e.shape.map(int))), ("relative_rms", num(e.relativeRMS)),
                         ("max_abs", num(e.maxAbs)), ("cosine", num(e.cosine))])
            })),
        ])
    }
}

public struct ConvertOptions: Sendable {
    public var type: WeightType = .f32
    /// Globs (fnmatch) of full tensor names (`decoder.conv_in.weight`) kept in f32 whatever the type.
    public var keepF32: [String] = []
    public init(type: WeightType = .f32, keepF32: [String] = []) {
        self.type = type
        self.keepF32 = keepF32
    }

    /// Each --keep-f32 glob is well formed: no '[' without its ']', no empty pattern, no trailing '\'.
    public func validate() throws {
        for g in keepF32 {
            guard !g.isEmpty else { throw UnCLIPError.invalidArgument(name: "--keep-f32", detail: "an empty glob matches nothing") }
            let chars = Array(g)
            var i = 0
            while i < chars.count {
                switch chars[i] {
                case "\\":
                    guard i + 1 < chars.count else { throw UnCLIPError.invalidArgument(name: "--keep-f32", detail: "'\(g)' ends with a lone '\\'") }
                    i += 1
                case "[":
                    // fnmatch: ']' right after '[' or '[!' is literal
                    var j = i + 1
                    if j < chars.count, chars[j] == "!" || chars[j] == "^" { j += 1 }
                    if j < chars.count, chars[j] == "]" { j += 1 }
                    while j < chars.count, chars[j] != "]" { j += 1 }
                    guard j < chars.count else {
                        throw UnCLIPError.invalidArgument(name: "--keep-f32", detail: "'\(g)' has a '[' without its ']' (quote a literal bracket as '[[]')")
                    }
                    i = j
                default: break
                }
                i += 1
            }
        }
    }

    /// Every glob matches at least one source tensor (a glob matching nothing is almost always a typo).
    func checkGlobsMatch(_ names: [String]) throws {
        for g in keepF32 where !names.contains(where: { fnmatch(g, $0, 0) == 0 }) {
            throw UnCLIPError.invalidArgument(name: "--keep-f32", detail: "'\(g)' matches no tensor (names are full, e.g. 'decoder.conv_in.weight'; `unclip-weights inspect` lists the components)")
        }
    }
}

/// One tensor of the output file and where its bytes come from.
struct PlannedTensor {
    enum Role { case plain, q8Packed, q8Scale, q8Colsum }
    let out: GGUFWriter.Tensor
    let role: Role
    /// Full name of the source tensor (component-prefixed) and its shape.
    let source: String
    let sourceShape: [Int]
    let read: (UnsafeMutablePointer<Float>) throws -> Void
}

public enum Converter {
    /// The output must not be the input (the same file under any name): a failed write would lose the source.
    public static func checkDistinct(input: String, output: String) throws {
        var a = stat(), b = stat()
        guard stat(input, &a) == 0, stat(output, &b) == 0 else { return }
        if a.st_dev == b.st_dev && a.st_ino == b.st_ino {
            throw UnCLIPError.invalidArgument(name: "output", detail: "\(output) is the input file itself; write to a new file (and rename it afterwards if you want)")
        }
    }

    /// Whether a weight is stored as int8: matrices and convolution kernels with at least 32 inputs per output
    /// and 1024 elements; never embedding tables (gathered, not multiplied), norms or biases (rank 1).
    public static func quantizable(_ name: String, shape: [Int]) -> Bool {
        guard name.hasSuffix(".weight"), shape.count == 2 || shape.count == 4 else { return false }
        if name.hasSuffix("token_embedding.weight") || name.hasSuffix("position_embedding.weight") { return false }
        let n = shape[0], k = shape.dropFirst().reduce(1, *)
        return k >= 32 && n * k >= 1024
    }

    /// nn.Embedding tables (gathered by id, not multiplied): F16 in q8 files, where the 49408-row token table would
    /// otherwise be the largest tensor of a small model.
    public static func isEmbeddingTable(_ name: String) -> Bool {
        name.hasSuffix("token_embedding.weight") || name.hasSuffix("position_embedding.weight")
    }

    static func matches(_ name: String, _ globs: [String]) -> Bool {
        globs.contains { fnmatch($0, name, 0) == 0 }
    }

    /// The GGUF types and shapes one source tensor becomes.
    static func outputs(name: String, shape: [Int], options: ConvertOptions) -> [(GGUFWriter.Tensor, PlannedTensor.Role)] {
        let keep = matches(name, options.keepF32)
        switch options.type {
        case .q8 where !keep && quantizable(name, shape: shape):
            let n = shape[0], k = shape.dropFirst().reduce(1, *)
            let np = (n + Int(CK_Q8_NR) - 1) / Int(CK_Q8_NR) * Int(CK_Q8_NR), kp = Int(ck_q8_padded_k(Int32(k)))
            return [(GGUFWriter.Tensor(name: name, type: .i8, shape: [np, kp]), .q8Packed),
                    (GGUFWriter.Tensor(name: UnCLIPGGUF.scaleName(name), type: .f32, shape: [n]), .q8Scale),
                    (GGUFWriter.Tensor(name: UnCLIPGGUF.colsumName(name), type: .i32, shape: [n]), .q8Colsum)]
        case .q8 where !keep && isEmbeddingTable(name):
            return [(GGUFWriter.Tensor(name: name, type: .f16, shape: shape), .plain)]
        case .f16 where !keep && shape.count >= 2 && !name.contains("norm"):
            return [(GGUFWriter.Tensor(name: name, type: .f16, shape: shape), .plain)]
        default:
            return [(GGUFWriter.Tensor(name: name, type: .f32, shape: shape), .plain)]
        }
    }

    /// Converts a hub-layout model directory to one GGUF file, streaming tensor by tensor.
    public static func convert(modelDirectory dir: String, output: String, options: ConvertOptions,
                               log: (String) -> Void = { _ in }) throws -> ConversionResult {
        let t0 = Date()
        try options.validate()
        let model = try ModelDirectory(path: dir)
        var metadata: [(String, GGUFValue)] = [
            ("general.architecture", .string(UnCLIPGGUF.architecture)),
            ("general.name", .string(URL(fileURLWithPath: dir).standardizedFileURL.lastPathComponent)),
            ("general.alignment", .u32(UInt32(GGUF.defaultAlignment))),
            (UnCLIPGGUF.weightType, .string(options.type.rawValue)),
            (UnCLIPGGUF.modelIndex, .string(model.modelIndex)),
            (UnCLIPGGUF.components, .strings(model.components.map(\.name))),
        ]
        if options.type == .q8 { metadata.append((UnCLIPGGUF.q8Layout, .string(UnCLIPGGUF.q8LayoutDescription))) }
        var plan: [PlannedTensor] = []
        var result = ConversionResult()
        result.components = model.components.map(\.name)
        for c in model.components {
            metadata.append((UnCLIPGGUF.className(c.name), .string(c.className)))
            metadata.append((UnCLIPGGUF.library(c.name), .string(c.library)))
            if let cfg = c.config { metadata.append((UnCLIPGGUF.config(c.name), .string(cfg))) }
            switch c.kind {
            case .tokenizer:
                metadata += try TokenizerFiles.ggufMetadata(directory: c.directory, config: c.configJSON)
            case let .model(files):
                let weights = try ComponentWeights(directory: c.directory, files: files)
                if let cfg = c.configJSON {
                    for (name, want) in ShapeRules.expected(className: c.className, config: cfg) {
                        guard let e = weights.entries.first(where: { $0.info.name == name }) else {
                            throw WeightsError(.tensor, file: c.directory, tensor: name, "missing (config.json implies it has shape \(want))")
                        }
                        guard e.info.shape == want else {
                            throw WeightsError(.tensor, file: e.file.path, tensor: name,
                                               "has shape \(e.info.shape) but \(c.name)/config.json implies \(want)")
                        }
                    }
                }
                for e in weights.entries {
                    if !e.info.dtype.isFloat {
                        // transformers' old position_ids buffers (int64 0..<n) carry no weights.
                        if e.info.name.hasSuffix("position_ids") { continue }
                        throw WeightsError(.unsupported, file: e.file.path, tensor: e.info.name, "dtype \(e.info.dtype) is not a weight type (F32, F16, BF16)")
                    }
                    let full = "\(c.name).\(e.info.name)"
                    result.inputBytes += e.info.byteCount
                    let info = e.info, file = e.file
                    for (t, role) in outputs(name: full, shape: info.shape, options: options) {
                        plan.append(PlannedTensor(out: t, role: role, source: full, sourceShape: info.shape,
                                                  read: { dest in
                        try file.readFloats(info, into: dest)
                        try TensorIntegrity.requireFinite(kind: Int32(CK_FLOAT_F32), count: info.count, bytes: dest, file: file.path, tensor: info.name)
                    }))
                    }
                }
            case .scheduler, .imageProcessor:
                break
            }
        }
        for p in plan where p.role == .q8Packed { metadata.append((UnCLIPGGUF.q8Shape(p.source), .ints(p.sourceShape))) }
        try options.checkGlobsMatch(plan.map(\.source))
        try write(plan: plan, metadata: metadata, output: output, result: &result, log: log)
        result.seconds = Date().timeIntervalSince(t0)
        return result
    }

    /// Re-quantizes an existing f32/f16 unclip GGUF file.
    public static func quantize(input: String, output: String, options: ConvertOptions,
                                log: (String) -> Void = { _ in }) throws -> ConversionResult {
        let t0 = Date()
        try options.validate()
        try checkDistinct(input: input, output: output)
        let g = try GGUFFile(path: input)
        guard g.value("general.architecture")?.string == UnCLIPGGUF.architecture else {
            throw WeightsError(.malformed, file: input, "not an unclip model file (general.architecture is not \"unclip\")")
        }
        guard g.value(UnCLIPGGUF.weightType)?.string != WeightType.q8.rawValue else {
            throw WeightsError(.unsupported, file: input, "is already int8; quantize the f32 or f16 file instead")
        }
        var metadata = g.metadata.filter { $0.0 != UnCLIPGGUF.weightType && $0.0 != UnCLIPGGUF.tensorChecksums && !$0.0.hasPrefix("unclip.q8.") }
        metadata.append((UnCLIPGGUF.weightType, .string(options.type.rawValue)))
        if options.type == .q8 { metadata.append((UnCLIPGGUF.q8Layout, .string(UnCLIPGGUF.q8LayoutDescription))) }
        var plan: [PlannedTensor] = []
        var result = ConversionResult()
        result.components = g.value(UnCLIPGGUF.components)?.strings ?? []
        let sums = try TensorIntegrity.checksums(g)
        for t in g.tensors {
            guard t.type == .f32 || t.type == .f16 else {
                throw WeightsError(.unsupported, file: input, tensor: t.name, "type \(t.type.name); quantize reads F32 and F16 tensors")
            }
            result.inputBytes += t.byteCount
            let info = t
            for (o, role) in outputs(name: t.name, shape: t.shape, options: options) {
                plan.append(PlannedTensor(out: o, role: role, source: t.name, sourceShape: t.shape, read: { dest in
                    // the source's own checksum (when it has them) and finite values, before anything is written
                    if info.type == .f32 {
                        try g.read(info, into: dest)
                        try TensorIntegrity.check(info, bytes: dest, expected: sums?[info.name], file: input)
                    } else {
                        let tmp = UnsafeMutablePointer<UInt16>.allocate(capacity: max(info.count, 1))
                        defer { tmp.deallocate() }
                        try g.read(info, into: tmp)
                        try TensorIntegrity.check(info, bytes: tmp, expected: sums?[info.name], file: input)
                        ck_f16_to_f32(info.count, tmp, dest)
                    }
                }))
            }
        }
        for p in plan where p.role == .q8Packed { metadata.append((UnCLIPGGUF.q8Shape(p.source), .ints(p.sourceShape))) }
        try options.checkGlobsMatch(plan.map(\.source))
        try write(plan: plan, metadata: metadata, output: output, result: &result, log: log)
        result.seconds = Date().timeIntervalSince(t0)
        return result
    }

    /// Streams the planned tensors into the GGUF writer; int8 weights are quantized once and their three output
    /// tensors served from that one result.
    static func write(plan: [PlannedTensor], metadata: [(String, GGUFValue)], output: String, result: inout ConversionResult,
                      log: (String) -> Void) throws {
        var seen = Set<String>()
        for p in plan where !seen.insert(p.out.name).inserted {
            throw WeightsError(.tensor, file: output, tensor: p.out.name, "would be written twice")
        }
        let writer = try GGUFWriter(path: output)
        let maxCount = plan.map { $0.sourceShape.reduce(1, *) }.max() ?? 0
        let src = UnsafeMutablePointer<Float>.allocate(capacity: max(maxCount, 1))
        defer { src.deallocate() }
        var q8Source = ""
        var scale: [Float] = [], colsum: [Int32] = []
        var entries: [QuantizationEntry] = []
        try writer.write(metadata: metadata, tensors: plan.map(\.out), checksumKey: UnCLIPGGUF.tensorChecksums) { i, buf in
            let p = plan[i]
            let count = p.sourceShape.reduce(1, *)
            switch p.role {
            case .plain:
                try p.read(src)
                if p.out.type == .f32 {
                    buf.baseAddress!.copyMemory(from: src, byteCount: count * 4)
                } else {
                    ck_f32_to_f16(count, src, buf.baseAddress!.assumingMemoryBound(to: UInt16.self))
                }
            case .q8Packed:
                try p.read(src)
                let n = p.sourceShape[0]
                let cin = p.sourceShape.count == 4 ? p.sourceShape[1] : p.sourceShape[1]
                let kk = p.sourceShape.count == 4 ? p.sourceShape[2] * p.sourceShape[3] : 1
                scale = [Float](repeating: 0, count: n)
                colsum = [Int32](repeating: 0, count: n)
                let packed = buf.baseAddress!.assumingMemoryBound(to: Int8.self)
                if p.sourceShape.count == 4 {
                    ck_q8_quantize_pack_conv(Int32(n), Int32(cin), Int32(p.sourceShape[2]), Int32(p.sourceShape[3]), src, packed, &scale, &colsum)
                } else {
                    ck_q8_quantize_pack(Int32(n), Int32(cin), src, Int32(cin), packed, &scale, &colsum)
                }
                var stats = [Double](repeating: 0, count: 4)
                var maxAbs: Float = 0
                ck_q8_error_stats(Int32(n), Int32(cin), Int32(kk), src, packed, scale, &stats, &maxAbs)
                let rel = stats[0] > 0 ? (stats[1] / stats[0]).squareRoot() : 0
                let cos = stats[0] > 0 && stats[3] > 0 ? stats[2] / (stats[0] * stats[3]).squareRoot() : 1
                entries.append(QuantizationEntry(name: p.source, shape: p.sourceShape, relativeRMS: rel, maxAbs: Double(maxAbs), cosine: cos))
                q8Source = p.source
            case .q8Scale:
                precondition(q8Source == p.source, "scale must follow its packed weight")
                scale.withUnsafeBytes { buf.copyMemory(from: $0) }
            case .q8Colsum:
                precondition(q8Source == p.source, "colsum must follow its packed weight")
                colsum.withUnsafeBytes { buf.copyMemory(from: $0) }
            }
            result.outputBytes += buf.count
        }
        result.tensors = plan.count
        result.quantization = entries
        log("wrote \(output): \(plan.count) tensors, \(result.outputBytes) bytes")
    }
}

extension Converter {
    /// Rewrites a model file with a checksum per tensor (for files written before conversions recorded them):
    /// every tensor is checked first (its existing checksum if any, finite float values, int8 column sums), then
    /// copied byte for byte, so the images it makes do not change.
    public static func addChecksums(input: String, output: String, log: (String) -> Void = { _ in }) throws -> ConversionResult {
        let t0 = Date()
        try checkDistinct(input: input, output: output)
        _ = try TensorIntegrity.verify(path: input)
        let g = try GGUFFile(path: input)
        var metadata = g.metadata.filter { $0.0 != UnCLIPGGUF.tensorChecksums && $0.0 != "general.alignment" }
        metadata.insert(("general.alignment", .u32(UInt32(GGUF.defaultAlignment))), at: min(2, metadata.count))
        var result = ConversionResult()
        result.components = g.value(UnCLIPGGUF.components)?.strings ?? []
        let writer = try GGUFWriter(path: output)
        try writer.write(metadata: metadata, tensors: g.tensors.map { GGUFWriter.Tensor(name: $0.name, type: $0.type, shape: $0.shape) },
                         checksumKey: UnCLIPGGUF.tensorChecksums) { i, buf in
            if let p = buf.baseAddress { try g.read(g.tensors[i], into: p) }
            result.inputBytes += buf.count
            result.outputBytes += buf.count
        }
        result.tensors = g.tensors.count
        result.seconds = Date().timeIntervalSince(t0)
        log("wrote \(output): \(g.tensors.count) tensors, each with its checksum")
        return result
    }
}
