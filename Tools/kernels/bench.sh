#!/usr/bin/env bash
# Builds Tools/kernels/bench_kernels.c with the kernel sources (gcc -O2, as a package build would not need flags)
# and prints single-thread GOPS of each q8 GEMM implementation beside OpenBLAS sgemm. Needs libopenblas-dev.
#   Tools/kernels/bench.sh [IMPL ...]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="${TMPDIR:-/tmp}/soundloc-kernels-bench"
mkdir -p "$out"
CC="${CC:-gcc}"
"$CC" -O2 -std=gnu11 -I"$root/Sources/CSoundlocKernels/include" $(pkg-config --cflags openblas) \
  "$root"/Sources/CSoundlocKernels/*.c "$root/Tools/kernels/bench_kernels.c" \
  $(pkg-config --libs openblas) -lm -o "$out/bench_kernels"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
OPENBLAS_NUM_THREADS=1 "$out/bench_kernels" "$@"
