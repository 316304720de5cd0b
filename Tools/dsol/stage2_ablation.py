"""Which stage-2 loss term spreads the sounding map l? A short stage 2 per combination, measured.

    cd Tools && python3 -m dsol.stage2_ablation --model M.safetensors --data MANIFEST --out DIR \
        [--steps 120] [--lr 1e-4] [--batch 16] [--kl batchmean|mean] [--terms kl+l1,kl,l1]

From one model file (stage 1; BatchNorm is folded into it, so unlike dsol.train's stage 2 there is
no batch-statistics drift, only the losses' gradients), each combination of the authors' two terms
trains every weight but the dictionary for --steps steps on the training cocktail scenes, against
a frozen copy as the audio teacher, exactly as dsol.train's stage2_epoch (true pair + mismatched
scene, KL(p_a || softmax(GAP(m l))), L1 = BCE on max l and the mismatched scene's quadrant maxima).
Every --every steps it measures l on the validation split:

  solo IoU@0.5   the paper's solo metric on l,
  in-box mass    the share of l's sum over a cocktail scene that lies inside its sounding boxes,
  mean l         l averaged over all cells (how far l has spread or sunk),
  class CIoU     class-aware CIoU@0.3 of the cocktail scenes (mean over kinds).

Writes DIR/ablation.json and prints a table; a run is a pure function of its options.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import metrics as M
from .data import COCKTAIL_KINDS, SOLO_KINDS, PairDataset, SceneStore, batch_plan, load_manifest, loader
from .export import load_model, read_safetensors
from .head_fit import extract, headline, score
from .losses import quadrant_l1
from .progress import Progress


def measure(model, store: SceneStore, scenes, solo: list[int], cocktail: list[int], c2c, k: int) -> dict:
    """l's spread and the class maps' score on validation scenes (eval inputs)."""
    model.eval()
    f_solo = extract(model, store, solo, quiet=True)
    f_ck = extract(model, store, cocktail, quiet=True)
    ious = [M.relative_iou(f_solo["l"][r].reshape(14, 14).numpy(),
                           [o["box"] for o in scenes[i].objects if o["sounding"]], M.SOLO_FRACTION)
            for r, i in enumerate(solo)]
    mass = []
    for r, i in enumerate(cocktail):
        inside = torch.zeros(196, dtype=torch.bool)
        for o in scenes[i].objects:
            if o["sounding"]:
                inside |= torch.from_numpy(M.box_mask((tuple(o["box"]),), 14).reshape(-1))
        l = f_ck["l"][r]
        mass.append(float(l[inside].sum() / l.sum().clamp_min(1e-12)))
    w = model.dsol.affine[0] * model.dsol.dictionary
    return {"solo_iou@0.5": M.summarize_solo(ious)["iou@0.5"], "inbox_mass": float(np.mean(mass)),
            "mean_l": float(torch.cat([f_solo["l"], f_ck["l"]]).mean()),
            "class_ciou@0.3": headline(score(w, f_ck, scenes, cocktail, c2c, k))}


@torch.enable_grad()  # whatever the caller's grad mode (dsol.reference turns it off)
def run_terms(src, terms: set[str], store_tr: SceneStore, train_idx: list[int], measure_fn, args, log) -> list[dict]:
    torch.manual_seed(args.seed)
    model = copy.deepcopy(src)
    teacher = copy.deepcopy(src).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    params = [p for n, p in model.named_parameters() if n != "dsol.dictionary"]
    opt = torch.optim.Adam(params, lr=args.lr, weight_decay=1e-4)
    ds = PairDataset(store_tr, train_idx, args.seed, None)
    ds.set_tag(5, 0)
    plan = batch_plan(len(ds), args.batch, np.random.default_rng([args.seed, 5]), True, args.steps)
    out = [{"step": 0, **measure_fn(model)}]
    log(f"{'+'.join(sorted(terms)):8s} step {0:4d}: {out[-1]}")
    bar = Progress(len(plan), "+".join(sorted(terms)), not args.quiet)
    for step, b in enumerate(loader(ds, plan), 1):
        model.train()
        bsz = b["audio"].shape[0]
        images = torch.cat([b["pos"], b["neg"]])
        fv, ga = model.vision(images), model.audio(b["audio"])
        l = model.loc(fv, torch.cat([ga, ga]))
        loss = torch.zeros(())
        if "l1" in terms:
            loss = loss + 0.5 * quadrant_l1(l[:bsz], l[bsz:])[0]
        if "kl" in terms:
            log_pv = F.log_softmax((model.object_response(fv[:bsz]) * l[:bsz]).mean(dim=(2, 3)), dim=1)
            with torch.no_grad():
                p_a = F.softmax(teacher.cls.audio(teacher.audio(b["audio"])), dim=1)
            loss = loss + F.kl_div(log_pv, p_a, reduction=args.kl)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        bar.update(loss=loss.item())
        if step % args.every == 0 or step == len(plan):
            out.append({"step": step, **measure_fn(model)})
            log(f"{'+'.join(sorted(terms)):8s} step {step:4d}: {out[-1]}")
    bar.close()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m dsol.stage2_ablation", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True, help="the builder's manifest.json")
    ap.add_argument("--out", required=True)
    ap.add_argument("--terms", default="kl+l1,kl,l1", help="comma-separated combinations of kl and l1")
    ap.add_argument("--steps", type=int, default=120)
    ap.add_argument("--every", type=int, default=40)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--kl", choices=("batchmean", "mean"), default="batchmean")
    ap.add_argument("--val-limit", type=int, default=100, help="validation scenes per kind measured")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    combos = [set(c.split("+")) for c in args.terms.split(",") if c]
    if not combos or any(not c <= {"kl", "l1"} for c in combos):
        raise SystemExit(f"--terms: combinations of kl and l1 joined by '+', not {args.terms!r}")
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    src = load_model(args.model)
    c2c = json.loads(read_safetensors(args.model)[1]["cluster_to_class"])
    classes, scenes = load_manifest(args.data)
    tr = [s for s in scenes if s.split == "train"]
    va = [s for s in scenes if s.split == "val"]
    train_idx = [i for i, s in enumerate(tr) if s.kind in COCKTAIL_KINDS]
    solo = [i for i, s in enumerate(va) if s.kind in SOLO_KINDS][:args.val_limit]
    cocktail = []
    for kind in COCKTAIL_KINDS:
        cocktail += [i for i, s in enumerate(va) if s.kind == kind][:args.val_limit]
    st_tr, st_va = SceneStore(tr), SceneStore(va)

    def measure_fn(model):
        with torch.no_grad():
            return measure(model, st_va, va, solo, cocktail, c2c, len(classes))

    results = {"+".join(sorted(c)): run_terms(src, c, st_tr, train_idx, measure_fn, args, log) for c in combos}
    (out / "ablation.json").write_text(json.dumps({"args": vars(args), "results": results}, indent=1) + "\n")
    print(f"\n{'terms':8s} {'step':>5s} {'solo IoU':>9s} {'in-box':>7s} {'mean l':>7s} {'class CIoU':>10s}")
    for name, rows in results.items():
        for r in rows:
            print(f"{name:8s} {r['step']:5d} {r['solo_iou@0.5'] * 100:9.1f} {r['inbox_mass'] * 100:7.1f} "
                  f"{r['mean_l']:7.4f} {r['class_ciou@0.3'] * 100:10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
