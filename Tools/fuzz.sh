#!/usr/bin/env bash
# Coverage-guided fuzzing of soundloc's parsers of outside input with libFuzzer and AddressSanitizer.
#
#   Tools/fuzz.sh TARGET SECONDS [LIBFUZZER OPTIONS...]   one target (wav image y4m safetensors config command watch)
#   Tools/fuzz.sh all SECONDS                             each target in turn, SECONDS each
#   Tools/fuzz.sh build                                   only build the harness
#
# The harness (Sources/soundloc-fuzz, entries in Sources/SoundlocFuzz) is built in release mode with
# -sanitize=fuzzer,address and coverage for every Swift module (and the C ones) in its own scratch folder,
# .build-fuzz (FUZZ_SCRATCH overrides it), never in the shared .build. Each run starts from the committed seeds
# (Tests/Fuzz/TARGET, read only) plus what earlier runs found (out/fuzz/TARGET/corpus), with the target's
# dictionary (Tests/Fuzz/TARGET.dict) when there is one; a crash, an ASan report, a leak, an input that runs
# longer than 10 s, needs more than 2 GB or allocates 256 MB at once stops the run and leaves the input in
# out/fuzz/TARGET/. Keep a crash as Tests/Fuzz/TARGET/crash-NAME with a test (Tests/Fuzz/README.md); replay one with
#   .build/debug/soundloc-fuzz TARGET FILE        (plain build, no sanitizer)
#   SOUNDLOC_FUZZ_TARGET=TARGET .build-fuzz/release/soundloc-fuzz FILE
# The log of each run is out/fuzz/TARGET/fuzz.log; its last lines give executions and exec/s.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
TARGETS=(wav image y4m safetensors config command watch)
SCRATCH=${FUZZ_SCRATCH:-.build-fuzz}

usage() { sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

build() {
    # --sanitize fuzzer links libFuzzer's main (and keeps SwiftPM from renaming the executable's entry point);
    # the coverage flags instrument every module, not only the executable's.
    swift build -c release --scratch-path "$SCRATCH" --product soundloc-fuzz \
        --sanitize fuzzer --sanitize address \
        -Xswiftc -sanitize-coverage=edge,trace-cmp,inline-8bit-counters,pc-table \
        -Xswiftc -DSOUNDLOC_LIBFUZZER \
        -Xcc -fsanitize=fuzzer-no-link 2>&1 | grep -v "Cannot export local symbol" >&2
    BIN="$(swift build -c release --scratch-path "$SCRATCH" --show-bin-path)/soundloc-fuzz"
    [[ -x $BIN ]] || { echo "fuzz.sh: no harness at $BIN" >&2; exit 1; }
}

# Largest input libFuzzer makes per target: a little over the largest seed (the model files are ~32 KB).
max_len() {
    case $1 in
        safetensors) echo 40000 ;;
        watch) echo 20000 ;;
        *) echo 8192 ;;
    esac
}

run_one() {
    local target=$1 seconds=$2; shift 2
    local out="out/fuzz/$target"
    mkdir -p "$out/corpus"
    # No input of a few KB may need a single allocation of 256 MB (memory amplification is a finding too).
    local options=(-max_total_time="$seconds" -max_len="$(max_len "$target")" -timeout=10 -rss_limit_mb=2048
                   -malloc_limit_mb=256 -print_final_stats=1 -artifact_prefix="$out/")
    [[ -f Tests/Fuzz/$target.dict ]] && options+=(-dict="Tests/Fuzz/$target.dict")
    echo "fuzz.sh: $target for ${seconds}s (log: $out/fuzz.log)" >&2
    # The Swift runtime's backtracer trips over ASan; libFuzzer reports the crash itself.
    local status=0
    SOUNDLOC_FUZZ_TARGET=$target SWIFT_BACKTRACE=enable=no OPENBLAS_NUM_THREADS=1 \
        "$BIN" "${options[@]}" "$@" "$out/corpus" "Tests/Fuzz/$target" >"$out/fuzz.log" 2>&1 || status=$?
    local runs rate
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$out/fuzz.log" | grep -o '[0-9]*$' || true)
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$out/fuzz.log" | grep -o '[0-9]*$' || true)
    if ((status == 0)); then
        echo "fuzz.sh: $target: ${runs:-?} executions, ${rate:-?} exec/s, no finding; corpus $(ls "$out/corpus" | wc -l) files" >&2
    else
        echo "fuzz.sh: $target: FINDING after ${runs:-?} executions (exit $status); input and report in $out/:" >&2
        grep -E 'ERROR|Fatal error|SUMMARY|Test unit written' "$out/fuzz.log" | head -8 >&2
    fi
    return "$status"
}

[[ $# -ge 1 ]] || usage
case $1 in
    build) build; echo "$BIN" ;;
    all)
        [[ $# -eq 2 ]] || usage
        build
        failed=0
        for target in "${TARGETS[@]}"; do run_one "$target" "$2" || failed=1; done
        exit "$failed"
        ;;
    *)
        [[ $# -ge 2 ]] || usage
        [[ " ${TARGETS[*]} " == *" $1 "* ]] || { echo "fuzz.sh: unknown target $1 (${TARGETS[*]})" >&2; exit 2; }
        build
        run_one "$@"
        ;;
esac
