import CKernels
import Foundation

/// An unclip GGUF model file, validated as a whole when opened; components are mapped one at a time.
///
/// Opening checks, beyond the GGUF container (GGUFFile): the architecture, the component list, every int8
/// weight's scale/column-sum companions and packed size, and the config-implied shapes of each component.
public final class ModelFile: @unchecked Sendable {
    public let gguf: GGUFFile
    public let components: [String]
    public let weightType: WeightType
    /// Each tensor's XXH64 by name (TensorIntegrity); nil for a file written before conversions recorded them.
    public let checksums: [String: UInt64]?
    public var path: String { gguf.path }

    public init(path: String) throws {
        gguf = try GGUFFile(path: path)
        guard gguf.value("general.architecture")?.string == UnCLIPGGUF.architecture else {
            throw WeightsError(.malformed, file: path, "not an unclip model file (general.architecture is not \"unclip\"); make one with unclip-weights convert")
        }
        guard let comps = gguf.value(UnCLIPGGUF.components)?.strings, !comps.isEmpty else {
            throw WeightsError(.malformed, file: path, "has no \(UnCLIPGGUF.components) list")
        }
        components = comps
        guard let wt = gguf.value(UnCLIPGGUF.weightType)?.string.flatMap(WeightType.init(rawValue:)) else {
            throw WeightsError(.malformed, file: path, "has no valid \(UnCLIPGGUF.weightType)")
        }
        weightType = wt
        checksums = try TensorIntegrity.checksums(gguf)
        for t in gguf.tensors {
            guard let dot = t.name.firstIndex(of: "."), comps.contains(String(t.name[..<dot])) else {
                throw WeightsError(.tensor, file: path, tensor: t.name, "does not belong to any listed component")
            }
            if t.type == .i8 { _ = try q8Shape(t) }
        }
        for c in comps {
            guard let cls = gguf.value(UnCLIPGGUF.className(c))?.string, let cfg = config(c) else { continue }
            for (name, want) in ShapeRules.expected(className: cls, config: cfg) {
                let full = "\(c).\(name)"
                guard let t = gguf.tensor(full) else { throw WeightsError(.tensor, file: path, tensor: full, "missing (config implies \(want))") }
                let have = t.type == .i8 ? try q8Shape(t) : t.shape
                guard have == want else { throw WeightsError(.tensor, file: path, tensor: full, "has shape \(have) but the config implies \(want)") }
            }
        }
    }

    /// The source shape of an int8 weight, after checking its companions and packed size.
    func q8Shape(_ t: GGUFTensorInfo) throws -> [Int] {
        guard let dims = gguf.value(UnCLIPGGUF.q8Shape(t.name))?.ints, dims.count == 2 || dims.count == 4,
              dims.allSatisfy({ $0 > 0 && $0 <= Int64(Int32.max) }) else {
            throw WeightsError(.tensor, file: path, tensor: t.name, "int8 weight without a valid \(UnCLIPGGUF.q8Shape(t.name))")
        }
        let shape = dims.map { Int($0) }
        let n = shape[0], k = shape.dropFirst().reduce(1, *)
        guard k <= Int(Int32.max), t.byteCount == ck_q8_packed_size(Int32(n), Int32(k)) else {
            throw WeightsError(.tensor, file: path, tensor: t.name, "packed size \(t.byteCount) does not match shape \(shape)")
        }
        for (suffix, type) in [(UnCLIPGGUF.scaleName(""), GGMLType.f32), (UnCLIPGGUF.colsumName(""), GGMLType.i32)] {
            guard let c = gguf.tensor(t.name + suffix), c.type == type, c.shape == [n] else {
                throw WeightsError(.tensor, file: path, tensor: t.name + suffix, "missing or not \(type.name) [\(n)]")
            }
        }
        return shape
    }

    public func config(_ component: String) -> JSON? {
        gguf.value(UnCLIPGGUF.config(component))?.string.flatMap { try? JSON.parse($0) }
    }

