import CSoundlocKernels
import XCTest

/// The Winograd F(2×2,3×3) path against the reference: im2col + the scalar reference GEMM, same requantisation.
/// Both flavours (AVX2 where the CPU has it, portable C everywhere) must agree bit for bit.
final class WinogradTests: XCTestCase {
    struct Case {
        var h: Int, w: Int, c: Int, n: Int
        var zp: UInt8, extreme: Bool, residual: Bool, relu: Bool
    }

    /// The reference output: im2col of the whole image, the reference implementation's requantised GEMM.
    func referenceOutput(_ t: Case, x: [UInt8], w: [Int8], bias: [Int32], rq: soundloc_q8_requant) -> [UInt8] {
        let m = t.h * t.w, k = 9 * t.c
        var col = [UInt8](repeating: 0, count: m * k)
        x.withUnsafeBufferPointer { xp in
            col.withUnsafeMutableBufferPointer { soundloc_u8_im2col_nhwc(xp.baseAddress, t.h, t.w, t.c, 3, 3, 1, 1, 1, 1, t.w, t.zp, 0, m, $0.baseAddress, k) }
        }
        let p = GemmProblem(m: m, n: t.n, k: k, lda: k, ldc: t.n, a: col, w: w, bias: bias, aZP: t.zp, scale: [], outZP: 0,
                            qmin: 0, qmax: 255, residual: nil, residualZP: 0, residualMult: 0, label: "reference")
        let packed = p.pack(Kernels.reference)
        var y = [UInt8](repeating: 0, count: m * t.n)
        var rq = rq
        let rc = packed.withUnsafeBytes { pp in
            col.withUnsafeBufferPointer { cp in
                y.withUnsafeMutableBufferPointer {
                    Kernels.reference.pointee.gemm_q8!(pp.baseAddress, 0, m, 0, t.n, cp.baseAddress, k, &rq, $0.baseAddress, t.n)
                }
            }
        }
        XCTAssertEqual(rc, SOUNDLOC_KERNELS_OK)
        return y
    }

    /// The two-phase form: the input transform over `rowSplits` of the tile rows, then the output over `columnSplits`.
    func twoPhaseOutput(_ t: Case, flavor: Int32, rowSplits: [Range<Int>], columnSplits: [Range<Int>], x: [UInt8], w: [Int8],
                        bias: [Int32], rq: soundloc_q8_requant) -> [UInt8] {
        var packed = [UInt8](repeating: 0, count: soundloc_q8_wino_packed_size(t.n, t.c))
        _ = w.withUnsafeBufferPointer { wp in
            bias.withUnsafeBufferPointer { bp in packed.withUnsafeMutableBytes { soundloc_q8_wino_pack_weights(t.n, t.c, wp.baseAddress, bp.baseAddress, $0.baseAddress) } }
        }
        var workspace = [UInt8](repeating: 0x5A, count: soundloc_q8_wino_workspace_size(t.h, t.w, t.c, t.n))
        var y = [UInt8](repeating: 0xA5, count: t.h * t.w * t.n + 1)
        var rq = rq
        packed.withUnsafeBytes { pp in
            workspace.withUnsafeMutableBytes { ws in
                for s in rowSplits {
                    let rc = x.withUnsafeBufferPointer {
                        soundloc_q8_wino_transform(flavor, pp.baseAddress, $0.baseAddress, t.h, t.w, t.c, t.zp, s.lowerBound, s.upperBound, ws.baseAddress)
                    }
                    XCTAssertEqual(rc, SOUNDLOC_KERNELS_OK)
                }
                for s in columnSplits {
                    let rc = y.withUnsafeMutableBufferPointer {
                        soundloc_q8_wino_finish(flavor, pp.baseAddress, t.h, t.w, s.lowerBound, s.upperBound, &rq, $0.baseAddress, ws.baseAddress)
                    }
                    XCTAssertEqual(rc, SOUNDLOC_KERNELS_OK)
                }
            }
        }
        return y
    }

