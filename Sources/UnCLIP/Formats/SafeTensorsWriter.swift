import Foundation

/// Writes F32 tensors as a `.safetensors` file (the noise and stage-dump format), atomically: a temporary
/// file beside the target, renamed when complete.
public enum SafeTensorsWriter {
    public static func write(_ path: String, tensors: [(name: String, shape: [Int], values: [Float])],
                             metadata: [(String, String)] = []) throws {
        var entries: [(String, JSON)] = []
        if !metadata.isEmpty { entries.append(("__metadata__", .object(metadata.map { ($0.0, .string($0.1)) }))) }
        var offset = 0
        for t in tensors {
            guard t.shape.reduce(1, *) == t.values.count, t.shape.allSatisfy({ $0 >= 0 }) else {
                throw WeightsError(.tensor, file: path, tensor: t.name, "shape \(t.shape) does not hold \(t.values.count) values")
            }
            let bytes = t.values.count * 4
            entries.append((t.name, .object([
                ("dtype", .string("F32")),
                ("shape", .array(t.shape.map { .number(double: Double($0), int: Int64($0)) })),
                ("data_offsets", .array([.number(double: Double(offset), int: Int64(offset)),
                                         .number(double: Double(offset + bytes), int: Int64(offset + bytes))])),
            ])))
            offset += bytes
        }
        var header = Array(JSON.object(entries).text.utf8)
        while (header.count + 8) % 8 != 0 { header.append(0x20) }  // pad with spaces to 8-byte alignment
        var data = Data()
        data.reserveCapacity(8 + header.count + offset)
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(contentsOf: header)
        for t in tensors { t.values.withUnsafeBytes { data.append(contentsOf: $0) } }
        try AtomicFile.write(data, to: path)
    }
}
