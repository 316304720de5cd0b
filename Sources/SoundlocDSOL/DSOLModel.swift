import SoundlocEngine

/// One forward pass's results. The buffers are views into the model's own storage: they stay
/// valid until the next `forward` call on the same model (copy what you keep, e.g. `Array(out.l)`).
/// Maps are H×W row-major (14×14 for a 224 image); per-class maps are class-major K×H×W.
public struct DSOLOutput {
    public let classes: [String]
    /// Spatial size of the vision feature map and of every map below.
    public let mapHeight: Int
    public let mapWidth: Int
    /// Feature size D.
    public let featureDim: Int
    /// f(v), H×W×D (NHWC, channels last — not PyTorch's D×H×W).
    public let fv: UnsafeBufferPointer<Float>
    /// g(a), D: global max of the audio trunk's output.
    public let ga: UnsafeBufferPointer<Float>
    /// l = sigmoid(w·cos), H×W: the sounding-area map.
    public let l: UnsafeBufferPointer<Float>
    /// Global max of `l`: how well audio and image match.
    public let matchScore: Float
    /// s^k = m^k ⊙ l, K×H×W: where class k is visible and sounding.
    public let s: UnsafeBufferPointer<Float>
    /// Per-pixel softmax over classes of 3·s, K×H×W (the reported class maps).
    public let classMaps: UnsafeBufferPointer<Float>
    /// Audio class distribution softmax(audio logits), K.
    public let pA: UnsafeBufferPointer<Float>
    /// Visual distribution of sounding classes softmax(GAP(s)), K.
    public let pV: UnsafeBufferPointer<Float>
    public let audioLogits: UnsafeBufferPointer<Float>
    public let visionLogits: UnsafeBufferPointer<Float>

    /// Number of classes K.
    public var numClasses: Int { classes.count }

    /// Class `k`'s map from `classMaps`, H×W.
    public func classMap(_ k: Int) -> UnsafeBufferPointer<Float> {
        let n = mapHeight * mapWidth
        return UnsafeBufferPointer(rebasing: classMaps[(k * n)..<((k + 1) * n)])
    }
}

/// A DSOL model loaded from a model file (Models/FORMAT.md), fp32 or int8, and ready to run.
///
/// Loading validates the whole file, repacks the weights and plans every buffer; `forward` then
/// allocates nothing. One instance must not run `forward` from two threads at once.
public final class DSOLModel {
    public let metadata: ModelMetadata
    /// The vision trunk (3 × imageSize²  →  D × 14 × 14), fp32 `ResNet18S5` or int8 `QuantizedResNet18S5`;
    /// usable on its own, e.g. for benchmarks.
    public let vision: BackboneTrunk
    /// The audio trunk (1 × frames × melBands  →  D × 13 × 4).
    public let audio: BackboneTrunk
    private let heads: DSOLHeads
    private enum Trunks {
        case fp32(vision: ResNet18S5, audio: ResNet18S5)
        /// f(v) is dequantised into `fv` for the fp32 heads.
        case int8(vision: QuantizedResNet18S5, audio: QuantizedResNet18S5, fv: FloatBuffer)
    }
    private let trunks: Trunks

    public var classes: [String] { metadata.classes }
    /// `fp32` or `int8`.
    public var precision: ModelPrecision { metadata.precision }
    /// The int8 kernel implementation the trunks run on (reference, avx2, avx512vnni, neon, neondot); nil for fp32.
    public let int8Kernel: String?
    /// Floats `forward` expects for the image: 3 × imageSize × imageSize (CHW).
    public var imageCount: Int { 3 * metadata.imageSize * metadata.imageSize }
    /// Floats `forward` expects for the audio: frames × melBands (time-major log-mel).
    public var audioCount: Int { metadata.audio.frames * metadata.audio.melBands }

    /// Every tensor a file with this metadata must hold, with FORMAT.md's shapes (by `precision`).
    public static func tensorSpecs(for m: ModelMetadata) -> [TensorSpec] {
        let heads = DSOLHeads.tensorSpecs(featureDim: m.featureDim, embedDim: m.embedDim, numClasses: m.numClasses)
        if m.precision == .int8 {
            return QuantizedResNet18S5.tensorSpecs(prefix: "vision", inChannels: 3, width: m.width)
                + QuantizedResNet18S5.tensorSpecs(prefix: "audio", inChannels: 1, width: m.width) + heads
        }
        return ResNet18S5.tensorSpecs(prefix: "vision", inChannels: 3, width: m.width)
            + ResNet18S5.tensorSpecs(prefix: "audio", inChannels: 1, width: m.width) + heads
    }

