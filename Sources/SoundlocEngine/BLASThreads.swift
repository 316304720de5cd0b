import COpenBLAS

/// OpenBLAS's worker-thread count, which is process-wide.
///
/// Debian's pthread OpenBLAS would otherwise use every core from inside each GEMM, competing with
/// the pipeline's own threads; the engine sets it explicitly (default 1) when a model is loaded.
public enum BLASThreads {
    /// Sets how many threads OpenBLAS may use (at least 1).
    public static func set(_ count: Int) {
        openblas_set_num_threads(Int32(max(1, count)))
    }

    /// The count OpenBLAS currently uses.
    public static var current: Int { Int(openblas_get_num_threads()) }
}
