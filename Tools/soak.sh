#!/usr/bin/env bash
# Soak test: runs the pipeline on file sources in real time for MINUTES, with a socket client attached,
# and samples the process's resident memory, to show that nothing grows over a long run.
#   Tools/soak.sh MODEL MINUTES [OUTDIR]      (needs a release build: swift build -c release)
set -euo pipefail
model=${1:?usage: Tools/soak.sh MODEL MINUTES [OUTDIR]}
minutes=${2:?usage: Tools/soak.sh MODEL MINUTES [OUTDIR]}
out=${3:-$(mktemp -d)}
root=$(cd "$(dirname "$0")/.." && pwd)
binary=$root/.build/release/soundloc
[[ -x $binary ]] || { echo "soak: build first: swift build -c release" >&2; exit 2; }
mkdir -p "$out"
seconds=$((minutes * 60 + 5))
python3 - "$out" "$seconds" <<'PY'
import sys, wave, numpy as np
out, seconds = sys.argv[1], int(sys.argv[2])
sr = 16000
rng = np.random.default_rng(1)
with wave.open(f"{out}/soak.wav", "wb") as w:
    w.setnchannels(1); w.setsampwidth(2); w.setframerate(sr)
    for s in range(seconds):  # alternating tones, noise and silence, one second at a time
        t = np.arange(sr) / sr
        kind = s % 3
        y = 0.3 * np.sin(2 * np.pi * (220 + 20 * (s % 17)) * t) if kind == 0 else (0.1 * rng.standard_normal(sr) if kind == 1 else np.zeros(sr))
        w.writeframes((np.clip(y, -1, 1) * 32767).astype("<i2").tobytes())
img = (np.indices((480, 640)).sum(axis=0) % 256).astype(np.uint8)
with open(f"{out}/still.ppm", "wb") as f:
    f.write(b"P6\n640 480\n255\n" + np.stack([img, img[::-1], 255 - img], axis=-1).tobytes())
PY
sock=$out/soak.sock
"$binary" run --model "$model" --audio "$out/soak.wav" --video "$out/still.ppm" --fps 30 --socket "$sock" \
  >"$out/run.log" 2>&1 &
pid=$!
for _ in $(seq 50); do [[ -S $sock ]] && break; sleep 0.2; done
python3 "$root/Tools/soundloc_client.py" --socket "$sock" >"$out/client.log" 2>&1 &
client=$!
echo "time_s rss_kib" >"$out/rss.txt"
start=$(date +%s)
while kill -0 "$pid" 2>/dev/null; do
  rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status 2>/dev/null || true)
  [[ -n $rss ]] && echo "$(( $(date +%s) - start )) $rss" >>"$out/rss.txt"
  sleep 30
done
wait "$pid" || true
kill "$client" 2>/dev/null || true
echo "soak: $(wc -l <"$out/client.log") client lines; RSS samples (s, KiB):"
awk 'NR==2 || NR==3 {print "  first:", $0} END {print "  last: ", $0}' "$out/rss.txt"
tail -9 "$out/run.log"
