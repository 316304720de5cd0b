import CSoundlocKernels
import XCTest

/// Deterministic xorshift so a failing case reproduces from its seed.
struct KernelRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed | 1 }
    mutating func next() -> UInt32 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return UInt32(truncatingIfNeeded: state >> 16)
    }
    mutating func int(_ range: ClosedRange<Int>) -> Int { range.lowerBound + Int(next() % UInt32(range.count)) }
    mutating func bool() -> Bool { next() & 1 == 1 }
    mutating func bytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8(truncatingIfNeeded: next()) } }
    mutating func weights(_ n: Int) -> [Int8] { (0..<n).map { _ in Int8(int(-127...127)) } }
}

typealias Impl = UnsafePointer<soundloc_q8_gemm_impl>

enum Kernels {
    static let allNames = ["reference", "avx2", "avx512vnni", "neon", "neondot"]
    static var reference: Impl { soundloc_kernels_impl("reference")! }
    /// Implementations built in and supported by this CPU, reference first.
    static var available: [Impl] { allNames.filter { soundloc_kernels_supported($0) != 0 }.map { soundloc_kernels_impl($0)! } }
    static func name(_ impl: Impl) -> String { String(cString: impl.pointee.name) }
}

/// One q8 GEMM problem: C[M×N] = requant(A[M×K] · W[N×K]ᵀ + bias) with strides and requantisation parameters.
struct GemmProblem {
    var m: Int, n: Int, k: Int, lda: Int, ldc: Int
    var a: [UInt8], w: [Int8], bias: [Int32]?
    var aZP: UInt8
    var scale: [Float]
    var outZP: Int32, qmin: UInt8, qmax: UInt8
    var residual: [UInt8]?  // M×ldc
    var residualZP: Int32, residualMult: Float
    var label: String

    /// bias + Σ (a − a_zp)·w in 64 bits: the definition of the int32 accumulator.
    func naiveAccumulator(_ row: Int, _ col: Int) -> Int64 {
        var s = Int64(bias?[col] ?? 0)
        for i in 0..<k { s += (Int64(a[row * lda + i]) - Int64(aZP)) * Int64(w[col * k + i]) }
        return s
    }

    func pack(_ impl: Impl) -> [UInt8] {
        var packed = [UInt8](repeating: 0, count: impl.pointee.packed_size!(n, k))
        let rc = w.withUnsafeBufferPointer { wp in
            packed.withUnsafeMutableBytes { pp in
                if let bias { return bias.withUnsafeBufferPointer { impl.pointee.pack_weights!(n, k, wp.baseAddress, $0.baseAddress, aZP, pp.baseAddress) } }
                return impl.pointee.pack_weights!(n, k, wp.baseAddress, nil, aZP, pp.baseAddress)
            }
        }
        precondition(rc == SOUNDLOC_KERNELS_OK, "pack failed: \(rc)")
        return packed
    }

    /// Runs the requantised GEMM over the given (row, column) ranges into a buffer pre-filled with 0xA5 (one spare
    /// byte at the end), so that writes outside the ranges show up in comparisons.
    func runQ8(_ impl: Impl, packed: [UInt8], ranges: [(Range<Int>, Range<Int>)]) -> (Int32, [UInt8]) {
        var c = [UInt8](repeating: 0xA5, count: m * ldc + 1)
        var worst: Int32 = 0
        scale.withUnsafeBufferPointer { sp in
            withOptionalBuffer(residual) { rp in
                var rq = soundloc_q8_requant(scale: sp.baseAddress, out_zp: outZP, qmin: qmin, qmax: qmax, residual: rp,
                                             residual_stride: ldc, residual_zp: residualZP, residual_mult: residualMult)
                for (rows, cols) in ranges {
                    let rc = packed.withUnsafeBytes { pp in
                        a.withUnsafeBufferPointer { ap in
                            c.withUnsafeMutableBufferPointer { cp in
                                impl.pointee.gemm_q8!(pp.baseAddress, rows.lowerBound, rows.upperBound, cols.lowerBound,
                                                      cols.upperBound, ap.baseAddress, lda, &rq, cp.baseAddress, ldc)
                            }
                        }
                    }
                    if rc != 0 { worst = rc }
                }
            }
        }
        return (worst, c)
    }

    func runI32(_ impl: Impl, packed: [UInt8], ranges: [(Range<Int>, Range<Int>)]) -> (Int32, [Int32]) {
        var c = [Int32](repeating: 0x5A5A_5A5A, count: m * ldc + 1)
        var worst: Int32 = 0
        for (rows, cols) in ranges {
            let rc = packed.withUnsafeBytes { pp in
                a.withUnsafeBufferPointer { ap in
                    c.withUnsafeMutableBufferPointer { cp in
                        impl.pointee.gemm_i32!(pp.baseAddress, rows.lowerBound, rows.upperBound, cols.lowerBound,
                                               cols.upperBound, ap.baseAddress, lda, cp.baseAddress, ldc)
                    }
                }
            }
            if rc != 0 { worst = rc }
        }
        return (worst, c)
    }