    /// Runs the Winograd conv over `splits` of the tile rows (each a separate call on one workspace) into a buffer
    /// pre-filled with 0xA5 plus a spare byte, so a write outside the output shows.
    func winogradOutput(_ t: Case, flavor: Int32, splits: [Range<Int>], x: [UInt8], w: [Int8], bias: [Int32],
                        rq: soundloc_q8_requant) -> [UInt8] {
        var packed = [UInt8](repeating: 0, count: soundloc_q8_wino_packed_size(t.n, t.c))
        let prc = w.withUnsafeBufferPointer { wp in
            bias.withUnsafeBufferPointer { bp in packed.withUnsafeMutableBytes { soundloc_q8_wino_pack_weights(t.n, t.c, wp.baseAddress, bp.baseAddress, $0.baseAddress) } }
        }
        XCTAssertEqual(prc, SOUNDLOC_KERNELS_OK)
        var workspace = [UInt8](repeating: 0x5A, count: soundloc_q8_wino_workspace_size(t.h, t.w, t.c, t.n))
        var y = [UInt8](repeating: 0xA5, count: t.h * t.w * t.n + 1)
        var rq = rq
        for s in splits {
            let rc = packed.withUnsafeBytes { pp in
                x.withUnsafeBufferPointer { xp in
                    y.withUnsafeMutableBufferPointer { yp in
                        workspace.withUnsafeMutableBytes {
                            soundloc_q8_wino_conv(flavor, pp.baseAddress, xp.baseAddress, t.h, t.w, t.c, t.zp, s.lowerBound, s.upperBound,
                                                  &rq, yp.baseAddress, $0.baseAddress)
                        }
                    }
                }
            }
            XCTAssertEqual(rc, SOUNDLOC_KERNELS_OK)
        }
        return y
    }

    func testMatchesTheReferenceBitForBit() {
        var rng = KernelRandom(seed: 0x3133_57)
        let cases = [
            Case(h: 5, w: 7, c: 3, n: 5, zp: 0, extreme: false, residual: false, relu: true),
            Case(h: 6, w: 6, c: 64, n: 64, zp: 0, extreme: false, residual: true, relu: true),
            Case(h: 7, w: 5, c: 17, n: 33, zp: 113, extreme: false, residual: true, relu: false),
            Case(h: 4, w: 4, c: 512, n: 20, zp: 255, extreme: true, residual: false, relu: false),
            Case(h: 14, w: 14, c: 512, n: 40, zp: 0, extreme: true, residual: true, relu: false),
            Case(h: 13, w: 4, c: 256, n: 48, zp: 7, extreme: false, residual: true, relu: true),
            Case(h: 1, w: 1, c: 2, n: 1, zp: 3, extreme: false, residual: false, relu: false),
            Case(h: 2, w: 9, c: 511, n: 17, zp: 0, extreme: true, residual: false, relu: true),
            Case(h: 9, w: 3, c: 48, n: 24, zp: 128, extreme: true, residual: true, relu: true),
        ]
        for t in cases {
            let x = t.extreme ? (0..<t.h * t.w * t.c).map { _ in rng.bool() ? 255 : 0 } : rng.bytes(t.h * t.w * t.c)
            let w = t.extreme ? (0..<t.n * 9 * t.c).map { _ in rng.bool() ? 127 : -127 } : rng.weights(t.n * 9 * t.c)
            let bias = (0..<t.n).map { _ in Int32(rng.int(-(1 << 20)...(1 << 20))) }
            // Scales that make the output use the whole code range rather than sit at a clamp.
            let spread = Float(9 * t.c) * 255 * 64
            let scale = (0..<t.n).map { _ in Float(rng.int(50...400)) / spread }
            let residual = t.residual ? rng.bytes(t.h * t.w * t.n) : nil
            scale.withUnsafeBufferPointer { sp in
                withOptionalBuffer(residual) { rp in
                    let outZP = t.relu ? 0 : Int32(rng.int(0...255))
                    let rq = soundloc_q8_requant(scale: sp.baseAddress, out_zp: outZP, qmin: t.relu ? UInt8(outZP) : 0, qmax: 255,
                                                 residual: rp, residual_stride: t.n, residual_zp: Int32(rng.int(0...255)),
                                                 residual_mult: 0.37)
                    let expected = referenceOutput(t, x: x, w: w, bias: bias, rq: rq)
                    if expected.count >= 64 { XCTAssertGreaterThan(Set(expected).count, 8, "\(t): a degenerate case would prove little") }
                    let tileRows = (t.h + 1) / 2
                    for flavor in [Int32(SOUNDLOC_WINO_BEST), Int32(SOUNDLOC_WINO_SCALAR)] {
                        for splits in [[0..<tileRows], [0..<tileRows / 2, tileRows / 2..<tileRows], (0..<tileRows).map { $0..<$0 + 1 }] {
                            let got = winogradOutput(t, flavor: flavor, splits: splits, x: x, w: w, bias: bias, rq: rq)
                            XCTAssertEqual(Array(got.prefix(expected.count)), expected, "\(t) flavour \(flavor) splits \(splits)")
                            XCTAssertEqual(got.last, 0xA5, "\(t): wrote past the output")
                        }
                        let panels = stride(from: 0, to: t.n, by: 16).map { $0..<min(t.n, $0 + 16) }
                        let halves = [0..<min(t.n, (t.n / 32) * 16), min(t.n, (t.n / 32) * 16)..<t.n]
                        for columnSplits in [[0..<t.n], panels, halves] {
                            let got = twoPhaseOutput(t, flavor: flavor, rowSplits: [0..<tileRows / 2, tileRows / 2..<tileRows],
                                                     columnSplits: columnSplits, x: x, w: w, bias: bias, rq: rq)
                            XCTAssertEqual(Array(got.prefix(expected.count)), expected, "\(t) flavour \(flavor) two phases, columns \(columnSplits)")
                            XCTAssertEqual(got.last, 0xA5, "\(t): wrote past the output")
                        }
                    }
                }
            }
        }
    }

