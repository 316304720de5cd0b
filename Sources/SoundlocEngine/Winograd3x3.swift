import COpenBLAS

/// What the Winograd transforms need of a lane type: Float for tails, SIMD8<Float> for the bulk.
protocol TileArithmetic {
    static func + (a: Self, b: Self) -> Self
    static func - (a: Self, b: Self) -> Self
}

extension Float: TileArithmetic {}
extension SIMD8: TileArithmetic where Scalar == Float {}

/// 3×3 stride-1 pad-1 convolution by Winograd F(2×2, 3×3) over NHWC: each 2×2 output tile costs
/// 16 multiplies per (input, output) channel pair instead of 36, as 16 GEMMs of
/// [tiles × Cin] · [Cin × Cout] between an input and an output transform (Lavin & Gray, 2016).
/// The transforms only add, subtract and halve, so rounding stays at the im2col path's level.
final class Winograd3x3 {
    let inChannels: Int
    let outChannels: Int
    /// U_ξ = (G g Gᵀ)_ξ for the 16 tile positions ξ, each [Cin][Cout].
    private let transformedWeight: FloatBuffer
    /// Cin zeros: the source of every tap that falls in the padding.
    private let zeros: FloatBuffer

    /// `weightOIHW` is PyTorch's [Cout][Cin][3][3].
    init(weightOIHW weight: UnsafeBufferPointer<Float>, inChannels: Int, outChannels: Int) {
        precondition(weight.count == outChannels * inChannels * 9)
        self.inChannels = inChannels
        self.outChannels = outChannels
        let u = FloatBuffer(count: 16 * outChannels * inChannels)
        // G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]], applied in Double.
        let g: [(Double, Double, Double)] = [(1, 0, 0), (0.5, 0.5, 0.5), (0.5, -0.5, 0.5), (0, 0, 1)]
        for o in 0..<outChannels {
            for i in 0..<inChannels {
                let k = weight.baseAddress! + (o * inChannels + i) * 9
                for a in 0..<4 {
                    // Row a of G·k, then (G·k)·Gᵀ.
                    let ga = g[a]
                    let r0 = ga.0 * Double(k[0]) + ga.1 * Double(k[3]) + ga.2 * Double(k[6])
                    let r1 = ga.0 * Double(k[1]) + ga.1 * Double(k[4]) + ga.2 * Double(k[7])
                    let r2 = ga.0 * Double(k[2]) + ga.1 * Double(k[5]) + ga.2 * Double(k[8])
                    for b in 0..<4 {
                        let gb = g[b]
                        u.pointer[((a * 4 + b) * inChannels + i) * outChannels + o] = Float(gb.0 * r0 + gb.1 * r1 + gb.2 * r2)
                    }
                }
            }
        }
        transformedWeight = u
        zeros = FloatBuffer(count: inChannels)
    }

    static func tiles(height: Int, width: Int) -> Int { ((height + 1) / 2) * ((width + 1) / 2) }

    /// Floats of workspace for an input of `height` × `width`: transformed input and GEMM results.
    func workspaceCount(height: Int, width: Int) -> Int {
        16 * Self.tiles(height: height, width: width) * (inChannels + outChannels)
    }

