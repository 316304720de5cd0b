#!/usr/bin/env bash
# Train DSOL from a training pack (python3 -m dsol.pack) within a time budget, on whatever this machine
# has (CUDA when PyTorch sees a GPU), and get the run ready to travel back: the model in parts of at most
# 15 MB (join them with cat), the logs and metrics in one archive.
#
#   Tools/train_pack.sh PACK CONFIG RUN SECONDS [OUTDIR [DSOL.TRAIN OPTIONS...]]
#
# SECONDS is dsol.train --time-budget: stage 1 is shortened to fit it. With OUTDIR, RUN's model.safetensors
# and checkpoints/state16.pt (the final weights in float16 with the pseudo-labels, for --init) become
# OUTDIR/<name>.part-aa, -ab, ... (SHA256SUMS lists the whole files),
# and config.yaml, log.txt, metrics.jsonl, final.json go into OUTDIR/run.tar.gz, also when training fails
# (whatever exists by then). Options after OUTDIR go to dsol.train as they are, e.g. --init STAGE1.pt.
set -euo pipefail
[[ $# -ge 4 ]] || { sed -n '2,12p' "$0"; exit 2; }
pack=$(realpath "$1") config=$(realpath "$2") run=$(realpath -m "$3") budget=$4 out=${5:-}
extra=("${@:6}")
for i in "${!extra[@]}"; do  # dsol.train runs in Tools/: make paths of existing files absolute
  [[ -e ${extra[$i]} ]] && extra[$i]=$(realpath "${extra[$i]}")
done
[[ -f $pack ]] || { echo "train_pack: no pack at $pack" >&2; exit 1; }
[[ -f $config ]] || { echo "train_pack: no config at $config" >&2; exit 1; }

ship() {
  [[ -n $out ]] || return 0
  mkdir -p "$out"
  # the model, and the weights and pseudo-labels a later window or stage 2 elsewhere continues from
  for f in model.safetensors checkpoints/state16.pt; do
    [[ -f $run/$f ]] || continue
    split -b 15M "$run/$f" "$out/$(basename "$f").part-"
    (cd "$run" && sha256sum "$f") >>"$out/SHA256SUMS"
  done
  (cd "$run" 2>/dev/null && tar czf "$out/run.tar.gz" --ignore-failed-read config.yaml log.txt metrics.jsonl final.json 2>/dev/null) || true
}
trap ship EXIT

cd "$(dirname "$0")"
device=cpu
if python3 -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then device=cuda; fi
python3 -c 'import platform, torch, numpy; print("python", platform.python_version(), "torch", torch.__version__,
  "numpy", numpy.__version__, "device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu")'
echo "train_pack: $pack -> $run on $device, budget $budget s"
status=0
PYTHONUNBUFFERED=1 python3 -m dsol.train --config "$config" --data "$pack" --out "$run" --device "$device" \
  --time-budget "$budget" --quiet "${extra[@]}" || status=$?
cut -c1-400 "$run/log.txt" || true
exit "$status"
