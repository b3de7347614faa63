import Foundation

/// GGUF v3 (ggml's single-file model format: github.com/ggml-org/ggml, docs/gguf.md): typed key–value metadata,
/// tensor descriptors, then aligned tensor data. Little-endian throughout.
public enum GGUF {
    public static let magic: [UInt8] = Array("GGUF".utf8)
    public static let version: UInt32 = 3
    /// general.alignment when the file does not set it (gguf.md).
    public static let defaultAlignment = 32
    /// Limits that keep a hostile file from asking for absurd allocations.
    public static let maxTensors = 1 << 20
    public static let maxKeyValues = 1 << 20
    public static let maxHeaderBytes = 256 << 20
    public static let maxDims = 4  // GGML_MAX_DIMS
}

/// ggml tensor types (ggml.h `enum ggml_type`) with their block size and bytes per block.
public enum GGMLType: UInt32, Sendable, CaseIterable {
    case f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8, q8_1 = 9
    case i8 = 24, i16 = 25, i32 = 26, i64 = 27, f64 = 28, bf16 = 30

    public var blockSize: Int {
        switch self {
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q8_1: return 32
        default: return 1
        }
    }

    public var blockBytes: Int {
        switch self {
        case .f32, .i32: return 4
        case .f16, .bf16, .i16: return 2
        case .i8: return 1
        case .i64, .f64: return 8
        case .q4_0: return 18
        case .q4_1: return 20
        case .q5_0: return 22
        case .q5_1: return 24
        case .q8_0: return 34
        case .q8_1: return 36
        }
    }

    public var name: String { String(describing: self).uppercased() }
}

/// A metadata value (gguf.md `gguf_metadata_value_type`).
public indirect enum GGUFValue: Equatable, Sendable {
    case u8(UInt8), i8(Int8), u16(UInt16), i16(Int16), u32(UInt32), i32(Int32), f32(Float), bool(Bool)
    case string(String)
    /// Elements all of `type` (a value type id).
    case array(type: UInt32, [GGUFValue])
    case u64(UInt64), i64(Int64), f64(Double)

    public var typeID: UInt32 {
        switch self {
        case .u8: return 0
        case .i8: return 1
        case .u16: return 2
        case .i16: return 3
        case .u32: return 4
        case .i32: return 5
        case .f32: return 6
        case .bool: return 7
        case .string: return 8
        case .array: return 9
        case .u64: return 10
        case .i64: return 11
        case .f64: return 12
        }
    }

    public var string: String? { if case let .string(s) = self { return s } else { return nil } }
    public var strings: [String]? {
        if case let .array(_, a) = self { return a.compactMap(\.string).count == a.count ? a.compactMap(\.string) : nil }
        return nil
    }
    public var int: Int64? {
        switch self {
        case let .u8(v): return Int64(v)
        case let .i8(v): return Int64(v)
        case let .u16(v): return Int64(v)
        case let .i16(v): return Int64(v)
        case let .u32(v): return Int64(v)
        case let .i32(v): return Int64(v)
        case let .u64(v): return v <= UInt64(Int64.max) ? Int64(v) : nil
        case let .i64(v): return v
        default: return nil
        }
    }
    public var ints: [Int64]? {
        if case let .array(_, a) = self { let v = a.compactMap(\.int); return v.count == a.count ? v : nil }
        return nil
    }

    public static func strings(_ s: [String]) -> GGUFValue { .array(type: 8, s.map { .string($0) }) }
    public static func ints(_ v: [Int]) -> GGUFValue { .array(type: 11, v.map { .i64(Int64($0)) }) }
}

/// A tensor's descriptor. `shape` is in PyTorch order (outermost first); the file stores ggml's reverse order.
public struct GGUFTensorInfo: Equatable, Sendable {
    public let name: String
    public let type: GGMLType
    public let shape: [Int]
    /// Offset from the start of the data section (a multiple of the alignment).
    public let offset: Int
    public var count: Int { shape.reduce(1, *) }
    public var byteCount: Int { count / type.blockSize * type.blockBytes }
}
