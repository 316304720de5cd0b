#!/usr/bin/env bash
# Bit-exactness of the int8 kernels on every instruction set this machine can run or emulate:
#   native (host gcc): reference, avx2 and avx512vnni (whatever the CPU supports)
#   aarch64, cross-built statically (gcc, and clang as SwiftPM uses it when present), run under qemu-user:
#     -cpu cortex-a72 (no dot product) forcing neon, -cpu cortex-a76 (dot product) forcing neondot,
#     and neondot forced on cortex-a72, which must be refused.
# Needs gcc-aarch64-linux-gnu and qemu-user-static (Tools/setup.sh --test). Exit 0: all passed; 1: a test failed;
# 3: a tool is missing.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
src=("$root"/Sources/CSoundlocKernels/*.c "$root/Tools/kernels/test_kernels.c")
inc=(-I"$root/Sources/CSoundlocKernels/include")
out="$(mktemp -d "${TMPDIR:-/tmp}/soundloc-kernels.XXXXXX")"
trap 'rm -rf "$out"' EXIT

for tool in gcc aarch64-linux-gnu-gcc qemu-aarch64-static; do
  command -v "$tool" >/dev/null || { echo "test_arm: '$tool' not found: run Tools/setup.sh --test" >&2; exit 3; }
done

runs=0
# run LABEL EXPECTED_ACTIVE_OR_REFUSED -- COMMAND...: the driver's last line must read "N passed, 0 failed".
run() {
  local label="$1"; shift
  local log="$out/log"
  if ! "$@" >"$log" 2>&1; then
    echo "test_arm: FAILED: $label" >&2; tail -25 "$log" >&2; exit 1
  fi
  local last; last="$(tail -1 "$log")"
  [[ "$last" =~ ^[0-9]+\ passed,\ 0\ failed$ ]] || { echo "test_arm: FAILED: $label: $last" >&2; exit 1; }
  echo "test_arm: $label: $last"
  runs=$((runs + 1))
}

gcc -O2 -std=gnu11 -Wall -Wextra "${inc[@]}" "${src[@]}" -lm -o "$out/native"
run "native (auto)" "$out/native"
run "native forced reference" env SOUNDLOC_KERNELS=reference "$out/native" --expect-active reference

# A76 model where this qemu has it, else 'max' (which has the dot product too).
dot_cpu=cortex-a76
cpus="$(qemu-aarch64-static -cpu help 2>&1 || true)"
grep -qw cortex-a76 <<<"$cpus" || dot_cpu=max

aarch64_tests() {  # $1: label, $2: binary
  run "$1 cortex-a72 neon" env SOUNDLOC_KERNELS=neon qemu-aarch64-static -cpu cortex-a72 "$2" --expect-active neon
  run "$1 $dot_cpu neondot" env SOUNDLOC_KERNELS=neondot qemu-aarch64-static -cpu "$dot_cpu" "$2" --expect-active neondot
  run "$1 cortex-a72 refuses neondot" env SOUNDLOC_KERNELS=neondot qemu-aarch64-static -cpu cortex-a72 "$2" --expect-refused
}

aarch64-linux-gnu-gcc -O2 -std=gnu11 -Wall -Wextra -static "${inc[@]}" "${src[@]}" -lm -o "$out/arm-gcc"
aarch64_tests "aarch64 gcc" "$out/arm-gcc"

# clang compiles the package on the boards; its handling of the NEON intrinsics and target attributes differs.
if command -v clang >/dev/null; then
  mkdir -p "$out/obj"
  for f in "${src[@]}"; do
    clang --target=aarch64-linux-gnu --sysroot=/usr/aarch64-linux-gnu -isystem /usr/aarch64-linux-gnu/include \
      -O2 -std=gnu11 -Wall -Wextra "${inc[@]}" -c "$f" -o "$out/obj/$(basename "$f" .c).o"
  done
  aarch64-linux-gnu-gcc -static "$out"/obj/*.o -lm -o "$out/arm-clang"
  aarch64_tests "aarch64 clang" "$out/arm-clang"
fi
echo "test_arm: all $runs runs passed"
