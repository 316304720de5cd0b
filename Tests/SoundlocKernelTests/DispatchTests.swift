import CSoundlocKernels
import Foundation
import XCTest

/// Start-up selection: CPU detection, SOUNDLOC_KERNELS forcing, clear refusals.
final class DispatchTests: XCTestCase {
    override func tearDown() {
        unsetenv("SOUNDLOC_KERNELS")
        XCTAssertEqual(soundloc_kernels_select(nil), SOUNDLOC_KERNELS_OK)
        super.tearDown()
    }

    private var active: String { String(cString: soundloc_kernels_active_name()) }
    private var error: String { String(cString: soundloc_kernels_error()) }

    func testAutoSelectsBestSupported() {
        unsetenv("SOUNDLOC_KERNELS")
        XCTAssertEqual(soundloc_kernels_select(nil), SOUNDLOC_KERNELS_OK)
        #if arch(x86_64)
        let best = soundloc_kernels_supported("avx512vnni") != 0 ? "avx512vnni"
            : soundloc_kernels_supported("avx2") != 0 ? "avx2" : "reference"
        XCTAssertEqual(active, best)
        #elseif arch(arm64)
        XCTAssertEqual(active, soundloc_kernels_supported("neondot") != 0 ? "neondot" : "neon")
        #endif
        XCTAssertEqual(String(cString: soundloc_kernels_active().pointee.name), active)
    }

    func testEnvironmentForcesReference() {
        setenv("SOUNDLOC_KERNELS", "reference", 1)
        XCTAssertEqual(soundloc_kernels_select(nil), SOUNDLOC_KERNELS_OK)
        XCTAssertEqual(active, "reference")
        // An explicit name wins over the environment.
        XCTAssertEqual(soundloc_kernels_select("reference"), SOUNDLOC_KERNELS_OK)
    }

    /// SOUNDLOC_KERNELS=avx512vnni runs it where the CPU has it; avx2 stays selectable beside it.
    func testEnvironmentForcesAVX512VNNIAndAVX2() throws {
        #if arch(x86_64)
        guard soundloc_kernels_supported("avx512vnni") != 0 else {
            throw XCTSkip("this CPU lacks AVX-512 F/BW/VL + VNNI (or the OS does not save the ZMM state)")
        }
        setenv("SOUNDLOC_KERNELS", "avx512vnni", 1)
        XCTAssertEqual(soundloc_kernels_select(nil), SOUNDLOC_KERNELS_OK, error)
        XCTAssertEqual(active, "avx512vnni")
        XCTAssertEqual(soundloc_kernels_active().pointee.mr, 4)
        if soundloc_kernels_supported("avx2") != 0 {
            setenv("SOUNDLOC_KERNELS", "avx2", 1)
            XCTAssertEqual(soundloc_kernels_select(nil), SOUNDLOC_KERNELS_OK, error)
            XCTAssertEqual(active, "avx2")
        }
        XCTAssertEqual(soundloc_kernels_select("avx512vnni"), SOUNDLOC_KERNELS_OK, "an explicit name wins")
        XCTAssertEqual(active, "avx512vnni")
        #else
        setenv("SOUNDLOC_KERNELS", "avx512vnni", 1)
        XCTAssertEqual(soundloc_kernels_select(nil), SOUNDLOC_KERNELS_EUNSUPPORTED)
        XCTAssertTrue(error.contains("not built for this architecture"), error)
        #endif
    }

    func testEnvironmentForcingUnsupportedIsRefused() throws {
        #if arch(x86_64)
        let foreign = "neon"
        #else
        let foreign = "avx2"
        #endif
        XCTAssertEqual(soundloc_kernels_select("reference"), SOUNDLOC_KERNELS_OK)
        setenv("SOUNDLOC_KERNELS", foreign, 1)
        XCTAssertEqual(soundloc_kernels_select(nil), SOUNDLOC_KERNELS_EUNSUPPORTED)
        XCTAssertTrue(error.contains(foreign) && error.contains("SOUNDLOC_KERNELS"), error)
        XCTAssertEqual(active, "reference", "a refused selection keeps the previous one")
        XCTAssertEqual(soundloc_kernels_supported(foreign), 0)
        XCTAssertNil(soundloc_kernels_impl(foreign), "\(foreign) is not built for this architecture")

        setenv("SOUNDLOC_KERNELS", "fastest-please", 1)
        XCTAssertEqual(soundloc_kernels_select(nil), SOUNDLOC_KERNELS_EUNKNOWN)
        XCTAssertTrue(error.contains("fastest-please") && error.contains("avx512vnni"), error)
    }

    /// The active-implementation entry points run the selected kernel.
    func testActiveEntryPoints() {
        for name in Kernels.available.map(Kernels.name) {
            XCTAssertEqual(soundloc_kernels_select(name), SOUNDLOC_KERNELS_OK)
            let w: [Int8] = [1, 2, 3, -4, 5, -6], a: [UInt8] = [7, 8, 9, 10, 11, 12]
            var packed = [UInt8](repeating: 0, count: soundloc_q8_gemm_packed_size(2, 3))
            var c = [Int32](repeating: 0, count: 4)
            XCTAssertEqual(packed.withUnsafeMutableBytes { soundloc_q8_gemm_pack_weights(2, 3, w, nil, 1, $0.baseAddress) }, 0)
            XCTAssertEqual(packed.withUnsafeBytes { soundloc_q8_gemm_i32($0.baseAddress, 0, 2, 0, 2, a, 3, &c, 2) }, 0)
            // (a − 1)·w: row 0 = [6 7 8], row 1 = [9 10 11]
            let expected: [Int32] = [44, -37, 62, -52]
            XCTAssertEqual(c, expected, name)
        }
    }
}