    /// Maps one component's tensors; they stay mapped while the scope (or anything built from it) lives. Every
    /// tensor is checked first (TensorIntegrity: its checksum when the file has them, finite float values).
    public func load(_ component: String) throws -> ComponentScope {
        guard components.contains(component) else {
            throw WeightsError(.tensor, file: path, "has no component '\(component)' (it has: \(components.joined(separator: ", ")))")
        }
        let prefix = component + "."
        let ts = gguf.tensors.filter { $0.name.hasPrefix(prefix) }
        let scope = ComponentScope(file: self, component: component, tensors: ts, region: try gguf.map(ts))
        if let region = scope.region {
            for t in ts where t.byteCount > 0 {
                try TensorIntegrity.check(t, bytes: region.data + (t.offset - scope.base), expected: checksums?[t.name], file: path)
                // the check read every page: under MemoryPlan.streamWeights only what a layer uses comes back
                if MemoryPlan.streamWeights { scope.dropPages(t) }
            }
        }
        return scope
    }
}

/// The tensors of one component, named as in the reference state dict (without the component prefix).
public final class ComponentScope: @unchecked Sendable {
    public let file: ModelFile
    public let component: String
    let region: MappedRegion?
    let base: Int
    let byName: [String: GGUFTensorInfo]

    init(file: ModelFile, component: String, tensors: [GGUFTensorInfo], region: MappedRegion?) {
        self.file = file
        self.component = component
        self.region = region
        base = tensors.map(\.offset).min() ?? 0
        var m: [String: GGUFTensorInfo] = [:]
        for t in tensors { m[String(t.name.dropFirst(component.count + 1))] = t }
        byName = m
    }

    public var names: [String] { byName.keys.sorted() }

    /// After a model is built from an f32/f16 scope its large weights live in packed copies: drop the mapped pages
    /// (they fault back in if a mapped tensor is read again). A q8 file's weights are used in place: under
    /// MemoryPlan.streamWeights their pages are dropped too, once more for the whole component. The per-tensor drops
    /// while checking are not enough: the page cache holds large folios (ext4 on Linux ≥ 6.16), a fault maps the
    /// whole folio, and the build reads the tensors in another order than the file's, so reading one maps parts of
    /// its neighbours back in (measured: 109 MB of Karlo's super-resolution UNet resident after its build, under 1 MB
    /// after this drop).
    public func releasePackedSources() {
        if file.weightType != .q8 || MemoryPlan.streamWeights { region?.dropResidentPages() }
    }

    func info(_ name: String) throws -> GGUFTensorInfo {
        guard let t = byName[name] else { throw WeightsError(.tensor, file: file.path, tensor: "\(component).\(name)", "missing") }
        return t
    }

    func storage(_ t: GGUFTensorInfo) -> TensorStorage {
        guard let region, t.byteCount > 0 else { return TensorStorage(byteCount: 0) }  // empty tensors map nothing
        let p = UnsafeMutableRawPointer(mutating: region.data + (t.offset - base))
        return TensorStorage(borrowing: p, byteCount: t.byteCount, owner: region)
    }

    /// An f32 tensor: mapped in place for F32 (read-only memory), converted for F16/BF16.
    public func tensor(_ name: String) throws -> Tensor {
        let t = try info(name)
        switch t.type {
        case .f32:
            return Tensor(shape: t.shape, strides: Tensor.contiguousStrides(t.shape), dtype: .f32, storage: storage(t))
        case .f16, .bf16:
            let out = try Tensor(zeros: t.shape)
            let src = storage(t).raw.assumingMemoryBound(to: UInt16.self)
            if t.type == .f16 { ck_f16_to_f32(t.count, src, out.f32) } else { ck_bf16_to_f32(t.count, src, out.f32) }
            return out
        case .i8:
            throw WeightsError(.tensor, file: file.path, tensor: "\(component).\(name)", "is an int8 weight; load it with linear() or conv2d()")
        default:
            throw WeightsError(.unsupported, file: file.path, tensor: "\(component).\(name)", "type \(t.type.name) is not a weight type here")
        }
    }

    public func has(_ name: String) -> Bool { byName[name] != nil }

