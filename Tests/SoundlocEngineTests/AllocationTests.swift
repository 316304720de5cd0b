import Foundation
import SoundlocTestSupport
import XCTest
@testable import SoundlocDSOL
@testable import SoundlocEngine
import SoundlocFeatures
#if canImport(Glibc)
import Glibc
#endif

/// After the first forward pass, nothing on the heap: buffers are reused, and a malloc-counting
/// preload (built here with the system C compiler) sees zero allocations on the calling thread.
final class AllocationTests: XCTestCase {
    private static let childFlag = "SOUNDLOC_ALLOCATION_CHILD"
    private static let marker = "heap allocations after the first forward: "

    private func inputs(_ model: DSOLModel) throws -> (rgb: [UInt8], image: [Float], audio: [Float]) {
        var rng = SeededRandom(seed: 21)
        let rgb = (0..<(48 * 64 * 3)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        return (rgb, rng.floats(model.imageCount), rng.floats(model.audioCount, scale: 40).map { $0 - 40 })
    }

    func testForwardReusesItsBuffers() throws {
        let model = try DSOLModel(path: try tinyFixtureDirectory().appendingPathComponent("model.safetensors").path)
        let (_, image, audio) = try inputs(model)
        let before = model.bufferAddresses
        let first = model.forward(image: image, audio: audio)
        let firstMaps = Array(first.classMaps), firstPointer = first.classMaps.baseAddress
        for _ in 0..<3 {
            let again = model.forward(image: image, audio: audio)
            XCTAssertEqual(again.classMaps.baseAddress, firstPointer)
            XCTAssertEqual(Array(again.classMaps), firstMaps, "same input, same output")
        }
        XCTAssertEqual(model.bufferAddresses, before)
    }

    func testNoHeapAllocationAfterFirstForward() throws {
        if ProcessInfo.processInfo.environment[Self.childFlag] != nil { return try measureInChild() }
        let dir = try scratchDirectory("malloc-count")
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = dir.appendingPathComponent("count.c"), library = dir.appendingPathComponent("libcount.so")
        try Self.countingShim.write(to: source, atomically: true, encoding: .utf8)
        let (ccStatus, ccOutput) = try runMerged("/usr/bin/env", ["cc", "-shared", "-fPIC", "-O2", "-o", library.path, source.path])
        guard ccStatus == 0 else { return XCTFail("cannot build the malloc-counting shim (needs a C compiler `cc`):\n\(ccOutput)") }

        // Re-run this very test in a child process with the shim preloaded.
        let (status, output) = try runMerged("/proc/self/exe", ["SoundlocEngineTests.AllocationTests/testNoHeapAllocationAfterFirstForward"],
                                             environment: ["LD_PRELOAD": library.path, Self.childFlag: "1"])
        guard let line = output.split(separator: "\n").first(where: { $0.contains(Self.marker) }),
              let count = Int(line.components(separatedBy: Self.marker)[1].prefix { $0.isNumber }) else {
            return XCTFail("child run reported no count (status \(status)):\n\(output.suffix(3000))")
        }
        XCTAssertEqual(count, 0, "forward passes after the first allocated on the heap")
        XCTAssertEqual(status, 0, "child test failed:\n\(output.suffix(3000))")
    }

    private func measureInChild() throws {
        guard let handle = dlopen(nil, RTLD_NOW), let symbol = dlsym(handle, "soundloc_test_allocations") else {
            return XCTFail("malloc-counting shim not preloaded")
        }
        let allocations = unsafeBitCast(symbol, to: (@convention(c) () -> Int).self)
        let model = try DSOLModel(path: try tinyFixtureDirectory().appendingPathComponent("model.safetensors").path)
        let (rgb, image, audio) = try inputs(model)
        let pre = ImagePreprocessor(inputWidth: 64, inputHeight: 48)
        var preprocessed = [Float](repeating: 0, count: pre.outputCount)
        var sink: Float = 0
        image.withUnsafeBufferPointer { img in
            audio.withUnsafeBufferPointer { aud in
                rgb.withUnsafeBufferPointer { src in
                    preprocessed.withUnsafeMutableBufferPointer { dst in
                        pre.process(rgb: src, into: dst)
                        sink += model.forward(image: img, audio: aud).matchScore
                        let start = allocations()
                        for _ in 0..<5 {
                            pre.process(rgb: src, into: dst)
                            let out = model.forward(image: img, audio: aud)
                            sink += out.matchScore + out.classMaps[0]
                        }
                        let count = allocations() - start
                        print("\(Self.marker)\(count)")
                        XCTAssertEqual(count, 0)
                    }
                }
            }
        }
        XCTAssertTrue(sink.isFinite)
    }

    /// Counts this thread's allocation calls; initial-exec TLS so the counter itself never allocates.
    static let countingShim = """
        #include <errno.h>
        #include <stddef.h>
        extern void *__libc_malloc(size_t);
        extern void *__libc_calloc(size_t, size_t);
        extern void *__libc_realloc(void *, size_t);
        extern void *__libc_memalign(size_t, size_t);
        static __thread long count __attribute__((tls_model("initial-exec")));
        long soundloc_test_allocations(void) { return count; }
        void *malloc(size_t n) { count++; return __libc_malloc(n); }
        void *calloc(size_t a, size_t b) { count++; return __libc_calloc(a, b); }
        void *realloc(void *p, size_t n) { count++; return __libc_realloc(p, n); }
        void *memalign(size_t a, size_t n) { count++; return __libc_memalign(a, n); }
        void *aligned_alloc(size_t a, size_t n) { count++; return __libc_memalign(a, n); }
        void *valloc(size_t n) { count++; return __libc_memalign(4096, n); }
        int posix_memalign(void **p, size_t a, size_t n) {
            count++;
            void *q = __libc_memalign(a, n);
            if (!q) return ENOMEM;
            *p = q;
            return 0;
        }
        """
}