    /// First step, for the tiles `tiles` (raster order) only: V_ξ[t, c] = (Bᵀ d B)_ξ over each tile's 4×4 input patch d,
    /// into the workspace's first part. Disjoint tile ranges may run concurrently.
    func transformInput(_ input: Tensor, workspace: UnsafeMutablePointer<Float>, tiles: Range<Int>) {
        guard !tiles.isEmpty else { return }
        let h = input.height, w = input.width, cin = inChannels
        let tilesX = (w + 1) / 2
        let plane = Self.tiles(height: h, width: w) * cin
        let zero = UnsafePointer(zeros.pointer)
        let vectorEnd = cin & ~7
        // The 16 tap pointers of the tile being transformed, on the stack: pieces run concurrently and nothing is
        // allocated per call.
        withUnsafeTemporaryAllocation(of: UnsafePointer<Float>.self, capacity: 16) { taps in
            for t in tiles {
                let y0 = (t / tilesX) * 2 - 1, x0 = (t % tilesX) * 2 - 1
                for r in 0..<4 {
                    let y = y0 + r
                    for c in 0..<4 {
                        let x = x0 + c
                        taps[r * 4 + c] = (y >= 0 && y < h && x >= 0 && x < w) ? UnsafePointer(input.data + (y * w + x) * cin) : zero
                    }
                }
                let out = workspace + t * cin
                // Lanes are bound to a `let` per step: a captured `var` would be boxed on the heap.
                var lane = 0
                while lane < vectorEnd {
                    let ch = lane
                    // Closure literals as arguments stay non-escaping: no context is allocated.
                    Self.inputTile({ (i: Int) -> SIMD8<Float> in UnsafeRawPointer(taps[i] + ch).loadUnaligned(as: SIMD8<Float>.self) },
                                   { (i: Int, v: SIMD8<Float>) in UnsafeMutableRawPointer(out + i * plane + ch).storeBytes(of: v, as: SIMD8<Float>.self) })
                    lane += 8
                }
                while lane < cin {
                    let ch = lane
                    Self.inputTile({ (i: Int) -> Float in taps[i][ch] }, { (i: Int, v: Float) in out[i * plane + ch] = v })
                    lane += 1
                }
            }
        }
    }

