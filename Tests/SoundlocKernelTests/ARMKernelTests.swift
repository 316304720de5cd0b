import Foundation
import XCTest

/// Runs Tools/kernels/test_arm.sh: the C driver's bit-exactness checks natively, then cross-built for aarch64 and run
/// under qemu-user as Cortex-A72 (neon) and Cortex-A76 (neondot), plus the refusal of neondot on the A72.
final class ARMKernelTests: XCTestCase {
    func testNEONKernelsUnderQEMU() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let script = root.appendingPathComponent("Tools/kernels/test_arm.sh")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [script.path]
        var environment = ProcessInfo.processInfo.environment
        environment.removeValue(forKey: "SOUNDLOC_KERNELS")
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        if process.terminationStatus == 3 {
            XCTFail("cross tools missing (gcc-aarch64-linux-gnu, qemu-user-static): run Tools/setup.sh --test\n\(text)")
            return
        }
        XCTAssertEqual(process.terminationStatus, 0, text)
        XCTAssertTrue(text.contains("test_arm: all "), text)
    }
}
