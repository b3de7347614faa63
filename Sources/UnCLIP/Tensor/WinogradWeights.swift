import CKernels
import Foundation

/// An int8 3×3 convolution weight transformed for Winograd F(2×2, 3×3) (ck_winograd_pack): the 16 positions of
/// U = (2G)·q·(2G)ᵀ of the stored int8 weight q, exact integers (|U| ≤ 1143) stored as int16 [Cout, Cin] panels,
/// with scale/4 per output channel and each position's column sums.
final class WinogradWeights: @unchecked Sendable {
    let packed: TensorStorage
    let scale: [Float]     // [Cout]
    let colsum: [Int32]    // [16, Cout]

    init(_ w: Conv2dWeight) {
        precondition(w.kind == .q8 && w.kernel == (3, 3), "Winograd weights come from an int8 3×3 convolution")
        let (co, ci) = (Int32(w.outChannels), Int32(w.inChannels))
        packed = TensorStorage(byteCount: ck_winograd_packed_size(co, ci))
        var s = [Float](repeating: 0, count: w.outChannels), c = [Int32](repeating: 0, count: 16 * w.outChannels)
        ck_winograd_pack(co, ci, w.matrix.q8, w.matrix.scale, packed.raw.assumingMemoryBound(to: Int16.self), &s, &c)
        scale = s
        colsum = c
    }

    var w16: UnsafeMutablePointer<Int16> { packed.raw.assumingMemoryBound(to: Int16.self) }
}

/// Where a weight keeps its transformed copy under MemoryPlan.fast, made on first use (32/9 of the int8 weight's
/// bytes, resident for the model's life). With streamed weights (.small) it is not used: the convolution transforms
/// the weight chunk by chunk itself (ck_conv2d_q8_winograd_streamed).
final class WinogradCache: @unchecked Sendable {
    private var value: WinogradWeights?
    private let lock = NSLock()

    func weights(for w: Conv2dWeight) -> WinogradWeights {
        lock.lock()
        defer { lock.unlock() }
        if let value { return value }
        let made = WinogradWeights(w)
        value = made
        return made
    }
}
