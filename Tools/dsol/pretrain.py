"""Supervised warm start of the vision trunk on labelled procedural drawings (the ImageNet stand-in).

    cd Tools && python3 -m dsol.pretrain --data MANIFEST --out DIR [--width 64] [--epochs 30] \
        [--device cuda] [--bf16] [--labels procedural|all] [--resume]

The paper's vision trunk starts from ImageNet, whose classes already include 8 of the 11
instruments; ours starts from scratch, and on drawings the training split never showed its
features name 26 % of the objects (dsol.head_fit's box accuracy, whatever head reads them). This
trains the trunk, before any audio-visual training, to name what is drawn in each cell of f(v):
a 1x1 convolution on f(v) (14 x 14 cells) predicts, per cell, one of the K instruments or
"background", with cross-entropy against labels rasterised from the boxes of the TRAINING split's
scenes. Only procedurally drawn instruments give class labels (--labels procedural, the default;
`all` also uses the packages' drawings); a cell whose centre lies in an unlabelled box or in boxes
of two classes is ignored, every other cell is background (silent distractors included). Pictures
go through dsol.data's augmentation (crop, flip, colour) with the boxes moved alike, built on the
device as in dsol.device_data.

After every epoch the validation split (drawings no training scene used) is scored: box accuracy
(the class whose mean cell score over an object's box is highest is its own; the measure of
dsol.head_fit) and per-cell accuracy. DIR gets log.txt, history.json, last.pt (resumable, every
epoch) and vision.pt: {"vision": trunk state dict in the training layout, "width", "classes",
"history"} for `dsol.train --vision-init`. The model card of a model trained from it must say that
its vision trunk saw labels.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .data import Augment, SceneStore, draw_image, load_manifest, sample_rng
from .device_data import DeviceStore, images
from .model import ResNetS5
from .pack import read_pack
from .progress import Progress

GRID = 14
IGNORE = -100


def moved_box(box, params, h: int, w: int) -> tuple[float, float, float, float]:
    """A normalised [x, y, w, h] box after draw_image's crop and flip, in the output's coordinates."""
    y0, ch, x0, cw, flip = params[:5]
    bx0 = (box[0] * w - x0) / cw
    bx1 = ((box[0] + box[2]) * w - x0) / cw
    by0 = (box[1] * h - y0) / ch
    by1 = ((box[1] + box[3]) * h - y0) / ch
    if flip:
        bx0, bx1 = 1.0 - bx1, 1.0 - bx0
    return bx0, by0, bx1, by1


def cell_labels(objects, params, h: int, w: int, background: int) -> np.ndarray:
    """(14, 14) int64 targets: class id where a cell's centre lies in labelled boxes of one class,
    IGNORE where it lies in an unlabelled box or in boxes of two classes, else background."""
    c = (np.arange(GRID) + 0.5) / GRID
    cls = np.full((GRID, GRID), -1, dtype=np.int64)
    ignore = np.zeros((GRID, GRID), dtype=bool)
    for ob in objects:
        x0, y0, x1, y1 = moved_box(ob["box"], params, h, w)
        inside = (c[:, None] >= y0) & (c[:, None] < y1) & (c[None, :] >= x0) & (c[None, :] < x1)
        if ob["label"] is None:
            ignore |= inside
            continue
        clash = inside & (cls >= 0) & (cls != ob["label"])
        ignore |= clash
        cls[inside & (cls < 0)] = ob["label"]
    out = np.where(cls >= 0, cls, background)
    out[ignore] = IGNORE
    return out


def drawing_names(manifest: str | Path) -> dict[str, list[str]]:
    """Scene id -> the drawing of each object, in the manifest's order (dsol.data keeps no drawings)."""
    m = json.loads(Path(manifest).read_text())
    return {s["id"]: [str(o.get("drawing", "")) for o in s.get("objects", [])] for s in m["scenes"]}


def labelled_objects(scene, which: str, drawings: dict[str, list[str]] | None = None) -> list[dict]:
    """The scene's objects as {"box", "label"}: label None for drawings that give no label."""
    out = []
    names = (drawings or {}).get(scene.id, [])
    for j, ob in enumerate(scene.objects):
        proc = "procedural" in (names[j] if j < len(names) else str(ob.get("drawing", "")))
        out.append({"box": ob["box"], "label": int(ob["class_id"]) if (which == "all" or proc) else None})
    return out


