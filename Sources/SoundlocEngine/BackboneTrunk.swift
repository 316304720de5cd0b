/// What benchmarks and tests need of a trunk, whatever its precision.
public protocol BackboneTrunk: AnyObject {
    /// Runs the trunk on a CHW float input (channels × height × width).
    func run(chw: UnsafeBufferPointer<Float>)
    /// Runs once more, timing each scheduled layer (allocates: for benchmarks).
    func profile() -> [(layer: String, seconds: Double)]
    /// Pointers to every buffer the trunk owns (tests check they never change).
    var bufferAddresses: [UnsafeMutableRawPointer] { get }
    /// Splits the work over `pool` (shared with other networks; nil: this thread only). Not while running.
    func use(pool: WorkerPool?)
}