    var whole: [(Range<Int>, Range<Int>)] { [(0..<m, 0..<n)] }
    /// The split two threads would use: rows at the middle, columns at a point that is not tile-aligned.
    var split: [(Range<Int>, Range<Int>)] {
        let mid = m / 2, nmid = n / 3
        return [(0..<mid, 0..<n), (mid..<m, 0..<nmid), (mid..<m, nmid..<n)]
    }

    var description: String {
        "\(label) M=\(m) N=\(n) K=\(k) lda=\(lda) ldc=\(ldc) a_zp=\(aZP) out_zp=\(outZP) q=[\(qmin),\(qmax)] residual=\(residual != nil)"
    }
}

func withOptionalBuffer<R>(_ array: [UInt8]?, _ body: (UnsafePointer<UInt8>?) -> R) -> R {
    guard let array else { return body(nil) }
    return array.withUnsafeBufferPointer { body($0.baseAddress) }
}

extension GemmProblem {
    /// A random problem: odd sizes, K off the tile steps, zero points zero or not, ReLU and arbitrary clamps,
    /// residual or not, power-of-two scales now and then (exact .5 ties exercise round-half-even).
    /// `m`, `n`, `k`, when given, replace the random sizes.
    static func random(_ rng: inout KernelRandom, big: Bool = false, m fixedM: Int? = nil, n fixedN: Int? = nil,
                       k fixedK: Int? = nil) -> GemmProblem {
        let m = fixedM ?? (big ? rng.int(20...50) : rng.int(1...40))
        let n = fixedN ?? (big ? rng.int(40...100) : rng.int(1...70))
        let k = fixedK ?? (big ? rng.int(520...2400) : rng.int(1...300))
        let lda = k + (rng.int(0...2) == 0 ? rng.int(1...9) : 0)
        let ldc = n + (rng.int(0...2) == 0 ? rng.int(1...9) : 0)
        let outZP = rng.bool() ? 0 : Int32(rng.int(0...255))
        let (qmin, qmax): (UInt8, UInt8)
        switch rng.int(0...2) {
        case 0: (qmin, qmax) = (0, 255)
        case 1: (qmin, qmax) = (UInt8(outZP), 255)  // fused ReLU
        default: (qmin, qmax) = (UInt8(rng.int(0...127)), UInt8(rng.int(128...255)))
        }
        let ties = rng.int(0...3) == 0
        let scale: [Float] = (0..<n).map { _ in
            ties ? 1 / Float(1 << rng.int(1...12)) : Float(rng.int(1...3000)) / 1000 * 40 / (540 * Float(max(k, 2)))
        }
        let useBias = rng.int(0...3) != 0
        let bias: [Int32] = (0..<n).map { _ in Int32(rng.int(-100_000...100_000)) }
        return GemmProblem(
            m: m, n: n, k: k, lda: lda, ldc: ldc, a: rng.bytes(m * lda), w: rng.weights(n * k),
            bias: useBias ? bias : nil, aZP: rng.bool() ? 0 : UInt8(rng.int(1...255)), scale: scale,
            outZP: outZP, qmin: qmin, qmax: qmax, residual: rng.bool() ? rng.bytes(m * ldc) : nil,
            residualZP: Int32(rng.int(0...255)), residualMult: Float(rng.int(1...4000)) / 1000,
            label: big ? "random-big" : "random")
    }

    /// Constant activations against ±127 weights over a long K: products that saturate vpmaddubsw.
    static func extreme(k: Int, activation: UInt8, aZP: UInt8) -> GemmProblem {
        let m = 7, n = 19
        var w = [Int8](repeating: 0, count: n * k)
        for j in 0..<n {
            for i in 0..<k { w[j * k + i] = j % 3 == 0 ? 127 : j % 3 == 1 ? -127 : (i % 2 == 1 ? 127 : -127) }
        }
        return GemmProblem(
            m: m, n: n, k: k, lda: k, ldc: n, a: [UInt8](repeating: activation, count: m * k), w: w, bias: nil,
            aZP: aZP, scale: [Float](repeating: 100 / (255 * 127 * Float(k)), count: n), outZP: 3, qmin: 0, qmax: 255,
            residual: nil, residualZP: 0, residualMult: 0, label: "extreme a=\(activation)")
    }
}
