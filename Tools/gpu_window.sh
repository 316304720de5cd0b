#!/usr/bin/env bash
# One lent GPU window, prepared: fresh pictures, the vision warm start, then audio-visual stage 1 from it.
#
#   Tools/gpu_window.sh PACK OUTDIR [--minutes M] [--pretrain-minutes P] [--scenes N] [--width W]
#                       [--config CFG] [--init STATE16] [-- DSOL.TRAIN OPTIONS...]
#
# Run from the repository root on the GPU machine (device run), with PACK a training pack (dsol.pack)
# carried along. Steps, each with a time budget so the whole run ends within M minutes (default 11):
#   1. python3 -m dataset.portable: N (default 12000) fresh picture-only scenes of procedurally drawn
#      instruments on all CPU cores, a new seed each window (the seed is the current time);
#   2. python3 -m dsol.pretrain on them, width W (default 64), bf16 on CUDA, for P minutes (default 4),
#      scored every epoch on PACK's validation split (the packages' drawings the training split never had);
#   3. Tools/train_pack.sh PACK CFG (default gpu_fast.yaml) for the rest, --vision-init from step 2 (or
#      --init STATE16 to continue an earlier window's run instead, which skips steps 1 and 2).
# OUTDIR gets what the trip back can carry (8 files, 16 MiB each): the run's state16.pt in parts
# (train_pack.sh), run.tar.gz, pretrain.tar.gz (its log and per-epoch history) and window.log.
# Back here: cat the parts into STATE16, then `python3 -m dsol.export --checkpoint STATE16 --out M` and
# Tools/ship_model.sh --run, or keep STATE16 for the next window (--init).
set -euo pipefail
usage() { sed -n '2,20p' "$0"; exit 2; }
[[ $# -ge 2 ]] || usage
pack=$(realpath "$1") out=$(realpath -m "$2"); shift 2
minutes=11 pre_minutes=4 scenes=12000 width=64 init="" repo=$(cd "$(dirname "$0")/.." && pwd)
config=$repo/Tools/dsol/configs/gpu_fast.yaml
while [[ $# -gt 0 ]]; do
  case $1 in
    --minutes) minutes=$2; shift ;;
    --pretrain-minutes) pre_minutes=$2; shift ;;
    --scenes) scenes=$2; shift ;;
    --width) width=$2; shift ;;
    --config) config=$(realpath "$2"); shift ;;
    --init) init=$(realpath "$2"); shift ;;
    --) shift; break ;;
    *) echo "gpu_window: unknown option $1" >&2; usage ;;
  esac
  shift
done
extra=("$@")
[[ -f $pack ]] || { echo "gpu_window: no pack at $pack" >&2; exit 1; }
[[ -z $init || -f $init ]] || { echo "gpu_window: no state at $init" >&2; exit 1; }
start=$(date +%s)
work=${GPU_WINDOW_WORK:-/tmp/gpu_window}
mkdir -p "$out" "$work"
exec > >(tee -a "$out/window.log") 2>&1
left() { echo $(( minutes * 60 - ($(date +%s) - start) )); }
device=cpu
if python3 -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then device=cuda; fi
bf16=(); [[ $device == cuda ]] && bf16=(--bf16)
echo "gpu_window: $(date -u +%FT%TZ) device $device, $(nproc) cores, budget ${minutes} min, width $width"
cd "$repo/Tools"

vision=()
if [[ -z $init ]]; then
  seed=$(( start % 100000 ))
  echo "gpu_window: 1/3 $scenes picture-only scenes, seed $seed"
  python3 -m dataset.portable --out "$work/pictures" --scenes "$scenes" --seed "$seed" --styles all \
    --occlusion 0.2 --distractors 0.8 --format jpeg --quiet
  budget=$(( pre_minutes * 60 - ($(date +%s) - start) ))
  (( budget > 30 )) || budget=30
  echo "gpu_window: 2/3 vision warm start, ${budget} s"
  status=0
  PYTHONUNBUFFERED=1 python3 -m dsol.pretrain --data "$work/pictures/manifest.json" --val "$pack" \
    --out "$work/pretrain" --width "$width" --device "$device" "${bf16[@]}" --batch 128 --epochs 60 \
    --time-budget "$budget" --quiet || status=$?
  (cd "$work/pretrain" && tar czf "$out/pretrain.tar.gz" --ignore-failed-read log.txt history.json 2>/dev/null) || true
  cat "$work/pretrain/log.txt" || true
  (( status == 0 )) || exit "$status"
  vision=(--vision-init "$work/pretrain/vision.pt")
else
  echo "gpu_window: continuing from $init"
  vision=(--init "$init")
fi

budget=$(( $(left) - 45 ))
(( budget > 60 )) || { echo "gpu_window: too little time left for stage 1 (${budget} s)" >&2; exit 1; }
echo "gpu_window: 3/3 stage 1 from the pack, ${budget} s"
rm -rf "$work/run"
"$repo/Tools/train_pack.sh" "$pack" "$config" "$work/run" "$budget" "$out" --width "$width" "${vision[@]}" "${extra[@]}"
rm -f "$out/model.safetensors.part-"*  # the float32 export does not fit the trip back at width 64: state16 does
grep -v "model.safetensors" "$out/SHA256SUMS" > "$out/SHA256SUMS.tmp" || true
mv "$out/SHA256SUMS.tmp" "$out/SHA256SUMS"
echo "gpu_window: done in $(( $(date +%s) - start )) s"
ls -l "$out"
