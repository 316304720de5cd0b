/// RGB8 frame of any size -> the network's input: 224×224, ImageNet-normalised, CHW float.
///
/// Twin of `Tools/dsol/image.py` (read its docstring for the contract): x = u8/255 in Float;
/// separable tent-filter resampling, horizontal pass first, each pass accumulated in Double and
/// stored as Float; weights for output o: centre c = (o + 0.5)·in/out, support = max(in/out, 1),
/// w(i) = max(0, 1 − |i + 0.5 − c| / support), normalised to sum 1; then (r − mean) / std in Float.
///
/// Weights and the intermediate buffer are made once per input size; `process` allocates nothing.
/// One instance must not be used from two threads at once.
public final class ImagePreprocessor {
    public static let imageNetMean: [Float] = [0.485, 0.456, 0.406]
    public static let imageNetStd: [Float] = [0.229, 0.224, 0.225]

    public let inputWidth: Int
    public let inputHeight: Int
    public let outputSize: Int
    public let mean: [Float]
    public let std: [Float]

    /// Filter taps for one axis: output o reads inputs first[o] ..< first[o] + count[o].
    struct Taps {
        var first: [Int]
        var count: [Int]
        /// Weights of output o at weights[offset[o] ..< offset[o] + count[o]].
        var offset: [Int]
        var weights: [Double]
    }

    private let horizontal: Taps
    private let vertical: Taps
    private let toUnit: [Float]
    private let rowPass: UnsafeMutablePointer<Float>

    /// Prepares for `inputWidth` × `inputHeight` frames; `mean`/`std` come from the model file.
    public init(inputWidth: Int, inputHeight: Int, outputSize: Int = 224,
                mean: [Float] = ImagePreprocessor.imageNetMean, std: [Float] = ImagePreprocessor.imageNetStd) {
        precondition(inputWidth >= 1 && inputHeight >= 1 && outputSize >= 1, "image sizes must be positive")
        precondition(mean.count == 3 && std.count == 3, "mean and std need 3 values")
        self.inputWidth = inputWidth
        self.inputHeight = inputHeight
        self.outputSize = outputSize
        self.mean = mean
        self.std = std
        horizontal = Self.tentTaps(inSize: inputWidth, outSize: outputSize)
        vertical = Self.tentTaps(inSize: inputHeight, outSize: outputSize)
        toUnit = (0..<256).map { Float($0) / Float(255) }
        rowPass = .allocate(capacity: inputHeight * outputSize * 3)
        rowPass.initialize(repeating: 0, count: inputHeight * outputSize * 3)
    }

    deinit { rowPass.deallocate() }

    /// Floats in one output: 3 × outputSize × outputSize.
    public var outputCount: Int { 3 * outputSize * outputSize }

    /// Normalised tent weights of one axis (Double, as the contract says).
    static func tentTaps(inSize: Int, outSize: Int) -> Taps {
        let scale = Double(inSize) / Double(outSize)
        let support = max(scale, 1)
        var taps = Taps(first: [], count: [], offset: [], weights: [])
        for o in 0..<outSize {
            let c = (Double(o) + 0.5) * scale
            let lo = max(0, Int((c - support - 0.5).rounded(.down)))
            let hi = min(inSize - 1, Int((c + support - 0.5).rounded(.up)))
            var raw = [Double]()
            var first = -1
            for i in lo...hi {
                let w = max(0, 1 - abs(Double(i) + 0.5 - c) / support)
                if w > 0 {
                    if first < 0 { first = i }
                    raw.append(w)
                } else if first >= 0 {
                    break
                }
            }
            let sum = raw.reduce(0, +)
            taps.first.append(first)
            taps.count.append(raw.count)
            taps.offset.append(taps.weights.count)
            taps.weights += raw.map { $0 / sum }
        }
        return taps
    }

    /// `rgb`: inputHeight × inputWidth × 3 bytes (row-major RGB); `output`: 3 × outputSize² floats.
    public func process(rgb: UnsafeBufferPointer<UInt8>, into output: UnsafeMutableBufferPointer<Float>) {
        precondition(rgb.count == inputWidth * inputHeight * 3, "expected \(inputHeight)x\(inputWidth)x3 bytes, got \(rgb.count)")
        precondition(output.count == outputCount, "output needs \(outputCount) floats")
        let n = outputSize
        let src = rgb.baseAddress!, dst = output.baseAddress!
        toUnit.withUnsafeBufferPointer { unit in
            horizontal.weights.withUnsafeBufferPointer { hw in
                for y in 0..<inputHeight {
                    let row = src + y * inputWidth * 3
                    let out = rowPass + y * n * 3
                    for ox in 0..<n {
                        var r = 0.0, g = 0.0, b = 0.0
                        let first = horizontal.first[ox], w = hw.baseAddress! + horizontal.offset[ox]
                        for t in 0..<horizontal.count[ox] {
                            let p = row + (first + t) * 3
                            r += w[t] * Double(unit[Int(p[0])])
                            g += w[t] * Double(unit[Int(p[1])])
                            b += w[t] * Double(unit[Int(p[2])])
                        }
                        out[ox * 3] = Float(r)
                        out[ox * 3 + 1] = Float(g)
                        out[ox * 3 + 2] = Float(b)
                    }
                }
            }
        }
        let m0 = mean[0], m1 = mean[1], m2 = mean[2], s0 = std[0], s1 = std[1], s2 = std[2]
        let plane = n * n
        vertical.weights.withUnsafeBufferPointer { vw in
            for oy in 0..<n {
                let first = vertical.first[oy], count = vertical.count[oy], w = vw.baseAddress! + vertical.offset[oy]
                for ox in 0..<n {
                    var r = 0.0, g = 0.0, b = 0.0
                    for t in 0..<count {
                        let p = rowPass + ((first + t) * n + ox) * 3
                        r += w[t] * Double(p[0])
                        g += w[t] * Double(p[1])
                        b += w[t] * Double(p[2])
                    }
                    let i = oy * n + ox
                    dst[i] = (Float(r) - m0) / s0
                    dst[plane + i] = (Float(g) - m1) / s1
                    dst[2 * plane + i] = (Float(b) - m2) / s2
                }
            }
        }
    }

    /// Allocating convenience: `rgb` is inputHeight × inputWidth × 3 bytes.
    public func process(rgb: [UInt8]) -> [Float] {
        var out = [Float](repeating: 0, count: outputCount)
        rgb.withUnsafeBufferPointer { src in out.withUnsafeMutableBufferPointer { process(rgb: src, into: $0) } }
        return out
    }
}
