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

    /// `ranges` must cover the whole output (default: the two-thread split).
    private func assertMatchesReference(_ p: GemmProblem, _ impl: Impl, ranges: [(Range<Int>, Range<Int>)]? = nil,
                                        file: StaticString = #filePath, line: UInt = #line) {
        let ref = Kernels.reference
        let refPacked = p.pack(ref), implPacked = p.pack(impl)
        let ranges = ranges ?? p.split
        let (rc0, expected) = p.runQ8(ref, packed: refPacked, ranges: p.whole)
        let (rc1, got) = p.runQ8(impl, packed: implPacked, ranges: ranges)
        XCTAssertEqual(rc0, 0, p.description, file: file, line: line)
        XCTAssertEqual(rc1, 0, "\(Kernels.name(impl)) \(p.description)", file: file, line: line)
        if let i = expected.indices.first(where: { expected[$0] != got[$0] }) {
            let count = zip(expected, got).filter { $0 != $1 }.count
            XCTFail("\(Kernels.name(impl)) \(p.description): \(count) bytes differ, first at \(i) (row \(i / p.ldc), "
                    + "column \(i % p.ldc)): reference \(expected[i]), got \(got[i])", file: file, line: line)
        }
        let (rc2, refI32) = p.runI32(ref, packed: refPacked, ranges: p.whole)
        let (rc3, implI32) = p.runI32(impl, packed: implPacked, ranges: ranges)
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

    /// The AVX-512 VNNI kernel by name: the generic tests above only cover it where the CPU has it, silently.
    private func avx512vnni() throws -> Impl {
        #if arch(x86_64)
        guard soundloc_kernels_supported("avx512vnni") != 0 else {
            throw XCTSkip("this CPU lacks AVX-512 F/BW/VL + VNNI (or the OS does not save the ZMM state)")
        }
        return soundloc_kernels_impl("avx512vnni")!
        #else
        XCTAssertNil(soundloc_kernels_impl("avx512vnni"), "avx512vnni is built for x86-64 only")
        throw XCTSkip("avx512vnni is x86-64 only")
        #endif
    }

    /// Sizes around the 4×64 tile, K by 4 and the 1024-K chunks (odd channel counts, K and N tails), with
    /// residual + fused ReLU and nonzero activation zero points forced on half the cases, and the output cut
    /// into three ranges at arbitrary (mostly not tile-aligned) rows and columns.
    func testAVX512VNNITailsBitExact() throws {
        let impl = try avx512vnni()
        var rng = KernelRandom(seed: 0x5EED_0512)
        let ms = [1, 2, 3, 4, 5, 7, 8, 23, 24, 25, 29, 52]
        let ns = [1, 3, 15, 16, 17, 31, 33, 63, 64, 65, 97, 127, 128, 129, 200]
        let ks = [1, 2, 3, 4, 5, 6, 7, 9, 27, 147, 255, 576, 1021, 1024, 1025, 1027, 2051, 3075]
        for i in 0..<120 {
            let m = ms[rng.int(0...ms.count - 1)], n = ns[rng.int(0...ns.count - 1)], k = ks[rng.int(0...ks.count - 1)]
            var p = GemmProblem.random(&rng, m: m, n: n, k: k)
            p.label = "avx512vnni tails"
            if i % 2 == 0 {
                p.residual = rng.bytes(m * p.ldc)
                p.qmin = UInt8(p.outZP)  // fused ReLU
                p.qmax = 255
                p.aZP = UInt8(rng.int(1...255))
            }
            let r = rng.int(0...m), c = rng.int(0...n)
            assertMatchesReference(p, impl, ranges: [(0..<r, 0..<n), (r..<m, 0..<c), (r..<m, c..<n)])
        }
    }

    /// One sub-block [m0, m1) × [n0, n1) alone: equal to the reference there, nothing written elsewhere.
    func testAVX512VNNISubRangeWritesOnlyItsBlock() throws {
        let impl = try avx512vnni()
        let ref = Kernels.reference
        var rng = KernelRandom(seed: 0x5EED_0513)
        for _ in 0..<40 {
            let m = rng.int(1...30), n = rng.int(1...150), k = rng.int(1...1100)
            var p = GemmProblem.random(&rng, m: m, n: n, k: k)
            p.label = "avx512vnni sub-range"
            let m0 = rng.int(0...p.m), m1 = rng.int(m0...p.m), n0 = rng.int(0...p.n), n1 = rng.int(n0...p.n)
            let block = [(m0..<m1, n0..<n1)]
            let inside = { (i: Int) in (m0..<m1).contains(i / p.ldc) && (n0..<n1).contains(i % p.ldc) }
            let refPacked = p.pack(ref), implPacked = p.pack(impl)
            let (rc0, whole) = p.runQ8(ref, packed: refPacked, ranges: p.whole)
            let (rc1, got) = p.runQ8(impl, packed: implPacked, ranges: block)
            XCTAssertEqual(rc0, 0)
            XCTAssertEqual(rc1, 0, p.description)
            if let i = whole.indices.first(where: { got[$0] != (inside($0) ? whole[$0] : 0xA5) }) {
                XCTFail("\(p.description) rows \(m0)..<\(m1) columns \(n0)..<\(n1): first difference at row \(i / p.ldc), "
                        + "column \(i % p.ldc): got \(got[i]), expected \(inside(i) ? whole[i] : 0xA5)")
            }
            let (rc2, wholeI32) = p.runI32(ref, packed: refPacked, ranges: p.whole)
            let (rc3, gotI32) = p.runI32(impl, packed: implPacked, ranges: block)
            XCTAssertEqual(rc2, 0)
            XCTAssertEqual(rc3, 0, p.description)
            let badI32 = wholeI32.indices.first { gotI32[$0] != (inside($0) ? wholeI32[$0] : 0x5A5A_5A5A) }
            XCTAssertNil(badI32, "int32 \(p.description) rows \(m0)..<\(m1) columns \(n0)..<\(n1)")
        }
    }

    /// The tile the engine splits rows by, and the packed layout's size.
    func testAVX512VNNIShape() throws {
        let impl = try avx512vnni()
        XCTAssertEqual([impl.pointee.mr, impl.pointee.nr, impl.pointee.kr], [4, 64, 4])
        // header + 2 panels × (64 bias terms + 64 × K rounded up to 4)
        XCTAssertEqual(impl.pointee.packed_size!(65, 5), 64 + 2 * (64 * 4 + 64 * 8))
    }

    /// im2col (split in two row ranges) followed by the int32 GEMM equals a direct NHWC convolution, padding
    /// included (padded taps read the zero point, so they add nothing).
    func testIm2colConvolution() {
        var rng = KernelRandom(seed: 0x5EED_0003)
        let cases: [(h: Int, w: Int, cin: Int, cout: Int, kernel: Int, stride: Int, pad: Int, zp: UInt8)] = [
            (9, 7, 3, 5, 3, 1, 1, 0), (11, 8, 4, 17, 7, 2, 3, 37), (6, 6, 16, 33, 1, 2, 0, 0), (5, 4, 2, 3, 3, 2, 1, 200),
            // Kernel-row runs of every length class of the short copies: 3 (and 1, 2 at the edges), 7, 21, 48 bytes.
            (7, 9, 1, 4, 3, 1, 1, 5), (13, 10, 1, 6, 7, 2, 3, 0), (15, 14, 3, 8, 7, 2, 3, 11), (5, 5, 16, 4, 3, 1, 1, 0),
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
