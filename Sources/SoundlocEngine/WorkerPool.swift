import Dispatch
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Threads that run one job at a time in `parts` pieces (piece 0 on the caller) and return when all are done.
/// One pool serves every network of a model, fp32 or int8 (`DSOLModel` passes it to both trunks). Running a stored job allocates
/// nothing. Between jobs a worker yields for a while before it sleeps: a frame's layers follow each other within
/// microseconds, and a semaphore wake-up per layer would cost more than the smaller layers take.
public final class WorkerPool: @unchecked Sendable {  // unchecked: `job` is written before `generation` is published and read after it is seen
    public let parts: Int

    /// One worker's sleeping flag and its wake-up.
    private final class Slot: Sendable {
        let sleeping = Atomic<Bool>(false)
        let wake = DispatchSemaphore(value: 0)
    }
    private final class Shared: @unchecked Sendable {  // unchecked: as the pool's `job`
        var job: ((Int) -> Void)?
        let generation = Atomic<Int>(0)
        let pending = Atomic<Int>(0)
        let stop = Atomic<Bool>(false)
        let slots: [Slot]
        init(workers: Int) { slots = (0..<workers).map { _ in Slot() } }
    }
    private let shared: Shared

    /// How long a worker keeps yielding for the next job before it sleeps: longer than the serial steps between a
    /// frame's jobs (pooling, input quantisation), short against the gap between frames (idle yielding costs CPU).
    static let spinNanoseconds: UInt64 = 200_000

    public init(parts: Int) {
        self.parts = max(1, parts)
        shared = Shared(workers: self.parts - 1)
        for i in 0..<(self.parts - 1) {
            let s = shared
            let t = Thread { Self.workerLoop(s, index: i) }
            t.name = "soundloc-engine-\(i + 1)"
            t.start()
        }
    }

    private static func workerLoop(_ s: Shared, index i: Int) {
        let slot = s.slots[i]
        var seen = 0
        while true {
            var spinStart = DispatchTime.now().uptimeNanoseconds
            while s.generation.load(ordering: .acquiring) == seen, !s.stop.load(ordering: .relaxed) {
                if DispatchTime.now().uptimeNanoseconds - spinStart < spinNanoseconds {
                    sched_yield()
                    continue
                }
                // Announce the sleep, then look again: the runner either sees the flag and signals, or this thread
                // sees the new job (both sides use sequentially consistent operations, so one of them must).
                slot.sleeping.store(true, ordering: .sequentiallyConsistent)
                if s.generation.load(ordering: .sequentiallyConsistent) != seen || s.stop.load(ordering: .sequentiallyConsistent) {
                    if !slot.sleeping.exchange(false, ordering: .sequentiallyConsistent) { slot.wake.wait() }  // the runner's signal
                } else {
                    slot.wake.wait()
                }
                spinStart = DispatchTime.now().uptimeNanoseconds
            }
            if s.stop.load(ordering: .acquiring) { return }
            seen = s.generation.load(ordering: .acquiring)
            s.job?(i + 1)
            s.pending.subtract(1, ordering: .releasing)
        }
    }

    /// Runs `job`'s pieces (`job(0)` on this thread) and waits for them. Jobs must not overlap.
    public func run(_ job: @escaping (Int) -> Void) {
        let workers = parts - 1
        guard workers > 0 else { return job(0) }
        shared.job = job
        shared.pending.store(workers, ordering: .relaxed)
        shared.generation.add(1, ordering: .sequentiallyConsistent)
        // Index loop: iterating an array unspecialised (debug builds) allocates a frame per element.
        for i in 0..<workers where shared.slots[i].sleeping.exchange(false, ordering: .sequentiallyConsistent) {
            shared.slots[i].wake.signal()
        }
        job(0)
        while shared.pending.load(ordering: .acquiring) > 0 { sched_yield() }
    }

    /// Ends the threads; the pool is unusable afterwards.
    public func shutdown() {
        shared.stop.store(true, ordering: .sequentiallyConsistent)
        for slot in shared.slots where slot.sleeping.exchange(false, ordering: .sequentiallyConsistent) { slot.wake.signal() }
    }

    deinit { shutdown() }

    /// Piece `part` of `parts` of `0..<count`, cut in multiples of `quantum` (later pieces may be short or empty).
    public static func share(_ count: Int, part: Int, of parts: Int, quantum: Int = 1) -> Range<Int> {
        let chunk = ((count + parts - 1) / parts + quantum - 1) / quantum * quantum
        return min(count, part * chunk)..<min(count, (part + 1) * chunk)
    }
}

/// Runs a trunk's scheduled steps, each in phases whose pieces are split over a `WorkerPool` (or run on this thread
/// when there is none). What a piece does is the trunk's `runPiece(step, phase, part, parts)`; the pool's job is
/// made once, so running a step allocates nothing.
final class StepScheduler {
    private(set) var pool: WorkerPool?
    /// Whether `pool` was made by `setThreads` (and ends with this scheduler) rather than passed in by `use(pool:)`.
    private var ownsPool = false
    private var current = 0, currentPhase = 0
    private let runPiece: (_ step: Int, _ phase: Int, _ part: Int, _ parts: Int) -> Void
    private lazy var job: (Int) -> Void = { [unowned self] part in
        self.runPiece(self.current, self.currentPhase, part, self.threads)
    }

    /// `runPiece` must not hold its owner strongly (the owner holds this scheduler).
    init(runPiece: @escaping (_ step: Int, _ phase: Int, _ part: Int, _ parts: Int) -> Void) {
        self.runPiece = runPiece
    }

    deinit { if ownsPool { pool?.shutdown() } }

    /// Pieces per phase: the caller's thread plus the pool's workers.
    var threads: Int { pool?.parts ?? 1 }

    /// Replaces the workers with a pool of this scheduler's own (not per frame: this starts threads).
    func setThreads(_ n: Int) {
        use(pool: n > 1 ? WorkerPool(parts: n) : nil)
        ownsPool = pool != nil
    }

    /// Splits the work over `pool` (shared with other networks; nil: this thread only). Not while running.
    func use(pool newPool: WorkerPool?) {
        if ownsPool { pool?.shutdown() }
        pool = newPool
        ownsPool = false
    }

    /// Runs step `step`'s `phases` phases in order, each split over the pool.
    @inline(__always)
    func run(step: Int, phases: Int) {
        guard let pool else {
            for phase in 0..<phases { runPiece(step, phase, 0, 1) }
            return
        }
        current = step
        for phase in 0..<phases {
            currentPhase = phase
            pool.run(job)
        }
    }
}