    func testRefusesBadArguments() {
        let w = [Int8](repeating: 1, count: 4 * 9 * 8)
        var packed = [UInt8](repeating: 0, count: soundloc_q8_wino_packed_size(4, 8))
        XCTAssertEqual(packed.withUnsafeMutableBytes { p in w.withUnsafeBufferPointer { soundloc_q8_wino_pack_weights(4, 8, $0.baseAddress, nil, p.baseAddress) } },
                       SOUNDLOC_KERNELS_OK)
        var bad = w
        bad[5] = -128
        XCTAssertEqual(packed.withUnsafeMutableBytes { p in bad.withUnsafeBufferPointer { soundloc_q8_wino_pack_weights(4, 8, $0.baseAddress, nil, p.baseAddress) } },
                       SOUNDLOC_KERNELS_EINVAL, "-128 is outside the contract")
        let scale = [Float](repeating: 0.01, count: 4)
        let x = [UInt8](repeating: 9, count: 6 * 6 * 8)
        var y = [UInt8](repeating: 0, count: 6 * 6 * 4)
        var ws = [UInt8](repeating: 0, count: soundloc_q8_wino_workspace_size(6, 6, 8, 4))
        func conv(_ p: [UInt8], c: Int, _ t0: Int, _ t1: Int) -> Int32 {
            scale.withUnsafeBufferPointer { sp in
                var rq = soundloc_q8_requant(scale: sp.baseAddress, out_zp: 0, qmin: 0, qmax: 255, residual: nil, residual_stride: 0,
                                             residual_zp: 0, residual_mult: 0)
                return p.withUnsafeBytes { pp in
                    x.withUnsafeBufferPointer { xp in
                        y.withUnsafeMutableBufferPointer { yp in
                            ws.withUnsafeMutableBytes { soundloc_q8_wino_conv(0, pp.baseAddress, xp.baseAddress, 6, 6, c, 0, t0, t1, &rq, yp.baseAddress, $0.baseAddress) }
                        }
                    }
                }
            }
        }
        XCTAssertEqual(conv(packed, c: 8, 0, 3), SOUNDLOC_KERNELS_OK)
        XCTAssertEqual(conv(packed, c: 7, 0, 3), SOUNDLOC_KERNELS_EINVAL, "channel count differs from the packed weights")
        XCTAssertEqual(conv(packed, c: 8, 0, 4), SOUNDLOC_KERNELS_EINVAL, "only 3 tile rows")
        XCTAssertEqual(conv(packed, c: 8, 2, 1), SOUNDLOC_KERNELS_EINVAL)
        var gemmPacked = packed
        gemmPacked[4] ^= 0xFF  // the implementation tag
        XCTAssertEqual(conv(gemmPacked, c: 8, 0, 3), SOUNDLOC_KERNELS_EPACKED)
        scale.withUnsafeBufferPointer { sp in
            var rq = soundloc_q8_requant(scale: sp.baseAddress, out_zp: 0, qmin: 0, qmax: 255, residual: nil, residual_stride: 0,
                                         residual_zp: 0, residual_mult: 0)
            packed.withUnsafeBytes { pp in
                y.withUnsafeMutableBufferPointer { yp in
                    ws.withUnsafeMutableBytes { w in
                        XCTAssertEqual(soundloc_q8_wino_finish(0, pp.baseAddress, 6, 6, 0, 5, &rq, yp.baseAddress, w.baseAddress),
                                       SOUNDLOC_KERNELS_EINVAL, "only 4 columns")
                        XCTAssertEqual(soundloc_q8_wino_finish(0, pp.baseAddress, 6, 6, 1, 4, &rq, yp.baseAddress, w.baseAddress),
                                       SOUNDLOC_KERNELS_EINVAL, "columns start on a 16-column panel")
                        XCTAssertEqual(soundloc_q8_wino_finish(0, pp.baseAddress, 6, 6, 0, 4, &rq, yp.baseAddress, w.baseAddress),
                                       SOUNDLOC_KERNELS_OK)
                    }
                }
            }
        }
    }
}
