"""Audio classifier accuracy on real instrument recordings (the windows that
`python3 -m dataset.real_audio` cuts from Debian packages): the honest test of
whether the audio network learned instruments or only the soundfonts.

    cd Tools && python3 -m dsol.real_audio_eval --model M.safetensors --data DIR [--json OUT]

The model's audio classifier predicts a cluster; its class is the cluster's
name in the model file (the trainer's Hungarian map; "violin_2" counts as
violin). Prints accuracy overall, per class, per source package, and the
confusion matrix. Windows of one recording overlap, so they are not independent
samples: the per-recording majority vote is reported too."""
from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import torch

from .audio import load_clip, logmel_batch
from .export import load_model


def base_class(name: str) -> str:
    return re.sub(r"_\d+$", "", name)


@torch.no_grad()
def evaluate(model_path: str, data: str, batch: int = 32) -> dict:
    root = Path(data)
    labels = json.loads((root / "labels.json").read_text())
    windows = labels["windows"]
    if not windows:
        raise SystemExit(f"{root}/labels.json holds no windows")
    model = load_model(model_path)
    names = [base_class(c) for c in model.classes]
    preds = []
    for i in range(0, len(windows), batch):
        chunk = windows[i:i + batch]
        clips = np.stack([load_clip(root / w["path"]) for w in chunk])
        x = torch.from_numpy(logmel_batch(clips)).unsqueeze(1)
        logits = model.cls.audio(model.audio(x))
        preds += [names[int(k)] for k in logits.argmax(1)]
    truth = [w["class"] for w in windows]
    hit = [p == t for p, t in zip(preds, truth)]
    per_class, per_source, per_recording = defaultdict(list), defaultdict(list), defaultdict(list)
    for w, p, h in zip(windows, preds, hit):
        per_class[w["class"]].append(h)
        per_source[w["source"].split("/")[0]].append(h)
        per_recording[w["source"]].append((w["class"], p))
    votes = {src: (pairs[0][0], Counter(p for _, p in pairs).most_common(1)[0][0]) for src, pairs in per_recording.items()}
    confusion = defaultdict(Counter)
    for t, p in zip(truth, preds):
        confusion[t][p] += 1
    classes = labels.get("classes") or sorted(set(truth))
    return {
        "model": str(model_path),
        "windows": len(windows),
        "accuracy": float(np.mean(hit)),
        "chance": 1.0 / len(classes),
        "recordings": len(votes),
        "recording_vote_accuracy": float(np.mean([t == p for t, p in votes.values()])),
        "per_class": {c: {"n": len(per_class[c]), "accuracy": float(np.mean(per_class[c]))} for c in classes if per_class[c]},
        "per_source": {s: {"n": len(v), "accuracy": float(np.mean(v))} for s, v in sorted(per_source.items())},
        "confusion": {t: dict(confusion[t]) for t in classes if t in confusion},
    }


def report(r: dict) -> str:
    lines = [f"{r['windows']} windows from {r['recordings']} recordings: accuracy {100 * r['accuracy']:.1f} % "
             f"(chance {100 * r['chance']:.1f} %), per-recording majority vote {100 * r['recording_vote_accuracy']:.1f} %"]
    lines.append("per class: " + ", ".join(f"{c} {100 * v['accuracy']:.0f}% ({v['n']})" for c, v in r["per_class"].items()))
    lines.append("per source: " + ", ".join(f"{s} {100 * v['accuracy']:.0f}% ({v['n']})" for s, v in r["per_source"].items()))
    for t, row in r["confusion"].items():
        lines.append(f"  {t:>16} -> " + ", ".join(f"{p} {n}" for p, n in sorted(row.items(), key=lambda kv: -kv[1])))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m dsol.real_audio_eval", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="fp32 model file (.safetensors)")
    ap.add_argument("--data", required=True, help="folder written by python3 -m dataset.real_audio")
    ap.add_argument("--json", help="write the full result as JSON")
    args = ap.parse_args(argv)
    if not (Path(args.data) / "labels.json").is_file():
        print(f"{args.data}/labels.json not found: make it with  cd Tools && python3 -m dataset.real_audio --out {args.data}",
              file=sys.stderr)
        return 1
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    r = evaluate(args.model, args.data)
    print(report(r))
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
