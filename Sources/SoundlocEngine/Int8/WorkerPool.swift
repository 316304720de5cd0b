import Dispatch
import Foundation

/// A fixed set of threads that run one job in `parts` pieces (piece 0 on the caller) and return when
/// all are done. The job is installed once, so running it allocates nothing.
final class WorkerPool {
    let parts: Int
    private final class Shared: @unchecked Sendable {  // unchecked: work/stop are written before the go semaphores are signalled, which order them for the workers
        var work: ((Int) -> Void)?
        var stop = false
        let go: [DispatchSemaphore]
        let done = DispatchSemaphore(value: 0)
        init(workers: Int) { go = (0..<workers).map { _ in DispatchSemaphore(value: 0) } }
    }
    private let shared: Shared

    init(parts: Int) {
        self.parts = max(1, parts)
        shared = Shared(workers: self.parts - 1)
        for i in 0..<(self.parts - 1) {
            let s = shared
            let t = Thread {
                while true {
                    s.go[i].wait()
                    if s.stop { return }
                    s.work?(i + 1)
                    s.done.signal()
                }
            }
            t.name = "soundloc-int8-\(i + 1)"
            t.start()
        }
    }

    /// Installs the job (called with the piece index); must not capture the pool's owner strongly.
    func setWork(_ work: @escaping (Int) -> Void) { shared.work = work }

    /// Runs the job's pieces and waits for them.
    func run() {
        // Index loops: iterating an array unspecialised (debug builds) allocates a frame per element.
        let workers = parts - 1
        for i in 0..<workers { shared.go[i].signal() }
        shared.work?(0)
        for _ in 0..<workers { shared.done.wait() }
    }

    /// Ends the threads; the pool is unusable afterwards.
    func shutdown() {
        shared.stop = true
        for g in shared.go { g.signal() }
    }

    deinit { shutdown() }
}
