import Foundation
import SoundlocTestSupport
import XCTest
@testable import SoundlocDSOL
@testable import SoundlocEngine
#if canImport(Glibc)
import Glibc
#endif

/// The int8 forward pass allocates nothing after the first one, with worker threads too
/// (the malloc-counting preload of `AllocationTests`, run in a child process).
final class Int8AllocationTests: XCTestCase {
    private static let childFlag = "SOUNDLOC_INT8_ALLOCATION_CHILD"
    private static let marker = "int8 heap allocations after the first forward: "

    func testNoHeapAllocationAfterFirstInt8Forward() throws {
        if let path = ProcessInfo.processInfo.environment[Self.childFlag] { return try measureInChild(path) }
        let dir = try scratchDirectory("int8-malloc-count")
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = dir.appendingPathComponent("int8.safetensors")
        try Data(try Int8ModelTests.quantized.get()).write(to: model)
        let source = dir.appendingPathComponent("count.c"), library = dir.appendingPathComponent("libcount.so")
        try AllocationTests.countingShim.write(to: source, atomically: true, encoding: .utf8)
        let (ccStatus, ccOutput) = try runMerged("/usr/bin/env", ["cc", "-shared", "-fPIC", "-O2", "-o", library.path, source.path])
        guard ccStatus == 0 else { return XCTFail("cannot build the malloc-counting shim (needs `cc`):\n\(ccOutput)") }
        let (status, output) = try runMerged("/proc/self/exe", ["SoundlocEngineTests.Int8AllocationTests/testNoHeapAllocationAfterFirstInt8Forward"],
                                             environment: ["LD_PRELOAD": library.path, Self.childFlag: model.path])
        guard let line = output.split(separator: "\n").first(where: { $0.contains(Self.marker) }),
              let count = Int(line.components(separatedBy: Self.marker)[1].prefix { $0.isNumber }) else {
            return XCTFail("child run reported no count (status \(status)):\n\(output.suffix(3000))")
        }
        XCTAssertEqual(count, 0, "int8 forward passes after the first allocated on the heap")
        XCTAssertEqual(status, 0, "child test failed:\n\(output.suffix(3000))")
    }

    private func measureInChild(_ path: String) throws {
        guard let handle = dlopen(nil, RTLD_NOW), let symbol = dlsym(handle, "soundloc_test_allocations") else {
            return XCTFail("malloc-counting shim not preloaded")
        }
        let allocations = unsafeBitCast(symbol, to: (@convention(c) () -> Int).self)
        let model = try DSOLModel(path: path, threads: 2)
        let s = Int8ModelTests.sample(40)
        var sink: Float = 0
        s.image.withUnsafeBufferPointer { img in
            s.audio.withUnsafeBufferPointer { aud in
                sink += model.forward(image: img, audio: aud).matchScore
                let start = allocations()
                for _ in 0..<5 { sink += model.forward(image: img, audio: aud).classMaps[0] }
                let count = allocations() - start
                print("\(Self.marker)\(count)")
                XCTAssertEqual(count, 0)
            }
        }
        XCTAssertTrue(sink.isFinite)
    }
}
