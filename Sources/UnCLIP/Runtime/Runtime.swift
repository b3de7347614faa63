import CKernels
import Foundation

/// The kernel paths (instruction sets) the C core can run.
public enum KernelPath: Int, CaseIterable, Sendable, CustomStringConvertible {
    case ref = 0, avx2 = 1, avx512 = 2, amx = 3   // x86-64
    case neon = 4, dotprod = 5, i8mm = 6           // AArch64 (ckernels.h: ck_isa)

    public var description: String { String(cString: ck_isa_name(ck_isa(rawValue: UInt32(rawValue)))) }

    public init?(name: String) {
        guard let p = KernelPath.allCases.first(where: { $0.description == name }) else { return nil }
        self = p
    }
}

/// How the int8 3×3 convolutions (stride 1, padding 1) run: direct (im2col rows of 9·Cin, exact int8 sums of the
/// stored weights) or Winograd F(2×2, 3×3) (2.25× fewer multiply-accumulates; the transformed weights are exact int16
/// integers, the transformed tiles are rounded to int8 again: ck_conv2d_q8_winograd). `auto` picks per convolution
/// (`Ops.usesWinograd`).
public enum ConvAlgorithm: String, CaseIterable, Sendable {
    case auto, direct, winograd
}

/// Process-wide kernel settings: which path runs and how many threads. The C core reads `CK_ISA` and
/// `UNCLIP_THREADS` from the environment at start; these override them.
public enum Runtime {
    /// The paths this host can run, best last.
    public static var supportedPaths: [KernelPath] {
        KernelPath.allCases.filter { ck_isa_supported(ck_isa(rawValue: UInt32($0.rawValue))) != 0 }
    }

    public static var hostBest: KernelPath { KernelPath(rawValue: Int(ck_isa_host_best().rawValue))! }

    /// The path kernels use now.
    public static var path: KernelPath { KernelPath(rawValue: Int(ck_isa_active().rawValue))! }

    /// Forces a path; throws when this host cannot run it.
    public static func setPath(_ p: KernelPath) throws {
        if ck_isa_set(ck_isa(rawValue: UInt32(p.rawValue))) != 0 {
            throw UnCLIPError.invalidArgument(
                name: "kernel path",
                detail: "this CPU cannot run '\(p)'; supported: \(supportedPaths.map(\.description).joined(separator: ", "))")
        }
    }

    public static var threads: Int { Int(ck_get_threads()) }

    nonisolated(unsafe) private static var convAlgorithmValue: ConvAlgorithm = .auto
    private static let convLock = NSLock()

    /// The int8 3×3 convolution algorithm (default `auto`; `UNCLIP_CONV` is read by the command-line tools).
    public static var convAlgorithm: ConvAlgorithm {
        get { convLock.lock(); defer { convLock.unlock() }; return convAlgorithmValue }
        set { convLock.lock(); convAlgorithmValue = newValue; convLock.unlock() }
    }

    /// `UNCLIP_CONV` (auto|direct|winograd): nil when unset; an error for any other value.
    public static func convAlgorithmFromEnvironment() throws -> ConvAlgorithm? {
        guard let raw = ProcessInfo.processInfo.environment["UNCLIP_CONV"] else { return nil }
        guard let a = ConvAlgorithm(rawValue: raw.trimmingCharacters(in: .whitespaces)) else {
            throw UnCLIPError.invalidArgument(name: "UNCLIP_CONV", detail: "'\(raw)' is not one of auto, direct, winograd; set one or unset it")
        }
        return a
    }

    /// The cores this process may run on (its CPU affinity, else the online cores).
    public static var usableCores: Int { Int(ck_usable_cores()) }

    /// The most threads `oversubscribe` allows.
    public static let maxThreads = 1024

    /// Sets the kernel thread count: 1...usableCores, or up to `maxThreads` with `oversubscribe` (more threads than
    /// cores only contend: on 2 cores, 64 threads made a 2.4 s generation take 12 s and 1024 more than 120 s).
    public static func setThreads(_ n: Int, oversubscribe: Bool = false) throws {
        try checkThreads(n, oversubscribe: oversubscribe, source: "threads")
        ck_set_threads(Int32(n))
    }

    static func checkThreads(_ n: Int, oversubscribe: Bool, source: String) throws {
        let cores = usableCores
        guard n >= 1 else { throw UnCLIPError.invalidArgument(name: source, detail: "\(n) must be at least 1") }
        guard n <= Self.maxThreads else { throw UnCLIPError.invalidArgument(name: source, detail: "\(n) is more than \(Self.maxThreads)") }
        guard n <= cores || oversubscribe else {
            throw UnCLIPError.invalidArgument(name: source, detail: "\(n) is more than the \(cores) core\(cores == 1 ? "" : "s") this process may use; more threads than cores slow every kernel down (allow it with --oversubscribe)")
        }
    }

    /// `UNCLIP_THREADS` validated as `--threads` is: nil when unset; an error for anything but an integer in range.
    public static func threadsFromEnvironment(oversubscribe: Bool = false) throws -> Int? {
        guard let raw = ProcessInfo.processInfo.environment["UNCLIP_THREADS"] else { return nil }
        guard let n = Int(raw.trimmingCharacters(in: .whitespaces)) else {
            throw UnCLIPError.invalidArgument(name: "UNCLIP_THREADS", detail: "'\(raw)' is not an integer; set it to 1...\(usableCores) or unset it")
        }
        try checkThreads(n, oversubscribe: oversubscribe, source: "UNCLIP_THREADS")
        return n
    }
}
