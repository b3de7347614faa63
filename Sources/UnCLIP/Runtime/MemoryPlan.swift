import Foundation

/// How the engine trades memory for speed, process-wide (like the thread count). `.small` is the default.
///
/// - `.small`: UNet activations that outlive a layer (skip connections, block outputs) are stored in binary16 when
///   the weights are int8 (an f32 file keeps f32 activations, so its parity with the reference is untouched); each
///   mapped int8 weight's pages are dropped from the process once its layer ran (they come back from the page cache,
///   or the disk under memory pressure, on the next step), so at most about one layer of weights is resident.
/// - `.fast`: f32 activations and weights kept mapped: more memory, no re-faulting.
public enum MemoryPlan: String, CaseIterable, Sendable {
    case small, fast

    nonisolated(unsafe) private static var current: MemoryPlan = .small
    private static let lock = NSLock()

    /// The plan in force.
    public static var active: MemoryPlan {
        lock.lock()
        defer { lock.unlock() }
        return current
    }

    public static func set(_ p: MemoryPlan) {
        lock.lock()
        current = p
        lock.unlock()
    }

    /// Store int8 models' UNet activations in binary16.
    public static var compactActivations: Bool { active == .small }
    /// Drop mapped int8 weights' pages after each use.
    public static var streamWeights: Bool { active == .small }
}
