// swift-tools-version: 6.0
// soundloc: real-time discriminative sounding-object localisation (DSOL) for single-board Linux.
import PackageDescription

// System libraries come from Debian's -dev packages (Tools/setup.sh installs them) through pkg-config.
func systemLibrary(_ name: String, pkgConfig: String, apt: String) -> Target {
    .systemLibrary(name: name, pkgConfig: pkgConfig, providers: [.apt([apt])])
}

let package = Package(
    name: "soundloc",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "soundloc", targets: ["soundloc"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.1.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    ],
    targets: [
        // Edges: C libraries and the one C target for what Swift cannot import (macros, variadics, SIMD).
        systemLibrary("CALSA", pkgConfig: "alsa", apt: "libasound2-dev"),
        systemLibrary("COpenBLAS", pkgConfig: "openblas", apt: "libopenblas-dev"),
        systemLibrary("CFFTW", pkgConfig: "fftw3", apt: "libfftw3-dev"),
        systemLibrary("CZlib", pkgConfig: "zlib", apt: "zlib1g-dev"),
        .target(name: "CSoundlocShims", dependencies: ["CALSA"]),
        // int8 GEMM microkernels: a portable scalar reference plus AVX2, AVX-512 VNNI, NEON and NEON-dot twins, picked at start-up.
        .target(name: "CSoundlocKernels"),
        // What every layer shares: opening input files safely, making untrusted text safe for a terminal.
        .target(name: "SoundlocBase"),

        // Layers, in the order data flows: capture -> features -> ... -> output.
        .target(
            name: "SoundlocCapture",
            dependencies: ["SoundlocBase", "CALSA", "CZlib", "CSoundlocShims", .product(name: "Logging", package: "swift-log")]),
        .target(name: "SoundlocFeatures", dependencies: ["CFFTW"]),
        .target(name: "SoundlocEngine", dependencies: ["SoundlocBase", "COpenBLAS", "CSoundlocShims", "CSoundlocKernels"]),
        .target(name: "SoundlocDSOL", dependencies: ["SoundlocEngine", "SoundlocFeatures"]),
        .target(
            name: "SoundlocOutput",
            dependencies: [
                "SoundlocBase", "CZlib",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        .target(
            name: "SoundlocPipeline",
            dependencies: [
                "SoundlocBase", "SoundlocCapture", "SoundlocFeatures", "SoundlocEngine", "SoundlocDSOL", "SoundlocOutput",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        .target(
            name: "SoundlocEval",
            dependencies: ["SoundlocBase", "SoundlocCapture", "SoundlocFeatures", "SoundlocDSOL"]),
        .executableTarget(
            name: "soundloc",
            dependencies: [
                "SoundlocBase", "SoundlocCapture", "SoundlocFeatures", "SoundlocEngine", "SoundlocDSOL", "SoundlocOutput",
                "SoundlocPipeline", "SoundlocEval",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]),

        // What several test suites share (a seeded generator, running a child process); never linked into the product.
        .target(name: "SoundlocTestSupport", path: "Tests/SoundlocTestSupport"),
        .testTarget(name: "SoundlocFeaturesTests", dependencies: ["SoundlocFeatures", "SoundlocCapture", "SoundlocOutput"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "SoundlocBaseTests", dependencies: ["SoundlocBase", "SoundlocTestSupport"]),
        .testTarget(name: "SoundlocCaptureTests", dependencies: ["SoundlocCapture", "SoundlocTestSupport"]),
        .testTarget(name: "SoundlocOutputTests", dependencies: ["SoundlocOutput", "SoundlocTestSupport"]),
        .testTarget(name: "SoundlocEngineTests", dependencies: ["SoundlocEngine", "SoundlocDSOL", "SoundlocFeatures", "SoundlocTestSupport"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "SoundlocPipelineTests", dependencies: ["SoundlocPipeline", "SoundlocDSOL", "SoundlocEngine", "SoundlocTestSupport"]),
        .testTarget(name: "SoundlocEvalTests", dependencies: ["SoundlocEval", "SoundlocCapture", "SoundlocDSOL", "SoundlocTestSupport"],
                    exclude: ["Fixtures"]),
        .testTarget(name: "SoundlocKernelTests", dependencies: ["CSoundlocKernels"]),
        .testTarget(name: "SoundlocCLITests", dependencies: ["soundloc", "SoundlocTestSupport"]),

        // Fuzzing (Tools/fuzz.sh, Tests/Fuzz): one entry per parser of outside input and the harness around them;
        // never linked into the product.
        .target(name: "SoundlocFuzz",
                dependencies: ["SoundlocCapture", "SoundlocFeatures", "SoundlocEngine", "SoundlocDSOL", "SoundlocOutput",
                               "SoundlocPipeline", "SoundlocTestSupport"]),
        .executableTarget(name: "soundloc-fuzz", dependencies: ["SoundlocFuzz"]),
        .testTarget(name: "SoundlocFuzzTests",
                    dependencies: ["SoundlocFuzz", "SoundlocCapture", "SoundlocEngine", "SoundlocDSOL", "SoundlocPipeline"]),
    ],
    swiftLanguageModes: [.v6]
)
