"""Stage 2 on frozen trunks: the class-aware head (dictionary, affine of m) learned with the KL.

    cd Tools && python3 -m dsol.head_fit --model M.safetensors --data MANIFEST --out DIR \
        [--pool mean|lnorm] [--epochs N] [--lr R] [--seed S] [--oracle] [--test]

The authors' stage 2 trains every weight, and on this project's data every such run spread the
sounding map l over the picture (configs/cpu_stage2.yaml). Here the trunks and the localisation
head, hence l, stay exactly the model file's: f(v), l and the teacher p_a (the file's own audio
classifier) of every training cocktail scene are computed once and cached in DIR, and only
W = w_o * D (the dictionary scaled by the affine's weight; the bias cancels in both softmaxes) is
learned, by minimising KL(p_a || p_v) with p_v = softmax(pool_k(W f * l)):

  mean   the authors' global average pool, mean over the cells of W f * l;
  lnorm  sum(W f * l) / sum(l), the l-weighted mean response, which no rescaling of l changes.

After every epoch the validation split's cocktail scenes are scored with the paper's metrics
(dsol.metrics, on class maps softmax(3 W f l) as the engine computes them); the epoch with the best
mean class-aware CIoU@0.3 over the scene kinds is kept. Epoch 0 is the file's own head (stage 1's
K-means dictionary), so the log shows directly whether the KL head beats it. --oracle replaces the
starting dictionary by the mean feature inside each class's boxes on the training solo scenes (true
labels: a diagnostic of how far the trunk separates classes, never a model to ship). --test also
scores the kept head on the test split once, at the end.

DIR gets log.txt, history.json (every epoch's losses and metrics), summary.json and
model.safetensors: the input file with the new dictionary and affine (w_o = 1). Every run is a pure
function of (model file, data, options, seed).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import metrics as M
from .data import COCKTAIL_KINDS, SOLO_KINDS, SceneStore, audio_input, load_manifest
from .export import load_model, read_safetensors, write_safetensors
from .image import preprocess
from .progress import Progress

POOLS = ("mean", "lnorm")
FEATURE_VERSION = 1


def pooled_logits(w: torch.Tensor, fv: torch.Tensor, l: torch.Tensor, pool: str) -> torch.Tensor:
    """(N, K) class logits of p_v: w (K, C), fv (N, C, P), l (N, P)."""
    s = torch.einsum("kc,ncp->nkp", w, fv) * l[:, None, :]
    if pool == "mean":
        return s.mean(dim=2)
    if pool == "lnorm":
        return s.sum(dim=2) / l.sum(dim=1, keepdim=True).clamp_min(1e-6)
    raise ValueError(f"pool must be one of {POOLS}, not {pool!r}")


def class_maps(w: torch.Tensor, fv: torch.Tensor, l: torch.Tensor) -> torch.Tensor:
    """(N, K, P) per-cell class probabilities softmax(3 s), as the engine reports them."""
    return torch.softmax(3.0 * torch.einsum("kc,ncp->nkp", w, fv) * l[:, None, :], dim=1)


@torch.no_grad()
def extract(model, store: SceneStore, indices: list[int], batch: int = 32, desc: str = "features",
            quiet: bool = False) -> dict[str, torch.Tensor]:
    """f(v) (N, C, 196) in fp16, l (N, 196), audio logits (N, K) of the given scenes, eval inputs."""
    fvs, ls, logits = [], [], []
    bar = Progress(len(indices), desc, not quiet)
    for a in range(0, len(indices), batch):
        idx = indices[a:a + batch]
        img = torch.from_numpy(np.stack([preprocess(store.rgb(i)) for i in idx]))
        aud = torch.from_numpy(np.stack([audio_input(store.mel(i)) for i in idx]))
        fv = model.vision(img)
        ga = model.audio(aud)
        fvs.append(fv.flatten(2).half())
        ls.append(model.loc(fv, ga).flatten(1))
        logits.append(model.cls.audio(ga))
        bar.update(len(idx))
    bar.close()
    return {"fv": torch.cat(fvs), "l": torch.cat(ls), "logits": torch.cat(logits)}


def _digest(model_path: Path, scenes, indices: list[int]) -> str:
    h = hashlib.sha256(f"v{FEATURE_VERSION}|".encode())
    h.update(hashlib.sha256(model_path.read_bytes()).digest())
    for i in indices:
        h.update(f"{scenes[i].id}|{scenes[i].image}|{scenes[i].audio}\n".encode())
    return h.hexdigest()[:16]


def cached_features(model, model_path: Path, store: SceneStore, indices: list[int], cache: Path,
                    name: str, quiet: bool) -> dict[str, torch.Tensor]:
    """extract(), read from / written to cache/<name>-<digest>.pt."""
    path = cache / f"{name}-{_digest(model_path, store.scenes, indices)}.pt"
    if path.exists():
        return torch.load(path)
    feats = extract(model, store, indices, desc=name, quiet=quiet)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(feats, tmp)
    tmp.replace(path)
    return feats


def _box_cells(box) -> torch.Tensor:
    """Flat indices of the 14 x 14 cells a normalised box covers (the metrics' rasterisation)."""
    return torch.from_numpy(np.flatnonzero(M.box_mask((tuple(box),), 14).reshape(-1)))


def _object_cells(feats: dict, scenes, indices: list[int], sounding_only: bool):
    """(features (n, C) of every cell inside an object's box, class id per cell, object id per cell)."""
    xs, ys, obj = [], [], []
    n_obj = 0
    for row, i in enumerate(indices):
        for ob in scenes[i].objects:
            if sounding_only and not ob.get("sounding", True):
                continue
            cells = _box_cells(ob["box"])
            if len(cells):
                xs.append(feats["fv"][row][:, cells].T.float())
                ys.append(torch.full((len(cells),), int(ob["class_id"])))
                obj.append(torch.full((len(cells),), n_obj))
                n_obj += 1
    return torch.cat(xs), torch.cat(ys), torch.cat(obj)


@torch.enable_grad()  # whatever the caller's grad mode (dsol.reference turns it off)
def oracle_dictionary(feats: dict, scenes, indices: list[int], cluster_to_class: list[int],
                      kind: str = "mean", seed: int = 1) -> torch.Tensor:
    """(K clusters, C) fitted with the true labels of the training solo scenes' boxes: "mean", the
    mean f(v) inside each class's boxes; "linear", a softmax regression of the in-box cells."""
    x, y, _ = _object_cells(feats, scenes, indices, sounding_only=True)
    k = len(cluster_to_class)
    n_cls = max(cluster_to_class) + 1
    if kind == "mean":
        sums = torch.zeros(n_cls, x.shape[1]).index_add_(0, y, x)
        counts = torch.bincount(y, minlength=n_cls).clamp_min(1)
        means = sums / counts[:, None]
        return torch.stack([means[cluster_to_class[j]] for j in range(k)])
    to_cluster = torch.tensor([cluster_to_class.index(c) if c in cluster_to_class else 0 for c in range(n_cls)])
    target = to_cluster[y]
    scale = x.pow(2).mean().sqrt()
    w = torch.zeros(k, x.shape[1], requires_grad=True)
    opt = torch.optim.Adam([w], lr=0.05)
    torch.manual_seed(seed)
    for _ in range(300):
        loss = F.cross_entropy(x @ w.T / scale, target) + 1e-4 * w.pow(2).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return w.detach() / scale


def box_accuracy(w: torch.Tensor, feats: dict, scenes, indices: list[int], cluster_to_class: list[int]) -> float:
    """Share of objects (sounding or silent) whose mean class response W f over their box peaks at
    their own class: recognition alone, without l."""
    x, y, obj = _object_cells(feats, scenes, indices, sounding_only=False)
    r = x @ w.T
    n = int(obj.max()) + 1
    mean = torch.zeros(n, r.shape[1]).index_add_(0, obj, r) / torch.bincount(obj, minlength=n)[:, None]
    truth = torch.zeros(n, dtype=torch.long).index_copy_(0, obj, y)
    pred = torch.tensor(cluster_to_class)[mean.argmax(dim=1)]
    return float((pred == truth).float().mean())


def score(w: torch.Tensor, feats: dict, scenes, indices: list[int], cluster_to_class: list[int],
          num_classes: int, fraction: float = M.SYNTHETIC_FRACTION) -> dict:
    """Class-aware and loc-only (baseline) CIoU / NSA per scene kind, as dsol.train.evaluate."""
    cm = class_maps(w, feats["fv"].float(), feats["l"]).numpy()
    lmaps = feats["l"].numpy()
    per_kind: dict[str, dict[str, list]] = {}
    for row, i in enumerate(indices):
        s = scenes[i]
        r = per_kind.setdefault(s.kind, {"ca": [], "lo": []})
        r["ca"].append(M.cocktail_image(cm[row].reshape(-1, 14, 14), s.objects, cluster_to_class,
                                        num_classes, fraction))
        r["lo"].append(M.loc_only_image(lmaps[row].reshape(14, 14), s.objects, fraction, num_classes))
    out = {}
    for kind, r in sorted(per_kind.items()):
        def summ(rs):
            return M.summarize_cocktail([x["ciou"] for x in rs], [x["nsa"] for x in rs],
                                        [x["nsa_visible"] for x in rs])
        out[kind] = {"class_aware": summ(r["ca"]), "loc_only": summ(r["lo"]), "scenes": len(r["ca"])}
    out_acc = box_accuracy(w, feats, scenes, indices, cluster_to_class)
    for m in out.values():
        m["box_accuracy"] = out_acc
    return out


def headline(metrics: dict) -> float:
    """Mean class-aware CIoU@0.3 over the cocktail kinds: what the kept epoch maximises."""
    vals = [m["class_aware"]["ciou@0.3"] for m in metrics.values()]
    return float(np.mean(vals)) if vals else 0.0


def best_scale(w: torch.Tensor, evaluate, scales) -> tuple[float, dict]:
    """(c, metrics) of the scale c of W whose class maps score best: the KL fixes W's direction and
    the sharpness of p_v, but the reported maps softmax(3 c W f l) have their own best sharpness."""
    best = None
    for c in scales:
        m = evaluate(w * c)
        if best is None or headline(m) > headline(best[1]):
            best = (float(c), m)
    return best


def _brief(metrics: dict) -> str:
    acc = next(iter(metrics.values()), {}).get("box_accuracy")
    return (f"box acc {acc * 100:.1f}  " if acc is not None else "") + "  ".join(f"{k} CIoU@0.3 {m['class_aware']['ciou@0.3'] * 100:.1f} (l {m['loc_only']['ciou@0.3'] * 100:.1f}) "
                     f"NSA {m['class_aware']['nsa'] * 100:.1f}" for k, m in metrics.items())


@torch.enable_grad()  # whatever the caller's grad mode (dsol.reference turns it off)
def fit(w0: torch.Tensor, train: dict, p_a: torch.Tensor, pool: str, epochs: int, lr: float,
        batch: int, seed: int, evaluate, log, scales=(1.0,), quiet: bool = False) -> tuple[torch.Tensor, list[dict]]:
    """Adam on W with KL(p_a || p_v); returns the best scaled W by evaluate(c W) and the history."""
    gen = torch.Generator().manual_seed(seed)
    w = torch.nn.Parameter(w0.clone())
    opt = torch.optim.Adam([w], lr=lr)
    fv, l = train["fv"], train["l"]
    c0, m0 = best_scale(w.detach(), evaluate, scales)
    hist = [{"epoch": 0, "val": m0, "headline": headline(m0), "scale": c0}]
    log(f"epoch 0 (start), scale {c0:g}: {_brief(m0)}")
    best, best_w = hist[0]["headline"], c0 * w.detach().clone()
    n = fv.shape[0]
    for epoch in range(1, epochs + 1):
        order = torch.randperm(n, generator=gen)
        tot, t0 = 0.0, time.time()
        bar = Progress((n + batch - 1) // batch, f"head e{epoch}", not quiet)
        for a in range(0, n, batch):
            idx = order[a:a + batch]
            log_pv = F.log_softmax(pooled_logits(w, fv[idx].float(), l[idx], pool), dim=1)
            loss = F.kl_div(log_pv, p_a[idx], reduction="batchmean")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot += loss.item() * len(idx)
            bar.update(kl=loss.item())
        bar.close()
        c, m = best_scale(w.detach(), evaluate, scales)
        h = {"epoch": epoch, "kl": tot / n, "time_s": time.time() - t0, "val": m, "headline": headline(m),
             "scale": c, "w_norm": float(w.detach().norm())}
        hist.append(h)
        log(f"epoch {epoch}: KL {h['kl']:.4f}, scale {c:g}: {_brief(m)}")
        if h["headline"] > best:
            best, best_w = h["headline"], c * w.detach().clone()
    return best_w, hist


def write_model(src: Path, dst: Path, w: torch.Tensor, note: str) -> str:
    """The source file with dictionary W and affine (1, 0); returns the new checksum."""
    tensors, meta = read_safetensors(src)
    tensors["dsol.dictionary"] = w.numpy().astype(np.float32)
    tensors["dsol.affine"] = np.array([1.0, 0.0], dtype=np.float32)
    meta.pop("checksum", None)
    meta["source"] = f"{meta.get('source', '?')}; {note}"
    return write_safetensors(dst, tensors, meta)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m dsol.head_fit", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="fp32 model file (its trunks and l stay fixed)")
    ap.add_argument("--data", required=True, help="the builder's manifest.json")
    ap.add_argument("--out", required=True, help="run folder")
    ap.add_argument("--pool", choices=POOLS, default="lnorm")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--lr", type=float, default=0.02, help="Adam step, relative to the RMS of the starting W")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--kinds", default="synthetic,free", help="training scene kinds (cocktail, and solo)")
    ap.add_argument("--scales", default="1", help="comma-separated scales of W tried for the reported maps")
    ap.add_argument("--oracle", choices=("mean", "linear"),
                    help="start from a dictionary fitted with the true labels (diagnostic)")
    ap.add_argument("--test", action="store_true", help="score the kept head on the test split at the end")
    ap.add_argument("--cache", help="feature cache folder (default OUT/cache; runs on one model may share one)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    logf = open(out / "log.txt", "a")

    def log(msg: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        print(line, flush=True)
        logf.write(line + "\n")
        logf.flush()

    model_path = Path(args.model)
    model = load_model(model_path)
    meta = read_safetensors(model_path)[1]
    c2c = json.loads(meta["cluster_to_class"])
    classes, scenes = load_manifest(args.data)
    kinds = [k for k in args.kinds.split(",") if k]
    bad = [k for k in kinds if k not in COCKTAIL_KINDS + SOLO_KINDS]
    if bad:
        raise SystemExit(f"--kinds: {bad} are not scene kinds {COCKTAIL_KINDS + SOLO_KINDS}")
    try:
        scales = [float(c) for c in args.scales.split(",")]
    except ValueError:
        raise SystemExit(f"--scales: not a list of numbers: {args.scales!r}")
    log(f"head_fit {' '.join(argv if argv is not None else sys.argv[1:])}")
    by_split = {sp: [s for s in scenes if s.split == sp] for sp in ("train", "val", "test")}
    stores = {sp: SceneStore(v, cache_images=False) for sp, v in by_split.items()}
    tr = by_split["train"]
    train_idx = [i for i, s in enumerate(tr) if s.kind in kinds]
    if not train_idx:
        raise SystemExit(f"{args.data}: no training scenes of kinds {kinds}")
    solo_idx = [i for i, s in enumerate(tr) if s.kind in SOLO_KINDS]
    val_idx = [i for i, s in enumerate(by_split["val"]) if s.kind in COCKTAIL_KINDS]
    cache = Path(args.cache) if args.cache else out / "cache"
    with torch.no_grad():
        train = cached_features(model, model_path, stores["train"], train_idx, cache, "train", args.quiet)
        val = cached_features(model, model_path, stores["val"], val_idx, cache, "val", args.quiet)
        p_a = torch.softmax(train["logits"], dim=1)
        w_o = float(model.dsol.affine[0])
        w0 = w_o * model.dsol.dictionary.detach().clone()
    log(f"train cocktail {len(train_idx)} ({','.join(kinds)}), val cocktail {len(val_idx)}; "
        f"teacher p_a max mean {float(p_a.max(1).values.mean()):.3f}")
    if args.oracle:
        solo = cached_features(model, model_path, stores["train"], solo_idx, cache, "solo", args.quiet)
        d = oracle_dictionary(solo, tr, solo_idx, c2c, args.oracle, args.seed)
        # same overall scale as the file's head, so the starting maps are as peaked
        w0 = d * (w0.norm() / d.norm().clamp_min(1e-12))
        log(f"oracle ({args.oracle}): dictionary from the true boxes of the training solo scenes; "
            f"box accuracy there {box_accuracy(d, solo, tr, solo_idx, c2c) * 100:.1f} %")

    def evaluate(w):
        return score(w, val, by_split["val"], val_idx, c2c, len(classes))

    lr = args.lr * float(w0.pow(2).mean().sqrt())
    best_w, hist = fit(w0, train, p_a, args.pool, args.epochs, lr, args.batch, args.seed, evaluate, log,
                       scales, args.quiet)
    best = max(hist, key=lambda h: h["headline"])
    summary = {"args": vars(args), "lr_abs": lr, "kept_epoch": best["epoch"], "start_val": hist[0]["val"],
               "kept_val": best["val"]}
    log(f"kept epoch {best['epoch']}: {_brief(best['val'])}")
    if args.test:
        test_idx = [i for i, s in enumerate(by_split["test"]) if s.kind in COCKTAIL_KINDS]
        test = cached_features(model, model_path, stores["test"], test_idx, cache, "test", args.quiet)
        summary["start_test"] = score(w0 * hist[0]["scale"], test, by_split["test"], test_idx, c2c, len(classes))
        summary["kept_test"] = score(best_w, test, by_split["test"], test_idx, c2c, len(classes))
        log(f"test, start: {_brief(summary['start_test'])}")
        log(f"test, kept:  {_brief(summary['kept_test'])}")
    note = (f"head_fit pool {args.pool} epochs {args.epochs} lr {args.lr} seed {args.seed} "
            f"kept epoch {best['epoch']}{f' oracle {args.oracle}' if args.oracle else ''}")
    summary["checksum"] = write_model(model_path, out / "model.safetensors", best_w, note)
    (out / "history.json").write_text(json.dumps(hist, indent=1) + "\n")
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    log(f"wrote {out / 'model.safetensors'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
