import SoundlocEngine

/// The localisation head, the classifiers and the class-aware head (SPEC §2) over precomputed
/// trunk outputs, with every buffer allocated at init.
final class DSOLHeads {
    let pixels: Int
    let featureDim: Int
    let embedDim: Int
    let numClasses: Int

    private let vFC1, vFC2, aFC1, aFC2, audioClassifier, visionClassifier, dictionary: Linear
    private let scale: Float
    private let affineWeight: Float

    let vHidden, v, aHidden, a, ga, pooledV, l, mPixelMajor, s, classMaps, audioLogits, visionLogits, pA, pV: FloatBuffer
    private(set) var matchScore: Float = 0

    static func tensorSpecs(featureDim d: Int, embedDim e: Int, numClasses k: Int) -> [TensorSpec] {
        [
            TensorSpec("loc.v_fc1.weight", [e, d]), TensorSpec("loc.v_fc1.bias", [e]),
            TensorSpec("loc.v_fc2.weight", [e, e]), TensorSpec("loc.v_fc2.bias", [e]),
            TensorSpec("loc.a_fc1.weight", [e, d]), TensorSpec("loc.a_fc1.bias", [e]),
            TensorSpec("loc.a_fc2.weight", [e, e]), TensorSpec("loc.a_fc2.bias", [e]),
            TensorSpec("loc.scale", [1]),
            TensorSpec("cls.audio.weight", [k, d]), TensorSpec("cls.audio.bias", [k]),
            TensorSpec("cls.vision.weight", [k, d]), TensorSpec("cls.vision.bias", [k]),
            TensorSpec("dsol.dictionary", [k, d]),
            TensorSpec("dsol.affine", [2]),
        ]
    }

    init(pixels: Int, featureDim d: Int, embedDim e: Int, numClasses k: Int, weights: WeightSource) throws {
        self.pixels = pixels
        featureDim = d
        embedDim = e
        numClasses = k
        func linear(_ name: String, out: Int, in inFeatures: Int) throws -> Linear {
            try weights.withFloats("\(name).weight") { w in
                try weights.withFloats("\(name).bias") { b in Linear(weight: w, bias: b, outFeatures: out, inFeatures: inFeatures) }
            }
        }
        vFC1 = try linear("loc.v_fc1", out: e, in: d)
        vFC2 = try linear("loc.v_fc2", out: e, in: e)
        aFC1 = try linear("loc.a_fc1", out: e, in: d)
        aFC2 = try linear("loc.a_fc2", out: e, in: e)
        audioClassifier = try linear("cls.audio", out: k, in: d)
        visionClassifier = try linear("cls.vision", out: k, in: d)
        scale = try weights.array("loc.scale")[0]
        let affine = try weights.array("dsol.affine")
        affineWeight = affine[0]
        // m^k = w_o · (d^k · f) + b_o is a linear layer with the dictionary as weight, scaled by w_o.
        dictionary = try weights.withFloats("dsol.dictionary") { w in
            [Float](repeating: affine[1], count: k).withUnsafeBufferPointer { b in
                Linear(weight: w, bias: b, outFeatures: k, inFeatures: d)
            }
        }

        vHidden = FloatBuffer(count: pixels * e)
        v = FloatBuffer(count: pixels * e)
        aHidden = FloatBuffer(count: e)
        a = FloatBuffer(count: e)
        ga = FloatBuffer(count: d)
        pooledV = FloatBuffer(count: d)
        l = FloatBuffer(count: pixels)
        mPixelMajor = FloatBuffer(count: pixels * k)
        s = FloatBuffer(count: k * pixels)
        classMaps = FloatBuffer(count: k * pixels)
        audioLogits = FloatBuffer(count: k)
        visionLogits = FloatBuffer(count: k)
        pA = FloatBuffer(count: k)
        pV = FloatBuffer(count: k)
    }

    /// `fv` is the vision trunk's output (pixels × D), `audioMap` the audio trunk's (any H×W × D).
    func forward(fv: Tensor, audioMap: Tensor) {
        precondition(fv.pixels == pixels && fv.channels == featureDim && audioMap.channels == featureDim)
        Ops.globalMaxPool(audioMap, into: ga.pointer)
        forwardFromPooledAudio(fv: fv)
    }

    /// Like `forward(fv:audioMap:)` with g(a) already in `ga` (the int8 trunk pools on its codes).
    func forwardFromPooledAudio(fv: Tensor) {
        precondition(fv.pixels == pixels && fv.channels == featureDim)
        let p = pixels, k = numClasses, e = embedDim

        // g(a)'s embedding.
        aFC1(ga.pointer, rows: 1, into: aHidden.pointer, relu: true)
        aFC2(aHidden.pointer, rows: 1, into: a.pointer)
        Ops.l2Normalize(a.pointer, rows: 1, columns: e)

        // Per-pixel visual embedding, cosine to the audio embedding, sounding-area map l.
        vFC1(fv.data, rows: p, into: vHidden.pointer, relu: true)
        vFC2(vHidden.pointer, rows: p, into: v.pointer)
        Ops.l2Normalize(v.pointer, rows: p, columns: e)
        Ops.rowDot(v.pointer, rows: p, columns: e, vector: a.pointer, into: l.pointer)
        Ops.sigmoid(l.pointer, count: p, scale: scale)
        var peak = -Float.infinity
        for i in 0..<p { peak = max(peak, l.pointer[i]) }
        matchScore = peak

        // Classifiers.
        audioClassifier(ga.pointer, rows: 1, into: audioLogits.pointer)
        pA.pointer.update(from: audioLogits.pointer, count: k)
        Ops.softmax(pA.pointer, count: k)
        Ops.globalAveragePool(fv, into: pooledV.pointer)
        visionClassifier(pooledV.pointer, rows: 1, into: visionLogits.pointer)

        // Class-aware maps: m (pixel-major) -> s = m ⊙ l (class-major), p_v, per-pixel softmax of 3·s.
        dictionary(fv.data, rows: p, into: mPixelMajor.pointer, scale: affineWeight)
        for c in 0..<k {
            var sum: Float = 0
            let row = s.pointer + c * p
            for i in 0..<p {
                let value = mPixelMajor.pointer[i * k + c] * l.pointer[i]
                row[i] = value
                sum += value
            }
            pV.pointer[c] = sum / Float(p)
        }
        Ops.softmax(pV.pointer, count: k)
        classMaps.pointer.update(from: s.pointer, count: k * p)
        for i in 0..<p { Ops.softmax(classMaps.pointer + i, count: k, stride: p, scale: 3) }
    }
}