    func q8Matrix(_ t: GGUFTensorInfo, n: Int, k: Int) throws -> PackedMatrix {
        let s = try info(String(t.name.dropFirst(component.count + 1)) + ".scale")
        let c = try info(String(t.name.dropFirst(component.count + 1)) + ".colsum")
        let scale = Array(UnsafeBufferPointer(start: storage(s).raw.assumingMemoryBound(to: Float.self), count: n))
        let colsum = Array(UnsafeBufferPointer(start: storage(c).raw.assumingMemoryBound(to: Int32.self), count: n))
        // Every int8 path uses the column sums (the activations' zero point): a damaged or hand-edited value would
        // silently shift whole output channels, so they are checked against the weights (one pass over them).
        let q8 = storage(t)
        var actual = [Int32](repeating: 0, count: n)
        ck_q8_colsum(Int32(n), Int32(k), q8.raw.assumingMemoryBound(to: Int8.self), &actual)
        if let bad = actual.indices.first(where: { actual[$0] != colsum[$0] }) {
            throw WeightsError(.tensor, file: file.path, tensor: c.name,
                               "column sum \(bad) is \(colsum[bad]) but its int8 weight sums to \(actual[bad]): the file is damaged; convert it again with unclip-weights")
        }
        if MemoryPlan.streamWeights { dropPages(t) }  // the check read every page; a layer maps its own back when it runs
        return PackedMatrix(q8: q8, scale: scale, colsum: colsum)
    }

    /// `<prefix>.weight` [out, in] and `<prefix>.bias` if present. f32 weights are packed for the kernels (and
    /// quantized when `quantize`); int8 weights are used in place.
    public func linear(_ prefix: String, quantize: Bool = false) throws -> LinearWeight {
        let w = try info(prefix + ".weight")
        let bias = has(prefix + ".bias") ? try tensor(prefix + ".bias") : nil
        if w.type == .i8 {
            let shape = try file.q8Shape(w)
            guard shape.count == 2 else { throw WeightsError(.tensor, file: file.path, tensor: w.name, "is \(shape), not a linear weight") }
            if let bias { try require(bias.count == shape[0], "linear", "bias of \(w.name) has \(bias.count) values for \(shape[0]) outputs") }
            return LinearWeight(packed: try q8Matrix(w, n: shape[0], k: shape[1]), outFeatures: shape[0], inFeatures: shape[1], bias: bias?.toArray())
        }
        let lw = try LinearWeight(weight: try tensor(prefix + ".weight"), bias: bias, quantize: quantize)
        dropPages(w)
        return lw
    }

    /// The packed copy now holds this weight: let its mapped pages go (they fault back in if read again), so a
    /// component's f32 weights are not resident twice while the model is built.
    func dropPages(_ t: GGUFTensorInfo) {
        region?.dropResidentPages(offset: t.offset - base, count: t.byteCount)
    }

    /// `<prefix>.weight` [Cout, Cin, kh, kw] and `<prefix>.bias` if present.
    public func conv2d(_ prefix: String, stride: Int = 1, padding: Int = 0, quantize: Bool = false) throws -> Conv2dWeight {
        let w = try info(prefix + ".weight")
        let bias = has(prefix + ".bias") ? try tensor(prefix + ".bias") : nil
        if w.type == .i8 {
            let shape = try file.q8Shape(w)
            guard shape.count == 4 else { throw WeightsError(.tensor, file: file.path, tensor: w.name, "is \(shape), not a convolution weight") }
            if let bias { try require(bias.count == shape[0], "conv2d", "bias of \(w.name) has \(bias.count) values for \(shape[0]) outputs") }
            return try Conv2dWeight(packed: try q8Matrix(w, n: shape[0], k: shape[1...].reduce(1, *)), shape: shape, bias: bias?.toArray(), stride: stride, padding: padding)
        }
        let cw = try Conv2dWeight(weight: try tensor(prefix + ".weight"), bias: bias, stride: stride, padding: padding, quantize: quantize)
        dropPages(w)
        return cw
    }
}
