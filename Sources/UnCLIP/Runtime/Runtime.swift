import CKernels

/// The kernel paths (instruction sets) the C core can run.
public enum KernelPath: Int, CaseIterable, Sendable, CustomStringConvertible {
    case ref = 0, avx2 = 1, avx512 = 2, amx = 3

    public var description: String { String(cString: ck_isa_name(ck_isa(rawValue: UInt32(rawValue)))) }

    public init?(name: String) {
        guard let p = KernelPath.allCases.first(where: { $0.description == name }) else { return nil }
        self = p
    }
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

    /// Sets the kernel thread count (1...1024).
    public static func setThreads(_ n: Int) throws {
        guard (1...1024).contains(n) else {
            throw UnCLIPError.invalidArgument(name: "threads", detail: "\(n) is outside 1...1024")
        }
        ck_set_threads(Int32(n))
    }
}
