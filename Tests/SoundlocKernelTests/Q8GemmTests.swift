import CSoundlocKernels
import XCTest

/// Every implementation this CPU runs must equal the reference bit for bit; the int32 results must equal the naive sum.
final class Q8GemmTests: XCTestCase {
    func testAvailableImplementations() {
        let names = Kernels.available.map(Kernels.name)
        XCTAssertEqual(names.first, "reference")
        #if arch(x86_64)
        // The development machines have AVX2 + FMA; if this fails the fast path is silently not tested.
        XCTAssertTrue(names.contains("avx2"), "avx2 not supported here: \(names)")
        #endif
    }

    private func assertMatchesReference(_ p: GemmProblem, _ impl: Impl, file: StaticString = #filePath, line: UInt = #line) {
        let ref = Kernels.reference
        let refPacked = p.pack(ref), implPacked = p.pack(impl)
        let (rc0, expected) = p.runQ8(ref, packed: refPacked, ranges: p.whole)
        let (rc1, got) = p.runQ8(impl, packed: implPacked, ranges: p.split)
        XCTAssertEqual(rc0, 0, p.description, file: file, line: line)
        XCTAssertEqual(rc1, 0, "\(Kernels.name(impl)) \(p.description)", file: file, line: line)
        if let i = expected.indices.first(where: { expected[$0] != got[$0] }) {
            let count = zip(expected, got).filter { $0 != $1 }.count
            XCTFail("\(Kernels.name(impl)) \(p.description): \(count) bytes differ, first at \(i) (row \(i / p.ldc), "
                    + "column \(i % p.ldc)): reference \(expected[i]), got \(got[i])", file: file, line: line)
        }
        let (rc2, refI32) = p.runI32(ref, packed: refPacked, ranges: p.whole)
        let (rc3, implI32) = p.runI32(impl, packed: implPacked, ranges: p.split)
        XCTAssertEqual(rc2, 0, file: file, line: line)
        XCTAssertEqual(rc3, 0, file: file, line: line)
        XCTAssertTrue(refI32 == implI32, "\(Kernels.name(impl)) int32 differs: \(p.description)", file: file, line: line)
        var naiveOK = true
        for row in 0..<p.m { for col in 0..<p.n where Int64(refI32[row * p.ldc + col]) != p.naiveAccumulator(row, col) { naiveOK = false } }
        XCTAssertTrue(naiveOK, "int32 accumulators differ from the naive sum: \(p.description)", file: file, line: line)
    }

    func testRandomShapesBitExact() {
        var rng = KernelRandom(seed: 0x5EED_0001)
        for impl in Kernels.available {
            for _ in 0..<150 { assertMatchesReference(.random(&rng), impl) }
        }
    }

    func testLargeKSpansSeveralChunksBitExact() {
        var rng = KernelRandom(seed: 0x5EED_0002)
        for impl in Kernels.available {
            for _ in 0..<4 { assertMatchesReference(.random(&rng, big: true), impl) }
        }
    }

    func testExtremeValuesDoNotSaturate() {
        for impl in Kernels.available {
            assertMatchesReference(.extreme(k: 4608, activation: 255, aZP: 0), impl)
            assertMatchesReference(.extreme(k: 4607, activation: 0, aZP: 255), impl)
            assertMatchesReference(.extreme(k: 1153, activation: 255, aZP: 128), impl)
        }
        // The exact value for the all-255 × all-127 column, K = 32768 (the documented limit).
        let p = GemmProblem.extreme(k: 32768, activation: 255, aZP: 0)
        for impl in Kernels.available {
            let (rc, c) = p.runI32(impl, packed: p.pack(impl), ranges: p.whole)
            XCTAssertEqual(rc, 0)
            XCTAssertEqual(c[0], 255 * 127 * 32768, Kernels.name(impl))
            XCTAssertEqual(c[1], -255 * 127 * 32768, Kernels.name(impl))
        }
    }

    /// Fused ReLU (qmin = out_zp) and residual addition follow the documented formula exactly.
    func testRequantisationFormula() {
        var p = GemmProblem(
            m: 1, n: 4, k: 1, lda: 1, ldc: 4, a: [10], w: [1, -1, 3, 5], bias: [0, 0, 0, 0], aZP: 0,
            scale: [0.25, 0.25, 0.05, 100], outZP: 20, qmin: 20, qmax: 255, residual: [30, 30, 30, 30], residualZP: 28,
            residualMult: 0.5, label: "formula")
        for impl in Kernels.available {
            // acc = 10, −10, 30, 50; t = acc·scale + (30 − 28)·0.5 = 3.5, −1.5, 2.5, 5001
            // round half even: 4, −2, 2, 5001 → +20, clamp [20, 255] → 24, 20, 22, 255
            XCTAssertEqual(Array(p.runQ8(impl, packed: p.pack(impl), ranges: p.whole).1.prefix(4)), [24, 20, 22, 255])
        }
        p.residual = nil
        p.qmin = 0
        for impl in Kernels.available {
            // t = 2.5, −2.5, 1.5, 5000 → 2, −2, 2 → 22, 18, 22, 255
            XCTAssertEqual(Array(p.runQ8(impl, packed: p.pack(impl), ranges: p.whole).1.prefix(4)), [22, 18, 22, 255])
        }
    }