    /// Loads and validates `path` (throws `ModelFileError` naming the offending tensor or key), fp32 or
    /// int8 by its `precision` metadata. Both trunks split their layers over one pool of `threads` threads
    /// (the caller's and `threads` − 1 workers); the heads are too small to gain from threads.
    /// `verifyChecksum: false` skips hashing the data section (faster start; every other check still runs).
    public init(path: String, threads: Int = 1, verifyChecksum: Bool = true) throws {
        let file = try SafeTensorsFile(path: path)
        let meta = try ModelMetadata(file.metadata)
        if verifyChecksum { try file.verifyChecksum() }
        if meta.precision == .int8, let stem = file.info("vision.conv1.weight"), stem.dtype != .i8 {
            throw ModelFileError.badMetadata(key: "precision", reason: "says int8 but vision.conv1.weight is \(stem.dtype.rawValue): not a quantised file")
        }
        try file.validate(against: Self.tensorSpecs(for: meta))
        metadata = meta
        if meta.precision == .int8 {
            let kernel: String
            do { kernel = try Int8Kernels.activate() } catch {
                throw ModelFileError.badMetadata(key: "precision", reason: "int8 model but \(error)")
            }
            int8Kernel = kernel
            let v = try QuantizedResNet18S5(prefix: "vision", inChannels: 3, width: meta.width, inputHeight: meta.imageSize,
                                            inputWidth: meta.imageSize, weights: file)
            let a = try QuantizedResNet18S5(prefix: "audio", inChannels: 1, width: meta.width, inputHeight: meta.audio.frames,
                                            inputWidth: meta.audio.melBands, weights: file)
            trunks = .int8(vision: v, audio: a, fv: FloatBuffer(count: v.output.count))
            vision = v
            audio = a
            heads = try DSOLHeads(pixels: v.output.pixels, featureDim: meta.featureDim, embedDim: meta.embedDim,
                                  numClasses: meta.numClasses, weights: file)
        } else {
            int8Kernel = nil
            let v = try ResNet18S5(prefix: "vision", inChannels: 3, width: meta.width,
                                   inputHeight: meta.imageSize, inputWidth: meta.imageSize, weights: file)
            let a = try ResNet18S5(prefix: "audio", inChannels: 1, width: meta.width,
                                   inputHeight: meta.audio.frames, inputWidth: meta.audio.melBands, weights: file)
            trunks = .fp32(vision: v, audio: a)
            vision = v
            audio = a
            heads = try DSOLHeads(pixels: v.output.pixels, featureDim: meta.featureDim, embedDim: meta.embedDim,
                                  numClasses: meta.numClasses, weights: file)
        }
        setThreads(threads)
        file.dropResidentPages()
    }

    /// Threads the trunks split their layers over (not per frame: this starts threads).
    public func setThreads(_ n: Int) {
        // One pool for both trunks: its workers stay warm from one network to the next.
        let pool = n > 1 ? WorkerPool(parts: n) : nil
        vision.use(pool: pool)
        audio.use(pool: pool)
    }

    /// The fp32 trunks, for calibration (nil for an int8 model).
    public var fp32Trunks: (vision: ResNet18S5, audio: ResNet18S5)? {
        if case .fp32(let v, let a) = trunks { return (v, a) }
        return nil
    }

    /// Runs both trunks and all heads. `image`: ImageNet-normalised CHW 3 × imageSize × imageSize
    /// (see `ImagePreprocessor`); `audio`: frames × melBands log-mel window (time-major).
    public func forward(image: UnsafeBufferPointer<Float>, audio audioWindow: UnsafeBufferPointer<Float>) -> DSOLOutput {
        precondition(image.count == imageCount, "image must be \(imageCount) floats, got \(image.count)")
        precondition(audioWindow.count == audioCount, "audio must be \(audioCount) floats, got \(audioWindow.count)")
        switch trunks {
        case .fp32(let v, let a):
            let fv = v.forward(chw: image)
            let am = a.forward(chw: audioWindow)
            heads.forward(fv: fv, audioMap: am)
        case .int8(let v, let a, let fv):
            v.forward(chw: image)
            v.dequantizeOutput(into: fv.pointer)
            a.forward(chw: audioWindow)
            a.globalMaxPoolDequantized(into: heads.ga.pointer)
            heads.forwardFromPooledAudio(fv: fvTensor)
        }
        return output
    }

    /// Reruns only the heads on the trunks' latest outputs (int8: dequantisation and audio pooling
    /// included), for benchmarks.
    public func runHeads() {
        switch trunks {
        case .fp32(let v, let a):
            heads.forward(fv: v.output, audioMap: a.output)
        case .int8(let v, let a, let fv):
            v.dequantizeOutput(into: fv.pointer)
            a.globalMaxPoolDequantized(into: heads.ga.pointer)
            heads.forwardFromPooledAudio(fv: fvTensor)
        }
    }

    /// f(v) as floats (the trunk's output for fp32, the dequantised codes for int8).
    private var fvTensor: Tensor {
        switch trunks {
        case .fp32(let v, _): return v.output
        case .int8(let v, _, let fv):
            return Tensor(data: fv.pointer, height: v.output.height, width: v.output.width, channels: v.output.channels)
        }
    }

    /// Array convenience for `forward` (the arrays are only read).
    public func forward(image: [Float], audio audioWindow: [Float]) -> DSOLOutput {
        image.withUnsafeBufferPointer { i in audioWindow.withUnsafeBufferPointer { a in forward(image: i, audio: a) } }
    }

    /// Results of the latest `forward`.
    public var output: DSOLOutput {
        func view(_ b: FloatBuffer) -> UnsafeBufferPointer<Float> { UnsafeBufferPointer(b.buffer) }
        return DSOLOutput(
            classes: metadata.classes, mapHeight: fvTensor.height, mapWidth: fvTensor.width,
            featureDim: metadata.featureDim, fv: fvTensor.readOnly, ga: view(heads.ga), l: view(heads.l),
            matchScore: heads.matchScore, s: view(heads.s), classMaps: view(heads.classMaps), pA: view(heads.pA),
            pV: view(heads.pV), audioLogits: view(heads.audioLogits), visionLogits: view(heads.visionLogits))
    }

    /// Base addresses of every buffer the model owns (tests check they never change).
    public var bufferAddresses: [UnsafeMutableRawPointer] {
        var extra = [FloatBuffer]()
        if case .int8(_, _, let fv) = trunks { extra.append(fv) }
        return vision.bufferAddresses + audio.bufferAddresses
            + (extra + [heads.vHidden, heads.v, heads.aHidden, heads.a, heads.ga, heads.pooledV, heads.l, heads.mPixelMajor,
               heads.s, heads.classMaps, heads.audioLogits, heads.visionLogits, heads.pA, heads.pV])
            .map { UnsafeMutableRawPointer($0.pointer) }
    }
}
