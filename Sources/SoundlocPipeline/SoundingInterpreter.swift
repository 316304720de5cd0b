import Foundation
import SoundlocOutput

/// One class the appliance reports as sounding in a frame.
public struct SoundingObject: Equatable, Sendable {
    public var classIndex: Int
    public var className: String
    /// Audio probability of the class times the peak of (class map × sounding-area map), in [0, 1].
    public var score: Double
    /// Peak of the class map, normalised image coordinates (x, y) of the cell centre.
    public var peak: (x: Double, y: Double)
    /// Box around the cells whose (class map × sounding-area map) reaches half its peak, normalised (x, y, width, height).
    public var box: (x: Double, y: Double, width: Double, height: Double)

    public static func == (a: SoundingObject, b: SoundingObject) -> Bool {
        a.classIndex == b.classIndex && a.className == b.className && a.score == b.score
            && a.peak == b.peak && a.box == b.box
    }
}

/// A class the audio network hears that is not reported as sounding, and the first test it failed.
public struct UnlocatedClass: Equatable, Sendable {
    public var classIndex: Int
    public var className: String
    public var reason: UnlocatedReason
    /// What failed the test (a map value in 0…1) and what it had to reach.
    public var value: Double
    public var threshold: Double
}

/// What one forward pass means for the people listening: which classes sound where, which are visible but silent.
public struct FrameInterpretation: Equatable, Sendable {
    public var sounding: [SoundingObject]
    public var silentVisible: [String]
    /// Classes heard (audio probability at least `minAudioProbability`) but not in `sounding`, strongest first;
    /// empty in silence.
    public var unlocated: [UnlocatedClass] = []
    /// True when the audio gate judged the window silent (nothing may then be reported as sounding).
    public var silence: Bool
    /// Peak of the sounding-area map l.
    public var soundingAreaPeak: Double
}

/// Turns the DSOL heads' maps into reports. The maps alone do not go dark in silence or for off-screen
/// sound, so two gates decide first: the window's loudness and the peak of the sounding-area map.
public struct SoundingInterpreter: Sendable {
    /// A class is sounding only if the audio network gives it at least this probability.
    public var minAudioProbability = 0.1
    /// ... and its class map wins (per-pixel probability) at least this much where l peaks for it.
    public var minClassPeak = 0.5
    /// The sounding-area map l must reach this somewhere, or nothing in view is sounding.
    public var minSoundingPeak = 0.5
    /// A class is visible where its visibility map (softmax over classes of 3·m) reaches this.
    public var minVisiblePeak = 0.5

    public init(minSoundingPeak: Double = 0.5) {
        self.minSoundingPeak = minSoundingPeak
    }

    /// - Parameters:
    ///   - s: K × H × W class-aware maps s^k = m^k ⊙ l (before the softmax).
    ///   - l: H × W sounding-area map.
    ///   - classMaps: K × H × W per-pixel softmax over classes of 3·s.
    ///   - audioProbabilities: K audio class probabilities p_a.
    ///   - silence: the loudness gate's verdict for this window.
    public func interpret(classes: [String], height: Int, width: Int, s: UnsafeBufferPointer<Float>,
                          l: UnsafeBufferPointer<Float>, classMaps: UnsafeBufferPointer<Float>,
                          audioProbabilities: UnsafeBufferPointer<Float>, silence: Bool) -> FrameInterpretation {
        let k = classes.count, cells = height * width
        precondition(s.count == k * cells && classMaps.count == k * cells && l.count == cells && audioProbabilities.count == k)
        let lPeak = Double(l.max() ?? 0)
        let anySounding = !silence && lPeak >= minSoundingPeak

        // Visibility ignores l: recover m = s / l (l is a sigmoid, never zero) and softmax it over classes.
        var visiblePeak = [Double](repeating: 0, count: k)
        var logits = [Double](repeating: 0, count: k)
        for cell in 0..<cells {
            let area = max(Double(l[cell]), 1e-6)
            for c in 0..<k { logits[c] = 3 * Double(s[c * cells + cell]) / area }
            let top = logits.max()!
            var total = 0.0
            for c in 0..<k { logits[c] = exp(logits[c] - top); total += logits[c] }
            for c in 0..<k { visiblePeak[c] = max(visiblePeak[c], logits[c] / total) }
        }

        // Evidence that class k sounds at a cell: it wins the cell (class map) and the cell sounds (l).
        // Either alone misleads: the per-pixel softmax normalises l away, and l does not name classes.
        var sounding: [SoundingObject] = []
        var unlocated: [UnlocatedClass] = []
        var evidence = [Float](repeating: 0, count: cells)
        for c in 0..<k where !silence && Double(audioProbabilities[c]) >= minAudioProbability {
            func unplaced(_ reason: UnlocatedReason, _ value: Double, _ threshold: Double) {
                unlocated.append(UnlocatedClass(classIndex: c, className: classes[c], reason: reason, value: value, threshold: threshold))
            }
            guard anySounding else {
                unplaced(.noSoundingArea, lPeak, minSoundingPeak)
                continue
            }
            for cell in 0..<cells { evidence[cell] = classMaps[c * cells + cell] * l[cell] }
            guard let peakIndex = evidence.indices.max(by: { evidence[$0] < evidence[$1] }) else { continue }
            let classPeak = Double(classMaps[c * cells + peakIndex]), areaThere = Double(l[peakIndex])
            guard classPeak >= minClassPeak else {
                if visiblePeak[c] < minVisiblePeak { unplaced(.notInView, visiblePeak[c], minVisiblePeak) }
                else { unplaced(.weakClassMap, classPeak, minClassPeak) }
                continue
            }
            guard areaThere >= minSoundingPeak else {
                unplaced(.quietWhereSeen, areaThere, minSoundingPeak)
                continue
            }
            let peakValue = evidence[peakIndex]
            var (x0, y0, x1, y1) = (width, height, -1, -1)
            for cell in 0..<cells where evidence[cell] >= 0.5 * peakValue {
                x0 = min(x0, cell % width); x1 = max(x1, cell % width)
                y0 = min(y0, cell / width); y1 = max(y1, cell / width)
            }
            sounding.append(SoundingObject(
                classIndex: c, className: classes[c],
                score: Double(audioProbabilities[c]) * Double(peakValue),
                peak: ((Double(peakIndex % width) + 0.5) / Double(width), (Double(peakIndex / width) + 0.5) / Double(height)),
                box: (Double(x0) / Double(width), Double(y0) / Double(height),
                      Double(x1 - x0 + 1) / Double(width), Double(y1 - y0 + 1) / Double(height))))
        }
        sounding.sort { $0.score > $1.score }
        unlocated.sort { audioProbabilities[$0.classIndex] > audioProbabilities[$1.classIndex] }
        let soundingSet = Set(sounding.map(\.classIndex))
        let silentVisible = (0..<k).filter { !soundingSet.contains($0) && visiblePeak[$0] >= minVisiblePeak }.map { classes[$0] }
        return FrameInterpretation(sounding: sounding, silentVisible: silentVisible, unlocated: unlocated, silence: silence,
                                   soundingAreaPeak: lPeak)
    }
}