    func testErrors() {
        let ref = Kernels.reference
        var p = GemmProblem(
            m: 1, n: 2, k: 3, lda: 3, ldc: 2, a: [1, 2, 3], w: [1, 2, 3, 4, 5, 6], bias: nil, aZP: 0, scale: [1, 1],
            outZP: 0, qmin: 0, qmax: 255, residual: nil, residualZP: 0, residualMult: 0, label: "errors")
        let refPacked = p.pack(ref)
        for impl in Kernels.available {
            if Kernels.name(impl) != "reference" {
                XCTAssertEqual(p.runQ8(impl, packed: refPacked, ranges: p.whole).0, SOUNDLOC_KERNELS_EPACKED)
            }
            let packed = p.pack(impl)
            XCTAssertEqual(p.runQ8(impl, packed: packed, ranges: [(0..<1, 0..<3)]).0, SOUNDLOC_KERNELS_EINVAL)
            XCTAssertEqual(p.runQ8(impl, packed: packed, ranges: [(0..<0, 0..<2)]).0, SOUNDLOC_KERNELS_OK)
        }
        p.w[4] = -128
        for impl in Kernels.available {
            var packed = [UInt8](repeating: 0, count: impl.pointee.packed_size!(2, 3))
            let rc = p.w.withUnsafeBufferPointer { wp in
                packed.withUnsafeMutableBytes { impl.pointee.pack_weights!(2, 3, wp.baseAddress, nil, 0, $0.baseAddress) }
            }
            XCTAssertEqual(rc, SOUNDLOC_KERNELS_EINVAL, "weight −128 must be refused by \(Kernels.name(impl))")
        }
    }

    /// im2col (split in two row ranges) followed by the int32 GEMM equals a direct NHWC convolution, padding
    /// included (padded taps read the zero point, so they add nothing).
    func testIm2colConvolution() {
        var rng = KernelRandom(seed: 0x5EED_0003)
        let cases: [(h: Int, w: Int, cin: Int, cout: Int, kernel: Int, stride: Int, pad: Int, zp: UInt8)] = [
            (9, 7, 3, 5, 3, 1, 1, 0), (11, 8, 4, 17, 7, 2, 3, 37), (6, 6, 16, 33, 1, 2, 0, 0), (5, 4, 2, 3, 3, 2, 1, 200),
        ]
        for t in cases {
            let oh = soundloc_conv_out_size(t.h, t.kernel, t.stride, t.pad, t.pad)
            let ow = soundloc_conv_out_size(t.w, t.kernel, t.stride, t.pad, t.pad)
            let m = oh * ow, k = t.kernel * t.kernel * t.cin
            let x = rng.bytes(t.h * t.w * t.cin), w = rng.weights(t.cout * k)
            var col = [UInt8](repeating: 0, count: m * k)
            x.withUnsafeBufferPointer { xp in
                col.withUnsafeMutableBufferPointer { cp in
                    for (lo, hi) in [(0, m / 2), (m / 2, m)] {
                        soundloc_u8_im2col_nhwc(xp.baseAddress, t.h, t.w, t.cin, t.kernel, t.kernel, t.stride, t.stride,
                                                t.pad, t.pad, ow, t.zp, lo, hi, cp.baseAddress, k)
                    }
                }
            }
            let p = GemmProblem(
                m: m, n: t.cout, k: k, lda: k, ldc: t.cout, a: col, w: w, bias: nil, aZP: t.zp, scale: [], outZP: 0,
                qmin: 0, qmax: 255, residual: nil, residualZP: 0, residualMult: 0, label: "conv")
            for impl in Kernels.available {
                let (rc, out) = p.runI32(impl, packed: p.pack(impl), ranges: p.whole)
                XCTAssertEqual(rc, 0)
                var mismatches = 0
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        for o in 0..<t.cout {
                            var s = 0
                            for ky in 0..<t.kernel {
                                for kx in 0..<t.kernel {
                                    let iy = oy * t.stride + ky - t.pad, ix = ox * t.stride + kx - t.pad
                                    guard iy >= 0, ix >= 0, iy < t.h, ix < t.w else { continue }
                                    for c in 0..<t.cin {
                                        s += (Int(x[(iy * t.w + ix) * t.cin + c]) - Int(t.zp))
                                            * Int(w[o * k + (ky * t.kernel + kx) * t.cin + c])
                                    }
                                }
                            }
                            if Int(out[(oy * ow + ox) * t.cout + o]) != s { mismatches += 1 }
                        }
                    }
                }
                XCTAssertEqual(mismatches, 0, "\(Kernels.name(impl)) \(t)")
            }
        }
        XCTAssertEqual(soundloc_conv_out_size(224, 7, 2, 3, 3), 112)
        XCTAssertEqual(soundloc_conv_out_size(2, 7, 1, 0, 0), 0)
    }
}
