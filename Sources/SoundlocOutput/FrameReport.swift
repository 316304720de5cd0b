import Foundation

/// Why a class the audio network hears is not reported as sounding (`unlocated` in FRAME messages), in the order the
/// interpreter tests them.
public enum UnlocatedReason: String, Codable, Sendable, CaseIterable {
    /// The sounding-area map l peaks below `min_sounding_peak` everywhere: the sound is not placed in the picture.
    case noSoundingArea = "no_sounding_area"
    /// The class's visibility (the softmax over classes of the object maps) stays below its threshold: not in view.
    case notInView = "not_in_view"
    /// Visible, but its class map does not win the cell where it sounds most.
    case weakClassMap = "weak_class_map"
    /// Its class map wins a cell, but l there is below `min_sounding_peak`: seen, not sounding where it is.
    case quietWhereSeen = "quiet_where_seen"
}

/// One processed frame's results, as the pipeline produces them; the server turns it into FRAME lines.
public struct FrameReport: Sendable, Equatable {
    /// Time spent in one pipeline stage.
    public struct StageLatency: Sendable, Equatable {
        public var stage: String
        public var milliseconds: Double
        public init(_ stage: String, milliseconds: Double) {
            self.stage = stage
            self.milliseconds = milliseconds
        }
    }

    /// A class judged visible and sounding; coordinates are normalised to the image (0…1, origin top left).
    public struct Sounding: Sendable, Equatable {
        public var classIndex: Int
        public var score: Float
        public var peakX: Float, peakY: Float
        public var boxX: Float, boxY: Float, boxWidth: Float, boxHeight: Float
        public init(classIndex: Int, score: Float, peak: (x: Float, y: Float),
                    box: (x: Float, y: Float, width: Float, height: Float)) {
            self.classIndex = classIndex
            self.score = score
            (peakX, peakY) = (peak.x, peak.y)
            (boxX, boxY, boxWidth, boxHeight) = (box.x, box.y, box.width, box.height)
        }
    }

    /// A class the audio network hears (probability at least the interpreter's minimum) that is not in `sounding`,
    /// and the test it failed, with the value that failed it and the threshold.
    public struct Unlocated: Sendable, Equatable {
        public var classIndex: Int
        public var reason: UnlocatedReason
        public var value: Float
        public var threshold: Float
        public init(classIndex: Int, reason: UnlocatedReason, value: Float, threshold: Float) {
            self.classIndex = classIndex
            self.reason = reason
            self.value = value
            self.threshold = threshold
        }
    }

    /// The model's maps, row-major 14×14 each.
    public struct Maps: Sendable, Equatable {
        /// K class-aware maps back to back (class-major, K·196 values) in the banner's class order.
        public var classMaps: [Float]
        /// The sounding-area map l (196 values).
        public var soundingArea: [Float]
        public init(classMaps: [Float], soundingArea: [Float]) {
            self.classMaps = classMaps
            self.soundingArea = soundingArea
        }
    }

    public var sequence: UInt64
    /// CLOCK_MONOTONIC nanoseconds at which the camera frame was captured.
    public var captureNanos: UInt64
    public var latencies: [StageLatency]
    /// Audio class distribution p_a (K values, banner class order).
    public var audioDistribution: [Float]
    public var sounding: [Sounding]
    /// Indices of classes that are visible but silent.
    public var silentVisible: [Int]
    /// The energy gate judged the audio window silent (then `sounding` is empty).
    public var silence: Bool
    /// Classes heard but not located, with why (empty in silence: nothing is heard then).
    public var unlocated: [Unlocated]
    /// Frames the pipeline skipped since it started, because it fell behind.
    public var droppedFrames: UInt64
    /// Audio capture over-runs since start.
    public var overruns: UInt64
    /// Sent only to clients that asked for maps; nil when the pipeline did not produce them.
    public var maps: Maps?

    public init(sequence: UInt64, captureNanos: UInt64, latencies: [StageLatency] = [], audioDistribution: [Float],
                sounding: [Sounding] = [], silentVisible: [Int] = [], silence: Bool = false, unlocated: [Unlocated] = [],
                droppedFrames: UInt64 = 0, overruns: UInt64 = 0, maps: Maps? = nil) {
        self.sequence = sequence
        self.captureNanos = captureNanos
        self.latencies = latencies
        self.audioDistribution = audioDistribution
        self.sounding = sounding
        self.silentVisible = silentVisible
        self.silence = silence
        self.unlocated = unlocated
        self.droppedFrames = droppedFrames
        self.overruns = overruns
        self.maps = maps
    }
}
