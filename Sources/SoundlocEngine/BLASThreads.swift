import COpenBLAS

/// OpenBLAS runs single-threaded in this process: the engine splits each layer over its own `WorkerPool` and every
/// piece calls sgemm on its own thread. (Debian's pthread OpenBLAS would otherwise start a thread per core inside
/// every GEMM, competing with the pipeline's threads and the pool's.)
enum BLASThreads {
    /// Sets OpenBLAS to one thread, once per process; every layer that calls BLAS evaluates it at init.
    static let pinnedToOne: Void = openblas_set_num_threads(1)

    /// The count OpenBLAS uses now (tests).
    static var current: Int { Int(openblas_get_num_threads()) }
}
