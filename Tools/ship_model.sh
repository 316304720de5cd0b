#!/usr/bin/env bash
# The whole model chain, one command: build the data set -> train both DSOL stages -> export (the trainer
# writes model.safetensors) -> quantize with soundloc -> evaluate fp32, int8 and the stage-1 baseline with
# soundloc eval and a map-by-map int8/fp32 comparison -> audio accuracy on real recordings -> model card -> copy into a Models folder.
#
#   Tools/ship_model.sh [--data DIR] [--size tiny|small|full] [--seed N] [--procedural N] [--config YAML]
#                       [--init CKPT] [--run DIR] [--models DIR|none] [--soundloc BIN] [--calibration-limit N]
#                       [--eval-limit N]
#
# Defaults: --data data/small, --size small, --seed 1, --procedural 0 (procedural drawings per class
# in the training split, see Tools/dataset/README.md), --config Tools/dsol/configs/cpu_fast.yaml,
# no --init (a new run starts from scratch; with it, from that checkpoint's weights),
# --run runs/ship, --models Models, --soundloc .build/release/soundloc (built when missing).
# Every step is resumable: an existing data set is reused, training resumes from its last checkpoint,
# finished steps are skipped when their outputs exist (delete a file to redo its step).
# Needs Tools/setup.sh --train (PyTorch, data-set assets).
set -euo pipefail

say() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'ship_model: error: %s\n' "$*" >&2; exit 1; }

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
data=$repo/data/small size=small seed=1 procedural=0 init="" config=$repo/Tools/dsol/configs/cpu_fast.yaml run=$repo/runs/ship
models=$repo/Models soundloc=$repo/.build/release/soundloc calibration_limit=64 eval_limit=""
while [[ $# -gt 0 ]]; do
  [[ $1 == -h || $1 == --help ]] && { sed -n '2,16p' "$0"; exit 0; }
  [[ $# -ge 2 ]] || die "$1 needs a value"
  case $1 in
    --data) data=$2 ;; --size) size=$2 ;; --seed) seed=$2 ;; --procedural) procedural=$2 ;;
    --config) config=$2 ;; --init) init=$2 ;; --run) run=$2 ;;
    --models) models=$2 ;; --soundloc) soundloc=$2 ;; --calibration-limit) calibration_limit=$2 ;;
    --eval-limit) eval_limit=$2 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
  shift 2
done
abs() { [[ $1 == /* ]] && echo "$1" || echo "$PWD/$1"; }
data=$(abs "$data") config=$(abs "$config") run=$(abs "$run") soundloc=$(abs "$soundloc")
[[ $models == none ]] || models=$(abs "$models")
init_args=()
[[ -z $init ]] || { init=$(abs "$init"); [[ -f $init ]] || die "--init: no file $init"; init_args=(--init "$init"); }
[[ -f $config ]] || die "config $config not found"
limit_args=(); [[ -z $eval_limit ]] || limit_args=(--limit "$eval_limit")

if [[ ! -x $soundloc ]]; then
  say "building soundloc (release)"
  (cd "$repo" && swift build -c release --product soundloc)
  [[ -x $soundloc ]] || die "$soundloc was not built"
fi
mkdir -p "$run/evals"
cd "$repo/Tools"

say "1/6 data set: $data (size $size, seed $seed, procedural $procedural)"
if [[ -f $data/manifest.json ]]; then echo "reusing $data/manifest.json"
else python3 -m dataset.build --out "$data" --seed "$seed" --size "$size" --procedural "$procedural" --resume; fi

say "2/6 training ($config) into $run"
if [[ -f $run/final.json && -f $run/model.safetensors ]]; then echo "already trained: $run/final.json"
elif compgen -G "$run/checkpoints/*" >/dev/null; then
  python3 -m dsol.train --config "$config" --data "$data/manifest.json" --out "$run" --resume
else python3 -m dsol.train --config "$config" --data "$data/manifest.json" --out "$run" "${init_args[@]}"; fi

say "3/6 quantize (percentile, $calibration_limit calibration pairs from the training split)"
if [[ ! -f $run/model-int8.safetensors ]]; then
  "$soundloc" quantize --model "$run/model.safetensors" --calibration "$data/manifest.json" \
    --out "$run/model-int8.safetensors" --limit "$calibration_limit" --threads 2
fi

say "4/6 evaluate on the test split (fp32, int8, stage-1 baselines; int8 against fp32 map by map)"
agreement=$run/evals/int8-agreement.json
if [[ ! -f $agreement ]]; then  # the comparison needs the maps of both evaluations: redo them together
  rm -rf "$run/maps-fp32" "$run/maps-int8" "$run/evals/eval-fp32.json" "$run/evals/eval-int8.json"
fi
evaluate() {  # name model [more soundloc eval options]
  local out=$run/evals/eval-$1.json
  [[ -f $out ]] && { echo "have $out"; return 0; }
  "$soundloc" eval --model "$2" --data "$data/manifest.json" --split test --threads 2 "${limit_args[@]}" \
    --json "$out.tmp" "${@:3}"
  mv "$out.tmp" "$out"
}
evaluate fp32 "$run/model.safetensors" --maps-out "$run/maps-fp32"
evaluate int8 "$run/model-int8.safetensors" --maps-out "$run/maps-int8"
evaluate baseline "$run/model.safetensors" --baseline
evaluate int8-baseline "$run/model-int8.safetensors" --baseline
if [[ ! -f $agreement ]]; then
  python3 -m dsol.compare_maps --a "$run/maps-fp32" --b "$run/maps-int8" --json "$agreement"
  rm -rf "$run/maps-fp32" "$run/maps-int8"
fi

say "5/6 audio classifier on real recordings; object classes at the box on unseen and seen drawings"
if [[ -f $run/evals/real-audio.json ]]; then echo "have $run/evals/real-audio.json"
else
  [[ -f $run/real-audio/labels.json ]] || python3 -m dataset.real_audio --out "$run/real-audio"
  python3 -m dsol.real_audio_eval --model "$run/model.safetensors" --data "$run/real-audio" --json "$run/evals/real-audio.json"
fi
if [[ -f $run/evals/box-classes.json ]]; then echo "have $run/evals/box-classes.json"
else
  python3 -m dsol.box_classes --model "$run/model.safetensors" --data "$data/manifest.json" --split test \
    --json "$run/evals/box-classes.json"
fi

say "6/6 model card"
python3 -m dsol.model_card --run "$run" --data "$data/manifest.json" --fp32 "$run/model.safetensors" \
  --int8 "$run/model-int8.safetensors" --eval-dir "$run/evals" --out "$run/MODEL_CARD.md"
if [[ $models != none ]]; then
  mkdir -p "$models"
  cp "$run/model.safetensors" "$models/dsol-music-fp32.safetensors"
  cp "$run/model-int8.safetensors" "$models/dsol-music-int8.safetensors"
  python3 -m dsol.model_card --run "$run" --data "$data/manifest.json" --fp32 "$models/dsol-music-fp32.safetensors" \
    --int8 "$models/dsol-music-int8.safetensors" --eval-dir "$run/evals" --out "$models/MODEL_CARD.md"
  echo "shipped into $models: dsol-music-fp32.safetensors, dsol-music-int8.safetensors, MODEL_CARD.md"
fi
