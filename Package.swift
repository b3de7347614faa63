// swift-tools-version:6.1
// unclip: an embedded unCLIP (DALL·E 2-style) text-to-image engine. Swift over a C kernel core.
import PackageDescription

// OpenMP: Debian's libomp-dev installs omp.h and libomp.so under LLVM 14's own directories, which the Swift
// toolchain's clang does not search (docs/machine.md). Override with UNCLIP_OMP_INCLUDE / UNCLIP_OMP_LIB.
let ompInclude = Context.environment["UNCLIP_OMP_INCLUDE"] ?? "/usr/lib/llvm-14/lib/clang/14.0.6/include"
let ompLib = Context.environment["UNCLIP_OMP_LIB"] ?? "/usr/lib/llvm-14/lib"

let package = Package(
    name: "unclip",
    products: [
        .library(name: "UnCLIP", targets: ["UnCLIP"]),
        .executable(name: "unclip", targets: ["unclip"]),
        .executable(name: "unclip-bench", targets: ["unclip-bench"]),
        .executable(name: "unclip-weights", targets: ["unclip-weights"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", .upToNextMinor(from: "1.8.0")),
        // The HTTP server (unclip serve). Its default traits pull in swift-configuration, which the server does not use.
        .package(url: "https://github.com/hummingbird-project/hummingbird", .upToNextMinor(from: "2.28.0"), traits: []),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        // The C kernels: always optimised (debug builds of the kernels are too slow to test at real sizes),
        // no FMA contraction in scalar code so the reference and the epilogues are exactly reproducible.
        .target(
            name: "CKernels",
            path: "CKernels",
            sources: ["src"],
            publicHeadersPath: "include",
            cSettings: [
                .unsafeFlags(["-std=c11", "-O3", "-ffp-contract=off", "-fopenmp", "-I\(ompInclude)",
                              "-Wall", "-Wno-unknown-pragmas"]),
            ],
            linkerSettings: [
                .unsafeFlags(["-L\(ompLib)"]),
                .linkedLibrary("omp"),
                .linkedLibrary("m"),
            ]
        ),
        // PNG through libpng (its longjmp error handling stays on the C side).
        .target(
            name: "CImageIO",
            path: "Sources/CImageIO",
            publicHeadersPath: "include",
            cSettings: [.unsafeFlags(["-O2"])],
            linkerSettings: [.linkedLibrary("png16"), .linkedLibrary("z")]
        ),
        .target(
            name: "UnCLIP",
            dependencies: ["CKernels", "CImageIO"],
            path: "Sources/UnCLIP"
        ),
        // What the three command-line tools share: exit codes, safe stdout/stderr, progress, common options.
        .target(
            name: "CLISupport",
            dependencies: ["UnCLIP", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/CLISupport"
        ),
        // The HTTP APIs' requests, responses and errors as plain values (OpenAI Images, AUTOMATIC1111), multipart
        // bodies: no server framework, so the parsers are fuzzed and tested alone.
        .target(
            name: "UnCLIPAPI",
            dependencies: ["UnCLIP"],
            path: "Sources/UnCLIPAPI"
        ),
        // unclip serve: the routes, the job queue, the image store and the web page on Hummingbird 2.
        .target(
            name: "UnCLIPServer",
            dependencies: ["UnCLIP", "UnCLIPAPI",
                           .product(name: "Hummingbird", package: "hummingbird"),
                           .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")],
            path: "Sources/UnCLIPServer"
        ),
        .executableTarget(
            name: "unclip",
            dependencies: ["UnCLIP", "CLISupport", "UnCLIPServer", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/unclip"
        ),
        // Peak-measuring loops for the benchmark (register-only FMA/VNNI/AMX, streaming bandwidth).
        .target(
            name: "CPeaks",
            dependencies: ["CKernels"],
            path: "bench/peaks",
            publicHeadersPath: "include",
            cSettings: [.unsafeFlags(["-O2", "-fopenmp", "-I\(ompInclude)"])],
            linkerSettings: [.linkedLibrary("openblas")]
        ),
        .executableTarget(
            name: "unclip-bench",
            dependencies: ["UnCLIP", "CKernels", "CPeaks", "CLISupport", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "bench/unclip-bench"
        ),
        .executableTarget(
            name: "unclip-weights",
            dependencies: ["UnCLIP", "CLISupport", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "weights-tools/unclip-weights"
        ),
        // Fuzz targets of the parsers (scripts/fuzz.sh builds it with libFuzzer; a normal build replays corpora).
        .executableTarget(
            name: "unclip-fuzz",
            dependencies: ["UnCLIP", "UnCLIPAPI"],
            path: "fuzz/unclip-fuzz"
        ),
        .testTarget(
            name: "UnCLIPTests",
            dependencies: ["UnCLIP", "CKernels", "UnCLIPAPI", "UnCLIPServer"],
            path: "Tests/UnCLIPTests",
            resources: [.copy("Fixtures")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