def schedule(frac: float) -> float:
    """Learning-rate factor at a fraction of the run: linear warm-up over the first 5 %, then a
    cosine to zero."""
    if frac < 0.05:
        return (frac + 1e-3) / 0.05
    return 0.5 * (1.0 + float(np.cos(np.pi * min(1.0, (frac - 0.05) / 0.95))))


def validation_store(path: str | None, scenes) -> SceneStore:
    """The validation scenes to score: those of a manifest or pack at path, else of `scenes`."""
    if path and str(path).endswith(".npz"):
        _, packed, jpegs, _ = read_pack(path)
        keep = [k for k, s in enumerate(packed) if s.split == "val"]
        return SceneStore([packed[k] for k in keep], False, encoded=[jpegs[k] for k in keep])
    source = load_manifest(path, picture_only_ok=True)[1] if path else scenes
    return SceneStore([s for s in source if s.split == "val"], cache_images=False)


class CellClassifier(nn.Module):
    """Vision trunk + 1x1 convolution to K + 1 cell classes (the last is background)."""

    def __init__(self, width: int, num_classes: int):
        super().__init__()
        self.vision = ResNetS5(3, width)
        self.head = nn.Conv2d(self.vision.out_channels, num_classes + 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.vision(x))


@torch.no_grad()
def evaluate(model: CellClassifier, dev: DeviceStore, scenes, idx: list[int], k: int, bf16: bool,
             batch: int = 64) -> dict:
    """Box accuracy over every object (argmax over the K classes of the mean cell logits in its box)
    and cell accuracy over the labelled cells of the given scenes."""
    model.eval()
    right = total = cells_right = cells = 0
    for a in range(0, len(idx), batch):
        part = idx[a:a + batch]
        plain = [draw_image(dev.height, dev.width, None, None)] * len(part)
        with torch.autocast(dev.device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(images(dev, part, plain)).float().cpu()
        for r, i in enumerate(part):
            objs = labelled_objects(scenes[i], "all")
            tgt = torch.from_numpy(cell_labels(objs, plain[0], dev.height, dev.width, k))
            ok = tgt != IGNORE
            cells += int(ok.sum())
            cells_right += int((logits[r].argmax(0)[ok] == tgt[ok]).sum())
            for ob in objs:
                x0, y0, x1, y1 = moved_box(ob["box"], plain[0], dev.height, dev.width)
                c = (torch.arange(GRID) + 0.5) / GRID
                m = ((c[:, None] >= y0) & (c[:, None] < y1) & (c[None, :] >= x0) & (c[None, :] < x1))
                if m.any():
                    total += 1
                    right += int(int(logits[r, :k][:, m].mean(1).argmax()) == ob["label"])
    return {"box_accuracy": right / max(total, 1), "objects": total, "cell_accuracy": cells_right / max(cells, 1)}


@torch.enable_grad()  # whatever the caller's grad mode (dsol.reference turns it off)
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m dsol.pretrain", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="the builder's manifest.json")
    ap.add_argument("--out", required=True, help="run folder")
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--background-weight", type=float, default=0.3, help="loss weight of background cells")
    ap.add_argument("--labels", choices=("procedural", "all"), default="procedural")
    ap.add_argument("--crop-min", type=float, default=0.6, help="augmentation: smallest crop side")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--bf16", action="store_true", help="bfloat16 autocast of the trunk")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--val", metavar="DATA", help="score the validation split of this data set (a manifest or a "
                    "dsol.pack training pack) instead of --data's, e.g. the builder's held-out drawings when "
                    "--data is a picture-only set")
    ap.add_argument("--val-limit", type=int, help="validation scenes scored per epoch (default all)")
    ap.add_argument("--time-budget", type=float, help="seconds: the learning-rate schedule runs on the clock "
                    "and training stops when they are spent (a resumed run starts a new clock)")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    started = time.time()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: no CUDA device available to this PyTorch build")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    last = out / "last.pt"
    if last.exists() and not args.resume:
        ap.error(f"{out} already holds a run; use --resume or another --out")
    logf = open(out / "log.txt", "a", encoding="utf-8")

    def log(msg: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {msg}"
        logf.write(line + "\n")
        logf.flush()
        if not args.quiet:
            print(line, flush=True)

    classes, scenes = load_manifest(args.data, picture_only_ok=True)
    k = len(classes)
    train = [s for s in scenes if s.split == "train"]
    val_store = validation_store(args.val, scenes)
    if args.val_limit:
        val_store = SceneStore(val_store.scenes[:args.val_limit], False,
                               encoded=val_store._encoded[:args.val_limit] if val_store._encoded else None)
    val = val_store.scenes
    drawings = drawing_names(args.data)
    objs = [labelled_objects(s, args.labels, drawings) for s in train]
    n_lab = sum(o["label"] is not None for ob in objs for o in ob)
    if n_lab == 0:
        raise SystemExit(f"{args.data}: no training object with a {args.labels} drawing to learn from "
                         f"(build the data set with --procedural N)")
    log(f"pretrain {' '.join(argv if argv is not None else sys.argv[1:])}")
    log(f"{len(train)} training scenes, {n_lab} labelled objects ({args.labels}); {len(val)} validation scenes")
    if not val:
        log("no validation scenes: epochs are not scored (give --val MANIFEST)")
    bar = Progress(len(train) + len(val), "pictures", not args.quiet)
    dev_tr = DeviceStore(SceneStore(train, cache_images=False), device, bar.update, audio=False)
    dev_va = DeviceStore(val_store, device, bar.update, audio=False) if val else None
    bar.close()
    torch.manual_seed(args.seed)
    model = CellClassifier(args.width, k).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    steps = max(1, len(train) // args.batch)
    weight = torch.ones(k + 1, device=device)
    weight[k] = args.background_weight
    history, start = [], 0
    if args.resume and last.exists():
        st = torch.load(last, map_location=device, weights_only=True)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        history, start = st["history"], st["epoch"] + 1
        log(f"resumed after epoch {st['epoch']}")
    aug = Augment(crop_min=args.crop_min)
    for epoch in range(start, args.epochs):
        model.train()
        order = np.random.default_rng([args.seed, 7, epoch]).permutation(len(train))
        t0, tot = time.time(), torch.zeros((), device=device)
        out_of_time = False
        bar = Progress(steps, f"e{epoch}", not args.quiet)
        for b in range(steps):
            part = order[b * args.batch:(b + 1) * args.batch].tolist()
            params, tgts = [], []
            for pos in part:
                p = draw_image(dev_tr.height, dev_tr.width, sample_rng(args.seed, (7, epoch), pos), aug)
                params.append(p)
                tgts.append(cell_labels(objs[pos], p, dev_tr.height, dev_tr.width, k))
            x = images(dev_tr, part, params)
            y = torch.from_numpy(np.stack(tgts)).to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16):
                logits = model(x)
            loss = F.cross_entropy(logits.float(), y, weight=weight, ignore_index=IGNORE)
            # with a time budget the schedule runs on the clock, so it ends annealed whenever time is up
            frac = ((time.time() - started) / args.time_budget) if args.time_budget else \
                (epoch * steps + b) / (args.epochs * steps)
            for g in opt.param_groups:
                g["lr"] = args.lr * schedule(frac)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot = tot + loss.detach()
            if device.type == "cpu" or b % 25 == 24 or b + 1 == steps:
                bar.update(b + 1 - bar.n, loss=loss.item())
            if frac >= 1.0:
                out_of_time = True
                steps_done = b + 1
                break
        else:
            steps_done = steps
        bar.close()
        dt = time.time() - t0
        entry = {"epoch": epoch, "loss": float(tot) / max(steps_done, 1), "time_s": dt, "steps": steps_done,
                 "pictures_per_s": steps_done * args.batch / max(dt, 1e-9)}
        msg = f"epoch {epoch}: loss {entry['loss']:.4f}, {entry['pictures_per_s']:.0f} pictures/s"
        if dev_va is not None:
            entry["val"] = v = evaluate(model, dev_va, val, list(range(len(val))), k, args.bf16)
            msg += (f", val box accuracy {v['box_accuracy'] * 100:.1f} % ({v['objects']} objects), "
                    f"cell accuracy {v['cell_accuracy'] * 100:.1f} %")
        history.append(entry)
        log(msg)
        tmp = last.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "history": history, "epoch": epoch}, tmp)
        os.replace(tmp, last)
        if out_of_time:
            log(f"time budget of {args.time_budget:.0f} s reached in epoch {epoch}")
            break
    vision = {n: t.detach().cpu() for n, t in model.vision.state_dict().items()}
    torch.save({"vision": vision, "width": args.width, "classes": classes, "labels": args.labels,
                "history": history}, out / "vision.pt")
    (out / "history.json").write_text(json.dumps(history, indent=1) + "\n")
    log(f"wrote {out / 'vision.pt'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