    /// Second step, for tiles `tiles` and output channels `columns`: M_ξ = V_ξ · U_ξ (16 single-threaded sgemms), then
    /// Y = Aᵀ M A per tile plus bias (and the residual already in `output`), ReLU, cropped to the output. Needs the
    /// transformed input of those tiles; disjoint tile or column ranges may run concurrently.
    func finish(into output: Tensor, bias: UnsafePointer<Float>, workspace: UnsafeMutablePointer<Float>, tiles: Range<Int>,
                columns: Range<Int>, relu: Bool, accumulate: Bool) {
        guard !tiles.isEmpty, !columns.isEmpty else { return }
        let cin = inChannels, cout = outChannels
        let total = Self.tiles(height: output.height, width: output.width)
        let v = workspace, m = workspace + 16 * total * cin
        let t0 = tiles.lowerBound, c0 = columns.lowerBound
        for xi in 0..<16 {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(tiles.count), Int32(columns.count), Int32(cin), 1,
                        v + (xi * total + t0) * cin, Int32(cin), transformedWeight.pointer + xi * cout * cin + c0, Int32(cout),
                        0, m + (xi * total + t0) * cout + c0, Int32(cout))
        }
        transformOutput(m, into: output, bias: bias, tiles: tiles, total: total, columns: columns, relu: relu, accumulate: accumulate)
    }

    /// Bᵀ applied to one column (or row) of four: Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]].
    @inline(__always)
    private static func bt<T: TileArithmetic>(_ a: T, _ b: T, _ c: T, _ d: T) -> (T, T, T, T) {
        (a - c, b + c, c - b, b - d)
    }

    /// Aᵀ applied to one column (or row) of four: Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]].
    @inline(__always)
    private static func at<T: TileArithmetic>(_ a: T, _ b: T, _ c: T, _ d: T) -> (T, T) {
        (a + b + c, b - c - d)
    }

    /// Bᵀ d B for one tile, `d(i)` reading tap i (row-major 4×4) and `put(ξ, value)` writing V_ξ.
    @inline(__always)
    private static func inputTile<T: TileArithmetic>(_ d: (Int) -> T, _ put: (Int, T) -> Void) {
        let c0 = bt(d(0), d(4), d(8), d(12)), c1 = bt(d(1), d(5), d(9), d(13))
        let c2 = bt(d(2), d(6), d(10), d(14)), c3 = bt(d(3), d(7), d(11), d(15))
        let r0 = bt(c0.0, c1.0, c2.0, c3.0), r1 = bt(c0.1, c1.1, c2.1, c3.1)
        let r2 = bt(c0.2, c1.2, c2.2, c3.2), r3 = bt(c0.3, c1.3, c2.3, c3.3)
        put(0, r0.0); put(1, r0.1); put(2, r0.2); put(3, r0.3)
        put(4, r1.0); put(5, r1.1); put(6, r1.2); put(7, r1.3)
        put(8, r2.0); put(9, r2.1); put(10, r2.2); put(11, r2.3)
        put(12, r3.0); put(13, r3.1); put(14, r3.2); put(15, r3.3)
    }

    /// Aᵀ M A for one tile, `g(ξ)` reading M_ξ; returns (y00, y01, y10, y11).
    @inline(__always)
    private static func outputTile<T: TileArithmetic>(_ g: (Int) -> T) -> (T, T, T, T) {
        let s0 = at(g(0), g(4), g(8), g(12)), s1 = at(g(1), g(5), g(9), g(13))
        let s2 = at(g(2), g(6), g(10), g(14)), s3 = at(g(3), g(7), g(11), g(15))
        let top = at(s0.0, s1.0, s2.0, s3.0), bottom = at(s0.1, s1.1, s2.1, s3.1)
        return (top.0, top.1, bottom.0, bottom.1)
    }

    /// Y = Aᵀ M A per tile, plus bias (and the residual already in `output`), ReLU, cropped to the output.
    private func transformOutput(_ m: UnsafeMutablePointer<Float>, into output: Tensor, bias: UnsafePointer<Float>,
                                 tiles: Range<Int>, total: Int, columns: Range<Int>, relu: Bool, accumulate: Bool) {
        let h = output.height, w = output.width, cout = outChannels
        let tilesX = (w + 1) / 2
        let plane = total * cout
        let vectorEnd = columns.lowerBound + (columns.count & ~7)
        for t in tiles {
            let oy = (t / tilesX) * 2, ox = (t % tilesX) * 2
            let src = m + t * cout
            let rows = min(2, h - oy), cols = min(2, w - ox)
            let dst = output.data + (oy * w + ox) * cout
            var lane = columns.lowerBound
            while lane < vectorEnd {
                let co = lane
                let y = Self.outputTile { (i: Int) -> SIMD8<Float> in UnsafeRawPointer(src + i * plane + co).loadUnaligned(as: SIMD8<Float>.self) }
                let b = UnsafeRawPointer(bias + co).loadUnaligned(as: SIMD8<Float>.self)
                func emit(_ i: Int, _ j: Int, _ value: SIMD8<Float>) {
                    guard i < rows && j < cols else { return }
                    let p = UnsafeMutableRawPointer(dst + (i * w + j) * cout + co)
                    var r = value + b
                    if accumulate { r += p.loadUnaligned(as: SIMD8<Float>.self) }
                    if relu { r.replace(with: 0, where: r .< 0) }
                    p.storeBytes(of: r, as: SIMD8<Float>.self)
                }
                emit(0, 0, y.0); emit(0, 1, y.1); emit(1, 0, y.2); emit(1, 1, y.3)
                lane += 8
            }
            while lane < columns.upperBound {
                let co = lane
                let y = Self.outputTile { (i: Int) -> Float in src[i * plane + co] }
                func emit(_ i: Int, _ j: Int, _ value: Float) {
                    guard i < rows && j < cols else { return }
                    let p = dst + (i * w + j) * cout + co
                    var r = value + bias[co]
                    if accumulate { r += p.pointee }
                    p.pointee = relu ? max(r, 0) : r
                }
                emit(0, 0, y.0); emit(0, 1, y.1); emit(1, 0, y.2); emit(1, 1, y.3)
                lane += 1
            }
        }
    }
}
