import CKernels
import Foundation
import XCTest
@testable import UnCLIP

/// Deterministic pseudo-random floats (xorshift64*), roughly uniform in [-scale, scale).
struct TestRNG {
    var state: UInt64
    init(seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 | 1 }
    mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 0x2545_F491_4F6C_DD1D
    }
    mutating func float(_ scale: Float = 1) -> Float { (Float(next() >> 40) / Float(1 << 24) * 2 - 1) * scale }
    mutating func array(_ n: Int, scale: Float = 1) -> [Float] { (0..<n).map { _ in float(scale) } }
}

/// max |a − b| / max(max |b|, 1): the error relative to the output's magnitude.
func relMaxError(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count)
    var err: Float = 0, mag: Float = 1
    for i in 0..<a.count {
        err = max(err, abs(a[i] - b[i]))
        mag = max(mag, abs(b[i]))
    }
    return err / mag
}

/// Named tolerances (relative to the output's largest magnitude, see relMaxError).
enum Tolerance {
    /// f32 GEMM/conv against the scalar reference: FMA vs separate multiply-add and a different summation
    /// order over K ≤ ~3000 terms; observed ~1e-6.
    static let gemmF32: Float = 2e-5
    /// Attention: the vector exp (~2 ulp) and the online softmax's rescaling against the two-pass reference.
    static let attention: Float = 2e-5
    /// Norms/softmax/activations against PyTorch (float32 throughout; different but exact-in-spirit formulas).
    static let torchF32: Float = 1e-5
    /// Timestep embedding against PyTorch: torch's vectorised exp differs from the correctly rounded expf by
    /// one ulp on 3 of the 160 frequencies (checked with the fixture's torch 2.13), which moves the argument
    /// t·f by up to t·ulp(f) ≈ 999 · 6e-8 = 6e-5 rad at t = 999, and sin/cos by as much.
    static let timestep: Float = 1e-4
    /// Vector exp-based activations against expf.
    static let activation: Float = 1e-6
}

/// Runs `body` for every kernel path this host supports and thread counts 1, 2, 3; restores the settings.
func forEachPathAndThreads(_ body: (KernelPath, Int) throws -> Void) rethrows {
    let savedPath = Runtime.path, savedThreads = Runtime.threads
    defer {
        try? Runtime.setPath(savedPath)
        try? Runtime.setThreads(savedThreads)
    }
    for path in Runtime.supportedPaths {
        try! Runtime.setPath(path)
        for t in [1, 2, 3] {
            try! Runtime.setThreads(t, oversubscribe: true)  // 3 on a 2-core host on purpose
            try body(path, t)
        }
    }
}

/// Fixtures produced by weights-tools/reference (see the README there); prints the command when missing.
enum Fixtures {
    static func url(_ name: String) throws -> URL {
        guard let u = Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: nil) else {
            XCTFail("missing fixture \(name); re-create it with: weights-tools/setup_venv.sh && weights-tools/.venv/bin/python weights-tools/reference/make_kernel_fixtures.py")
            throw XCTSkip("fixture \(name) missing")
        }
        return u
    }
}

/// One of the package's executables (built by `swift test` next to the test bundle).
func executableURL(_ name: String) throws -> URL {
    let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    var exe = dir.appendingPathComponent(name)
    if !FileManager.default.isExecutableFile(atPath: exe.path) {  // xctest bundles nest one level deeper on some layouts
        exe = dir.deletingLastPathComponent().appendingPathComponent(name)
    }
    guard FileManager.default.isExecutableFile(atPath: exe.path) else {
        XCTFail("\(name) not built next to the tests (\(exe.path)); run `swift build` first")
        throw XCTSkip("no executable")
    }
    return exe
}

/// Runs one of the package's executables; `env` is added to the test process's environment.
func runExecutable(_ name: String, _ args: [String], env: [String: String] = [:]) throws -> (code: Int32, out: String, err: String) {
    try runProcess(try executableURL(name), args, env: env)
}

func runProcess(_ exe: URL, _ args: [String], env: [String: String] = [:]) throws -> (code: Int32, out: String, err: String) {
    let p = Process()
    p.executableURL = exe
    p.arguments = args
    p.environment = ProcessInfo.processInfo.environment.merging(env) { $1 }
    let o = Pipe(), e = Pipe()
    p.standardOutput = o
    p.standardError = e
    try p.run()
    let out = String(decoding: o.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    let err = String(decoding: e.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    return (p.terminationStatus, out, err)
}
