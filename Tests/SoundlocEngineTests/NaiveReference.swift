// Direct-loop reference implementations in Double over CHW (PyTorch's layout), written for
// clarity only: the engine's im2col/GEMM/NHWC layers are tested against these.

struct CHW {
    var c: Int, h: Int, w: Int
    var v: [Double]
    init(c: Int, h: Int, w: Int, _ v: [Double]? = nil) {
        self.c = c; self.h = h; self.w = w
        self.v = v ?? [Double](repeating: 0, count: c * h * w)
    }
    subscript(ch: Int, y: Int, x: Int) -> Double {
        get { v[(ch * h + y) * w + x] }
        set { v[(ch * h + y) * w + x] = newValue }
    }
    /// As channels-last floats, the engine's layout.
    var hwc: [Float] {
        var out = [Float](repeating: 0, count: v.count)
        for ch in 0..<c { for y in 0..<h { for x in 0..<w { out[(y * w + x) * c + ch] = Float(self[ch, y, x]) } } }
        return out
    }
    var floats: [Float] { v.map(Float.init) }
}

func naiveConv(_ x: CHW, weight: [Float], bias: [Float], cout: Int, k: Int, stride: Int, pad: Int, relu: Bool) -> CHW {
    let oh = (x.h + 2 * pad - k) / stride + 1, ow = (x.w + 2 * pad - k) / stride + 1
    var y = CHW(c: cout, h: oh, w: ow)
    for o in 0..<cout {
        for oy in 0..<oh {
            for ox in 0..<ow {
                var sum = Double(bias[o])
                for i in 0..<x.c {
                    for ky in 0..<k {
                        let iy = oy * stride - pad + ky
                        if iy < 0 || iy >= x.h { continue }
                        for kx in 0..<k {
                            let ix = ox * stride - pad + kx
                            if ix < 0 || ix >= x.w { continue }
                            sum += Double(weight[((o * x.c + i) * k + ky) * k + kx]) * x[i, iy, ix]
                        }
                    }
                }
                y[o, oy, ox] = relu ? max(sum, 0) : sum
            }
        }
    }
    return y
}

func naiveMaxPool(_ x: CHW, k: Int, stride: Int, pad: Int) -> CHW {
    let oh = (x.h + 2 * pad - k) / stride + 1, ow = (x.w + 2 * pad - k) / stride + 1
    var y = CHW(c: x.c, h: oh, w: ow)
    for ch in 0..<x.c {
        for oy in 0..<oh {
            for ox in 0..<ow {
                var m = -Double.infinity
                for ky in 0..<k {
                    for kx in 0..<k {
                        let iy = oy * stride - pad + ky, ix = ox * stride - pad + kx
                        if iy >= 0 && iy < x.h && ix >= 0 && ix < x.w { m = max(m, x[ch, iy, ix]) }
                    }
                }
                y[ch, oy, ox] = m
            }
        }
    }
    return y
}

func naiveAdd(_ a: CHW, _ b: CHW, relu: Bool) -> CHW {
    var y = a
    for i in 0..<y.v.count { y.v[i] = relu ? max(a.v[i] + b.v[i], 0) : a.v[i] + b.v[i] }
    return y
}

/// The whole ResNet-18-S5 trunk (or `blocks` per stage) from the naive layers; `weights` by file name (OIHW).
func naiveResNet(_ input: CHW, prefix: String, width: Int, blocks: [Int] = [2, 2, 2, 2], weights: [String: [Float]]) -> CHW {
    func conv(_ x: CHW, _ name: String, cout: Int, k: Int, stride: Int, relu: Bool) -> CHW {
        naiveConv(x, weight: weights["\(name).weight"]!, bias: weights["\(name).bias"]!, cout: cout, k: k,
                  stride: stride, pad: k / 2, relu: relu)
    }
    var x = conv(input, "\(prefix).conv1", cout: width, k: 7, stride: 2, relu: true)
    x = naiveMaxPool(x, k: 3, stride: 2, pad: 1)
    for (l, stride) in [1, 2, 2, 1].enumerated() {
        let cout = width << l
        for b in 0..<blocks[l] {
            let name = "\(prefix).layer\(l + 1).\(b)"
            let s = b == 0 ? stride : 1
            let mid = conv(x, "\(name).conv1", cout: cout, k: 3, stride: s, relu: true)
            let out = conv(mid, "\(name).conv2", cout: cout, k: 3, stride: 1, relu: false)
            let shortcut = weights["\(name).downsample.weight"] != nil
                ? conv(x, "\(name).downsample", cout: cout, k: 1, stride: s, relu: false) : x
            x = naiveAdd(out, shortcut, relu: true)
        }
    }
    return x
}
