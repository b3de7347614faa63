// unclip-fuzz: coverage-guided fuzzing of the parsers of user-controlled input (FuzzTarget), and the replay of
// their corpora.
//
// Normal build (swift build): a replay driver —
//   unclip-fuzz replay TARGET FILE|DIR…   runs each input once (the committed crash regressions run in the tests)
//   unclip-fuzz seeds DIR                 writes a seed corpus per target into DIR/<target>/ from the fixtures
// Fuzzing build (scripts/fuzz.sh: -sanitize=fuzzer,address -DFUZZING): libFuzzer's entry points and main;
// the target comes from $UNCLIP_FUZZ_TARGET.
import Foundation
import UnCLIP

/// A message on stderr (write(2): Swift 6 will not touch C's `stderr` global).
func err(_ s: String) { _ = s.withCString { write(2, $0, strlen($0)) } }

#if FUZZING
nonisolated(unsafe) var fuzzTarget: FuzzTarget = .json

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    guard let name = ProcessInfo.processInfo.environment["UNCLIP_FUZZ_TARGET"], let t = FuzzTarget(rawValue: name) else {
        err("unclip-fuzz: set UNCLIP_FUZZ_TARGET to one of \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))\n")
        exit(2)
    }
    fuzzTarget = t
    if t == .tokenizer && FuzzTarget.clipTokenizer == nil { err("unclip-fuzz: the tokenizer fixture is missing\n"); exit(2) }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzTarget.run(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
    return 0
}

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

/// SwiftPM links an executable's entry point as `<module>_main` (so tests can link the module); without a Swift
/// main in this build, that is libFuzzer's driver.
@_cdecl("unclip_fuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var c = argc, v = argv
    return LLVMFuzzerRunDriver(&c, &v) { fuzzOne($0, $1) }
}
#else
func inputs(_ paths: ArraySlice<String>) -> [String] {
    paths.flatMap { p -> [String] in
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: p, isDirectory: &isDir) else { return [] }
        guard isDir.boolValue else { return [p] }
        return ((try? FileManager.default.contentsOfDirectory(atPath: p)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
            .map { (p as NSString).appendingPathComponent($0) }
    }
}

@main
struct UnclipFuzz {
    static func main() {
        let args = CommandLine.arguments
        switch args.count >= 3 ? args[1] : "" {
        case "replay":
            guard let target = FuzzTarget(rawValue: args[2]) else {
                err("unclip-fuzz: unknown target '\(args[2])' (targets: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")))\n")
                exit(2)
            }
            let files = inputs(args.dropFirst(3))
            for f in files {
                guard let d = FileManager.default.contents(atPath: f) else { err("unclip-fuzz: cannot read \(f)\n"); exit(1) }
                target.run(Array(d))
            }
            print("\(target.rawValue): \(files.count) inputs, no crash")
        case "seeds":
            do {
                try FuzzSeeds.write(into: args[2])
            } catch {
                err("unclip-fuzz: \(error)\n")
                exit(1)
            }
        default:
            err("usage: unclip-fuzz replay TARGET FILE|DIR…   |   unclip-fuzz seeds DIR\n")
            exit(2)
        }
        unlink(FuzzTarget.scratch)
    }
}
#endif
