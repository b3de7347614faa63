import CKernels
import Foundation

/// Writes a GGUF v3 file in one pass: metadata and every tensor's descriptor first, then the tensors' data in
/// the same order, each produced on demand (so a converter holds one tensor at a time). The file is written
/// under a temporary name beside the target and renamed only when complete; on any error it is removed.
public final class GGUFWriter {
    public struct Tensor {
        public let name: String
        public let type: GGMLType
        public let shape: [Int]
        public init(name: String, type: GGMLType, shape: [Int]) {
            self.name = name
            self.type = type
            self.shape = shape
        }
        var byteCount: Int { shape.reduce(1, *) / type.blockSize * type.blockBytes }
    }

    public let path: String
    let tmpPath: String
    let alignment = GGUF.defaultAlignment
    var handle: UnsafeMutablePointer<FILE>?
    var written = 0

    public init(path: String) throws {
        self.path = path
        let url = URL(fileURLWithPath: path)
        tmpPath = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(getpid()).tmp").path
        guard let h = fopen(tmpPath, "wb") else {
            throw WeightsError(.io, file: path, "cannot create the output: \(String(cString: strerror(errno)))")
        }
        handle = h
    }

    deinit { abandon() }

    /// Removes the partial output (called on errors; idempotent).
    public func abandon() {
        if let h = handle {
            fclose(h)
            handle = nil
            unlink(tmpPath)
        }
    }

    func put(_ bytes: UnsafeRawBufferPointer) throws {
        guard let h = handle else { throw WeightsError(.io, file: path, "writer already closed") }
        if bytes.count > 0, fwrite(bytes.baseAddress, 1, bytes.count, h) != bytes.count {
            let reason = String(cString: strerror(errno))
            abandon()
            throw WeightsError(.io, file: path, "write failed: \(reason)")
        }
        written += bytes.count
    }

    func put(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try put($0) } }

    func padding() throws {
        let pad = (alignment - written % alignment) % alignment
        if pad > 0 { try put([UInt8](repeating: 0, count: pad)) }
    }

    static func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    static func str(_ s: String) -> [UInt8] { le(UInt64(s.utf8.count)) + Array(s.utf8) }

    static func encode(_ v: GGUFValue) -> [UInt8] {
        switch v {
        case let .u8(x): return [x]
        case let .i8(x): return [UInt8(bitPattern: x)]
        case let .u16(x): return le(x)
        case let .i16(x): return le(x)
        case let .u32(x): return le(x)
        case let .i32(x): return le(x)
        case let .f32(x): return le(x.bitPattern)
        case let .bool(x): return [x ? 1 : 0]
        case let .string(s): return str(s)
        case let .array(t, items):
            var out = le(t) + le(UInt64(items.count))
            for it in items { out += encode(it) }
            return out
        case let .u64(x): return le(x)
        case let .i64(x): return le(x)
        case let .f64(x): return le(x.bitPattern)
        }
    }

    /// Writes the whole file. `data(i, buffer)` must fill `buffer` (exactly tensors[i]'s bytes).
    /// `checksumKey`: a last metadata entry, an array of UInt64 holding each tensor's XXH64 (seed 0, over its
    /// bytes without padding) in descriptor order; written as zeros first and filled in once the data is out.
    public func write(metadata: [(String, GGUFValue)], tensors: [Tensor], checksumKey: String? = nil,
                      data: (Int, UnsafeMutableRawBufferPointer) throws -> Void) throws {
        do {
            let entries = metadata.count + (checksumKey == nil ? 0 : 1)
            var header = GGUF.magic + GGUFWriter.le(GGUF.version) + GGUFWriter.le(UInt64(tensors.count)) + GGUFWriter.le(UInt64(entries))
            for (k, v) in metadata { header += GGUFWriter.str(k) + GGUFWriter.le(v.typeID) + GGUFWriter.encode(v) }
            var checksumOffset: Int?
            if let key = checksumKey {
                let placeholder = GGUFValue.array(type: 10, [GGUFValue](repeating: .u64(0), count: tensors.count))
                header += GGUFWriter.str(key) + GGUFWriter.le(placeholder.typeID) + GGUFWriter.le(UInt32(10)) + GGUFWriter.le(UInt64(tensors.count))
                checksumOffset = header.count
                header += [UInt8](repeating: 0, count: 8 * tensors.count)
            }
            var sums: [UInt64] = []
            var offset = 0
            for t in tensors {
                header += GGUFWriter.str(t.name) + GGUFWriter.le(UInt32(t.shape.count))
                for d in t.shape.reversed() { header += GGUFWriter.le(UInt64(d)) }
                header += GGUFWriter.le(t.type.rawValue) + GGUFWriter.le(UInt64(offset))
                offset += (t.byteCount + alignment - 1) / alignment * alignment
            }
            try put(header)
            try padding()
            let maxBytes = tensors.map(\.byteCount).max() ?? 0
            let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: max(maxBytes, 1), alignment: 64)
            defer { buf.deallocate() }
            for (i, t) in tensors.enumerated() {
                let slice = UnsafeMutableRawBufferPointer(rebasing: buf[0..<t.byteCount])
                try data(i, slice)
                if checksumOffset != nil { sums.append(ck_xxh64(slice.baseAddress, t.byteCount, 0)) }
                try put(UnsafeRawBufferPointer(slice))
                try padding()
            }
            guard let h = handle else { throw WeightsError(.io, file: path, "writer already closed") }
            if let at = checksumOffset {
                let bytes = sums.flatMap { GGUFWriter.le($0) }
                guard fseeko(h, off_t(at), SEEK_SET) == 0, fwrite(bytes, 1, bytes.count, h) == bytes.count else {
                    let reason = String(cString: strerror(errno))
                    abandon()
                    throw WeightsError(.io, file: path, "write failed: \(reason)")
                }
            }
            handle = nil
            if fflush(h) != 0 || fsync(fileno(h)) != 0 {
                let reason = String(cString: strerror(errno))
                fclose(h)
                unlink(tmpPath)
                throw WeightsError(.io, file: path, "write failed: \(reason)")
            }
            fclose(h)
            guard rename(tmpPath, path) == 0 else {
                let reason = String(cString: strerror(errno))
                unlink(tmpPath)
                throw WeightsError(.io, file: path, "cannot move the finished file into place: \(reason)")
            }
        } catch {
            abandon()
            throw error
        }
    }
}
