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

/// A DSOL model loaded from a fp32 model file (Models/FORMAT.md) and ready to run.
///
/// Loading validates the whole file, repacks the weights and plans every buffer; `forward` then
/// allocates nothing. One instance must not run `forward` from two threads at once.
public final class DSOLModel {
    public let metadata: ModelMetadata
    /// The vision trunk (3 × imageSize²  →  D × 14 × 14); usable on its own, e.g. for benchmarks.
    public let vision: ResNet18S5
    /// The audio trunk (1 × frames × melBands  →  D × 13 × 4).
    public let audio: ResNet18S5
    private let heads: DSOLHeads

    public var classes: [String] { metadata.classes }
    /// Floats `forward` expects for the image: 3 × imageSize × imageSize (CHW).
    public var imageCount: Int { 3 * metadata.imageSize * metadata.imageSize }
    /// Floats `forward` expects for the audio: frames × melBands (time-major log-mel).
    public var audioCount: Int { metadata.audio.frames * metadata.audio.melBands }

    /// Every tensor a file with this metadata must hold, with FORMAT.md's shapes.
    public static func tensorSpecs(for m: ModelMetadata) -> [TensorSpec] {
        ResNet18S5.tensorSpecs(prefix: "vision", inChannels: 3, width: m.width)
            + ResNet18S5.tensorSpecs(prefix: "audio", inChannels: 1, width: m.width)
            + DSOLHeads.tensorSpecs(featureDim: m.featureDim, embedDim: m.embedDim, numClasses: m.numClasses)
    }

    /// Loads and validates `path` (throws `ModelFileError` naming the offending tensor or key) and
    /// sets OpenBLAS to `threads` threads (process-wide). `verifyChecksum: false` skips hashing the
    /// data section (faster start; every other check still runs).
    public init(path: String, threads: Int = 1, verifyChecksum: Bool = true) throws {
        BLASThreads.set(threads)
        let file = try SafeTensorsFile(path: path)
        let meta = try ModelMetadata(file.metadata)
        guard meta.precision == "fp32" else {
            throw ModelFileError.badMetadata(key: "precision", reason: "'\(meta.precision)' model; this engine runs fp32 files")
        }
        if verifyChecksum { try file.verifyChecksum() }
        try file.validate(against: Self.tensorSpecs(for: meta))
        metadata = meta
        vision = try ResNet18S5(prefix: "vision", inChannels: 3, width: meta.width,
                                inputHeight: meta.imageSize, inputWidth: meta.imageSize, weights: file)
        audio = try ResNet18S5(prefix: "audio", inChannels: 1, width: meta.width,
                               inputHeight: meta.audio.frames, inputWidth: meta.audio.melBands, weights: file)
        heads = try DSOLHeads(pixels: vision.output.pixels, featureDim: meta.featureDim, embedDim: meta.embedDim,
                              numClasses: meta.numClasses, weights: file)
    }

    /// Runs both trunks and all heads. `image`: ImageNet-normalised CHW 3 × imageSize × imageSize
    /// (see `ImagePreprocessor`); `audio`: frames × melBands log-mel window (time-major).
    public func forward(image: UnsafeBufferPointer<Float>, audio audioWindow: UnsafeBufferPointer<Float>) -> DSOLOutput {
        precondition(image.count == imageCount, "image must be \(imageCount) floats, got \(image.count)")
        precondition(audioWindow.count == audioCount, "audio must be \(audioCount) floats, got \(audioWindow.count)")
        let fv = vision.forward(chw: image)
        let am = audio.forward(chw: audioWindow)
        heads.forward(fv: fv, audioMap: am)
        return output
    }

    /// Array convenience for `forward` (the arrays are only read).
    public func forward(image: [Float], audio audioWindow: [Float]) -> DSOLOutput {
        image.withUnsafeBufferPointer { i in audioWindow.withUnsafeBufferPointer { a in forward(image: i, audio: a) } }
    }

    /// Results of the latest `forward`.
    public var output: DSOLOutput {
        func view(_ b: FloatBuffer) -> UnsafeBufferPointer<Float> { UnsafeBufferPointer(b.buffer) }
        return DSOLOutput(
            classes: metadata.classes, mapHeight: vision.output.height, mapWidth: vision.output.width,
            featureDim: metadata.featureDim, fv: vision.output.readOnly, ga: view(heads.ga), l: view(heads.l),
            matchScore: heads.matchScore, s: view(heads.s), classMaps: view(heads.classMaps), pA: view(heads.pA),
            pV: view(heads.pV), audioLogits: view(heads.audioLogits), visionLogits: view(heads.visionLogits))
    }

    /// Base addresses of every buffer the model owns (tests check they never change).
    public var bufferAddresses: [UnsafeMutableRawPointer] {
        vision.bufferAddresses + audio.bufferAddresses
            + [heads.vHidden, heads.v, heads.aHidden, heads.a, heads.ga, heads.pooledV, heads.l, heads.mPixelMajor,
               heads.s, heads.classMaps, heads.audioLogits, heads.visionLogits, heads.pA, heads.pV]
            .map { UnsafeMutableRawPointer($0.pointer) }
    }
}
