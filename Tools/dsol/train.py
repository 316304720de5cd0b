"""Two-stage DSOL training (SPEC §4).

    cd Tools && python3 -m dsol.train --config dsol/configs/dsol_default.yaml \
        --data DATA/manifest.json|PACK.npz --out runs/r1 [--device cpu|cuda] [--resume] [--seed S] \
        [--width W] [--limit N] [--threads T]
    cd Tools && python3 -m dsol.train --benchmark [--width 64] [--batch 32] [--threads 2]

--data: the builder's manifest.json (or its folder), a training pack (dsol.pack), or a real-MUSIC
folder (see dsol.data).
Several GPUs (or CPU processes): `torchrun --standalone --nproc_per_node N -m dsol.train ... --device cuda`
shares every global batch between the processes and gives one process's losses (dsol.distributed).
--limit N: at most N batches per training epoch/round (quick runs, timing).
--time-budget S: fit the number of stage-1 epochs to S seconds (Trainer.fit_time_budget).
--init CKPT: a new run that starts from another run's model weights (e.g. its stage1_final.pt), for
going on on a changed data set; recorded in the run's config.yaml as init_from. With stage1.epochs 0
it runs stage 2 alone on a stage-1 checkpoint's dictionary and pseudo-labels (stage1_final.pt).

Stage 1 (single-source scenes), per epoch:
  1. localisation: each audio with its own frame (label 1) and another clip's frame (label 0);
     BCE on the matching score max(l). Adam lr 1e-4, wd 1e-4 on backbones + localisation head.
  2. clustering: o = mean over the 196 cells of f(v) * mask, mask = (l > 0.05) grown by one cell
     (4-neighbour), for every training clip (no augmentation, eval mode); K-means (k-means++,
     restarts) on L2-normalised o; dictionary = per-cluster mean of the un-normalised o.
  3. classification: both classifiers re-initialised (N(0, 0.01), bias 0) and trained with the
     backbones for `class_epochs` epochs, CE(vision) + CE(audio) on the cluster ids; heads on a
     fresh Adam lr 1e-3, backbones on the stage's Adam (lr 1e-4), wd 1e-4.
Stage 2 (cocktail scenes): dictionary fixed, a frozen copy of the stage-1 model gives p_a;
  loss = KL(p_a || p_v) + lambda * L1, L1 = (BCE(max l of the true pair, 1) +
  BCE(the four quadrant maxima of l for a mismatched scene, 0)) / 2; Adam 1e-4, wd 1e-4,
  everything trainable (the dictionary stays fixed). stage2.teacher_temperature softens p_a
  (1 = the authors' loss); stage2.keep_l > 0 adds keep_l * BCE(l, the teacher's l) on the true pairs,
  which holds the sounding map near stage 1's while KL trains the class maps (0 = the authors' loss).
End: the student's audio classifier is refitted to the teacher's p_a on frozen features (stage 2
moves the audio trunk but its loss never touches the student's classifier, whose p_a the
appliance reports; `stage2.refit_audio_head`), clusters are mapped to
classes with the Hungarian method on the training labels, and the model is exported
(dsol.export) with `cluster_to_class` and the class names in cluster order.

Run folder: config.yaml, log.txt, metrics.jsonl, checkpoints/ (after every epoch/round; the
last `keep_checkpoints` kept, plus stage1_final.pt, and state16.pt: the final weights in float16 with
the pseudo-labels, config and history, for --init), cache/ (mel energies), final.pt,
final.json, model.safetensors. --resume (with --config: a changed schedule, e.g. more epochs, whose
first steps are the ones already done) restarts from the last completed epoch/round with the
same model, optimiser and pseudo-label state; all randomness derives from (seed, stage, epoch,
position), so on CPU a resumed run is bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import copy
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml

from . import metrics as M
from .data import (SOLO_KINDS, Augment, ClassifyDataset, PairDataset, PlainDataset,
                   SceneStore, audio_input, batch_plan, load_annotation, load_manifest, load_music, loader)
from .device_data import DeviceStore, check_augment, device_loader
from .distributed import Dist, convert_batchnorm
from .export import export_model
from .kmeans import kmeans, l2_normalize, nmi, object_features
from .losses import all_pairs_loss, quadrant_l1
from .progress import GpuUtilisation, Progress
from .model import DSOL, MUSIC_CLASSES
from .pack import read_pack

CKPT_VERSION = 1

DEFAULTS: dict = {
    "seed": 10,
    "width": 64,
    "threads": None,            # torch.set_num_threads; None = PyTorch's default
    "workers": 0,               # DataLoader worker processes (0 = in the main process)
    "cache_images": True,
    "clusters": None,           # None = number of classes of the data set
    "keep_checkpoints": 2,
    "deterministic": True,
    "limit": None,              # at most N batches per training epoch/round (--limit; smoke runs)
    "init_from": None,          # set by --init: the checkpoint this run's weights started from
    "vision_init": None,        # set by --vision-init: the vision trunk's starting weights (dsol.pretrain, torchvision)
    "data": {"music": {"fps": 1.0, "val_fraction": 0.1, "frames_per_clip": None,
                       "solo_annotation": None, "duet_annotation": None, "classes": None}},
    "augment": {"enabled": True, "flip": 0.5, "crop_min": 0.85, "brightness": 0.3,
                "saturation": 0.3, "gain_db": 6.0, "eq_db": 0.0, "pitch_semitones": 0.0,
                "noise_p": 0.0, "noise_snr_db": [5.0, 30.0], "time_masks": 0, "time_mask_frames": 20,
                "freq_masks": 0, "freq_mask_bands": 8},
    "stage1": {"epochs": 15, "batch_size": 32, "lr": 1e-4, "head_lr": 1e-3, "weight_decay": 1e-4,
               "class_epochs": 3, "class_batch_size": 32, "mask_threshold": 0.05, "mask_relative": None,
               "kmeans_restarts": 10, "kmeans_iters": 300, "warmup_epochs": 0, "cluster_every": 1,
               "max_batches": None, "scale_init": 5.0,
               "all_pairs": False, "lr_steps": None, "infonce": 0.0},
    # all_pairs: each audio against every picture of its batch; lr_steps: [[from_epoch, factor], ...];
    # infonce: weight of a batch-softmax matching term added to the BCE (all_pairs only)
    "stage2": {"epochs": 5, "batch_size": 32, "lr": 1e-4, "weight_decay": 1e-4, "lambda": 0.5,
               "kl": "batchmean", "kinds": ["synthetic", "free", "music_duet"],
               "affine_init": "data", "affine_scale": 10.0, "teacher_temperature": 1.0, "keep_l": 0.0, "affine_lr": None, "refit_audio_head": True, "refit_steps": 300,
               "max_batches": None},
    "speed": {"freeze_vision": 0, "freeze_audio": 0, "freeze_from_epoch": 0, "channels_last": False,
              "device_data": False, "bf16": False, "cudnn_benchmark": False, "sync_every": 25},
    # device_data: pictures and clips resident on the training device, batches built there (dsol.device_data);
    # bf16: the trunks under bfloat16 autocast (heads, losses, K-means in float32); cudnn_benchmark: cuDNN
    # autotuning on CUDA (not bit-reproducible); sync_every: steps between progress-bar updates (host syncs)
    "eval": {"every": 1, "limit": None, "batch_size": 32, "synthetic_fraction": 0.5,
             "duet_fraction": 0.2, "final_splits": ["val", "test"]},
}


# ---------------------------------------------------------------- config

def deep_merge(base: dict, over: dict | None) -> dict:
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def check_config(cfg: dict, schema: dict = DEFAULTS, where: str = "") -> None:
    """Refuse keys the trainer does not know (a mistyped setting would otherwise be ignored in
    silence), naming the allowed ones; sections must be mappings."""
    if not isinstance(cfg, dict):
        raise ValueError(f"{where or 'config'}: expected a mapping, got {type(cfg).__name__}")
    for k, v in cfg.items():
        name = f"{where}.{k}" if where else str(k)
        if k not in schema:
            raise ValueError(f"unknown config key '{name}'; allowed here: {', '.join(sorted(schema))}")
        if isinstance(schema[k], dict) and v is not None:
            check_config(v, schema[k], name)


def load_config(path: str | Path | None) -> dict:
    cfg = {}
    if path:
        cfg = yaml.safe_load(Path(path).read_text()) or {}
        try:
            check_config(cfg)
        except ValueError as e:
            raise SystemExit(f"{path}: {e}")
    return deep_merge(DEFAULTS, cfg)


# ---------------------------------------------------------------- small utilities

def init_weights(model: DSOL, scale_init: float) -> None:
    """torchvision ResNet init for the trunks (kaiming-normal fan-out convs, BN 1/0)."""
    for m in list(model.vision.modules()) + list(model.audio.modules()):
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    with torch.no_grad():
        model.loc.scale.fill_(scale_init)


def reinit_classifiers(model: DSOL, gen: torch.Generator) -> None:
    for lin in (model.cls.audio, model.cls.vision):
        with torch.no_grad():
            lin.weight.copy_(torch.randn(lin.weight.shape, generator=gen) * 0.01)
            lin.bias.zero_()


STAGES = ("stem", "layer1", "layer2", "layer3", "layer4")


def trunk(net, x: torch.Tensor, n_frozen: int) -> torch.Tensor:
    """ResNetS5 forward with the first n_frozen stages (stem, layer1..4) under no_grad."""
    def stage(i, y):
        if i == 0:
            return net.maxpool(F.relu(net.bn1(net.conv1(y))))
        return getattr(net, f"layer{i}")(y)

    for i in range(5):
        if i < n_frozen:
            with torch.no_grad():
                x = stage(i, x)
        else:
            x = stage(i, x)
    return x


def stage_modules(net, n: int) -> list[nn.Module]:
    mods = []
    for i in range(n):
        mods += [net.conv1, net.bn1] if i == 0 else [getattr(net, f"layer{i}")]
    return mods


# ---------------------------------------------------------------- the trainer

class Trainer:
    def __init__(self, cfg: dict, data_path: str, out: str | Path, device: str = "cpu", quiet: bool = False,
                 dist: Dist | None = None):
        self.cfg = cfg
        self.out = Path(out)
        self.device = torch.device(device)
        # several processes (torchrun, dsol.distributed): rank 0 alone logs, writes and evaluates
        self.dist = dist or Dist.current()
        self.quiet = quiet or not self.dist.main
        self.seed = int(cfg["seed"])
        self.data_path = str(data_path)
        (self.out / "checkpoints").mkdir(parents=True, exist_ok=True)
        self.log_file = open(self.out / "log.txt", "a", encoding="utf-8") if self.dist.main else None
        if cfg["threads"]:
            torch.set_num_threads(int(cfg["threads"]))
        if cfg["speed"]["cudnn_benchmark"] and self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
            torch.backends.cudnn.deterministic = False
        elif cfg["deterministic"]:
            torch.backends.cudnn.benchmark = False
            torch.backends.cudnn.deterministic = True
        self._device_stores: dict[int, DeviceStore] = {}
        self.aug = Augment.from_config(cfg["augment"])
        if cfg["speed"]["device_data"]:
            try:
                check_augment(self.aug)
            except ValueError as e:
                raise SystemExit(str(e))
        self._load_data()
        self.n_clusters = int(cfg["clusters"] or len(self.classes))
        torch.manual_seed(self.seed)
        self.model = DSOL(width=int(cfg["width"]), num_classes=self.n_clusters,
                          classes=[f"cluster{j}" for j in range(self.n_clusters)])
        init_weights(self.model, float(cfg["stage1"]["scale_init"]))
        self.model.to(self.device)
        convert_batchnorm(self.model, self.dist)  # global-batch statistics across processes (several only)
        self.dist.broadcast_module(self.model)
        if cfg["speed"]["channels_last"]:
            self.model.to(memory_format=torch.channels_last)
        self.opt1 = self._adam(self._backbone_params(), cfg["stage1"]["lr"], cfg["stage1"]["weight_decay"])
        self.opt2 = None
        self.teacher: DSOL | None = None
        self.pseudo: torch.Tensor | None = None      # cluster id per training solo clip
        self.cluster_to_class: list[int] | None = None
        self._budget_base: tuple[int, list] | None = None  # the configured stage-1 schedule, for --time-budget
        self.history: list[dict] = []
        self.step = 0
        self.plan = self._plan()

    # ------------------------------------------------ data

    def _load_data(self) -> None:
        p = Path(self.data_path)
        mcfg = self.cfg["data"]["music"]
        if p.is_dir() and (p / "manifest.json").exists():
            p = p / "manifest.json"
        jpegs = mel = None
        if p.is_file() and p.suffix == ".npz":  # a training pack (dsol.pack): pictures and clips inside
            self.classes, scenes, jpegs, mel = read_pack(p)
        elif p.is_file():
            self.classes, scenes = load_manifest(p)
        else:
            self.classes = list(mcfg.get("classes") or MUSIC_CLASSES)
            scenes, exclude = [], set()
            for kind, key in (("music_solo", "solo_annotation"), ("music_duet", "duet_annotation")):
                if mcfg.get(key):
                    test = load_annotation(mcfg[key], kind=kind, split="test", fps=mcfg["fps"],
                                           classes=self.classes)
                    exclude |= {os.path.realpath(s.image) for s in test}
                    scenes += test
            for kind, sub in (("music_solo", "solo"), ("music_duet", "duet")):
                root = p / sub if (p / sub).is_dir() else (p if kind == "music_solo" else None)
                if root is not None and (root / "frames").is_dir():
                    scenes += load_music(root, self.classes, kind, mcfg["fps"], mcfg["val_fraction"],
                                         self.seed, mcfg.get("frames_per_clip"), exclude)
        cache = self.out / "cache"
        split_idx = {sp: [k for k, s in enumerate(scenes) if s.split == sp] for sp in ("train", "val", "test")}
        by_split = {sp: [scenes[k] for k in idx] for sp, idx in split_idx.items()}
        self.stores = {sp: SceneStore(by_split[sp], self.cfg["cache_images"], cache,
                                      None if jpegs is None else [jpegs[k] for k in idx],
                                      None if mel is None else mel[idx])
                       for sp, idx in split_idx.items()}
        tr = self.stores["train"].scenes
        self.solo_idx = [i for i, s in enumerate(tr) if s.kind in SOLO_KINDS]
        kinds2 = set(self.cfg["stage2"]["kinds"])
        self.cocktail_idx = [i for i, s in enumerate(tr) if s.kind in kinds2]
        if len(self.solo_idx) < 2:
            raise SystemExit(f"{self.data_path}: fewer than 2 training solo scenes")
        self.log(f"data: {len(self.classes)} classes; train solo {len(self.solo_idx)}, "
                 f"train cocktail {len(self.cocktail_idx)}, val {len(by_split['val'])}, test {len(by_split['test'])}")

    def _preload(self, split: str) -> None:
        """Mel energies (memory + disk cache) and, with cache_images, the decoded pictures, so
        that forked loader workers share them."""
        st = self.stores[split]
        if st._mel is None and len(st):
            bar = Progress(len(st), f"audio {split}", not self.quiet)
            st.load_audio(progress=bar.update)
            bar.close()
        if st.cache_images and len(st._rgb) < len(st):
            bar = Progress(len(st), f"images {split}", not self.quiet)
            for i in range(len(st)):
                st.rgb(i)
                bar.update()
            bar.close()

    # ------------------------------------------------ plan, logging, checkpoints

    def _plan(self) -> list[tuple[str, int]]:
        s1, s2 = self.cfg["stage1"], self.cfg["stage2"]
        steps = []
        e1 = int(s1["epochs"])
        for e in range(e1):
            steps.append(("s1_loc", e))
            due = e >= int(s1["warmup_epochs"]) and (e - int(s1["warmup_epochs"])) % max(1, int(s1["cluster_every"])) == 0
            if due or e == e1 - 1:  # the last epoch always clusters: stage 2 needs its dictionary
                steps.append(("s1_cls", e))
        if e1 == 0 and not self.cfg["init_from"]:  # with --init, stage 1 comes from the checkpoint
            steps.append(("s1_cls", 0))
        if int(s2["epochs"]) > 0 and self.cocktail_idx:
            steps.append(("s2_init", 0))
            steps += [("s2", e) for e in range(int(s2["epochs"]))]
        steps.append(("final", 0))
        return steps

    def log(self, msg: str) -> None:
        if self.log_file is None:  # not rank 0
            return
        line = f"{time.strftime('%H:%M:%S')} {msg}"
        self.log_file.write(line + "\n")
        self.log_file.flush()
        if not self.quiet:
            print(line, flush=True)

    def record(self, entry: dict) -> None:
        self.history.append(entry)
        if not self.dist.main:
            return
        with open(self.out / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")

    def state(self) -> dict:
        return {
            "version": CKPT_VERSION, "step": self.step, "plan": [list(s) for s in self.plan],
            "config": self.cfg, "model": self.model.state_dict(),
            # stage 1's optimiser is not needed once stage 2 has begun
            "opt1": self.opt1.state_dict() if self.opt2 is None else None,
            "opt2": self.opt2.state_dict() if self.opt2 else None,
            "teacher": self.teacher.state_dict() if self.teacher is not None else None,
            "pseudo": self.pseudo, "cluster_to_class": self.cluster_to_class,
            "data_classes": self.classes, "history": self.history,
            # All sampling derives from (seed, stage, epoch, position); the global torch state
            # is kept only for completeness.
            "rng": {"torch": torch.get_rng_state()},
        }

    def save(self, name: str) -> Path | None:
        if not self.dist.main:  # every rank holds the same state; rank 0 writes it
            return None
        ck = self.out / "checkpoints"
        path = ck / f"{self.step:03d}_{name}.pt"
        tmp = path.with_suffix(".tmp")
        torch.save(self.state(), tmp)
        os.replace(tmp, path)
        try:  # last.pt: a hard link to the newest checkpoint (a copy where links fail)
            if (ck / "last.pt").exists() or (ck / "last.pt").is_symlink():
                (ck / "last.pt").unlink()
            os.link(path, ck / "last.pt")
        except OSError:
            import shutil
            shutil.copyfile(path, ck / "last.pt")
        keep = int(self.cfg["keep_checkpoints"])
        old = sorted(p for p in ck.glob("[0-9][0-9][0-9]_*.pt"))
        for p in old[:-keep] if keep > 0 else []:
            p.unlink()
        return path

    def load(self, path: str | Path) -> None:
        st = torch.load(path, map_location="cpu", weights_only=True)
        if st.get("version") != CKPT_VERSION:
            raise SystemExit(f"{path}: checkpoint version {st.get('version')}")
        self.model.load_state_dict(st["model"])
        self.model.to(self.device)
        if st["opt1"] is not None:
            self.opt1.load_state_dict(st["opt1"])
        if st["teacher"] is not None:
            self._make_teacher()
            self.teacher.load_state_dict(st["teacher"])
        if st["opt2"] is not None:
            self._make_opt2()
            self.opt2.load_state_dict(st["opt2"])
        self.pseudo = st["pseudo"]
        self.cluster_to_class = st["cluster_to_class"]
        self.history = list(st["history"])
        self.step = int(st["step"])
        plan, done = [list(s) for s in self.plan], int(st["step"])
        if plan[:done] != st["plan"][:done]:
            raise SystemExit(f"{path}: the steps this run finished are not the start of this configuration's plan")
        if plan != st["plan"]:  # e.g. more stage-1 epochs: a longer schedule that continues the same run
            self.log(f"resuming with a changed plan: {len(st['plan'])} -> {len(plan)} steps, first {done} already done")
        torch.set_rng_state(st["rng"]["torch"])
        self.dist.broadcast_module(self.model)

    def init_from(self, path: str | Path) -> None:
        """Start from the model weights of another run's checkpoint, e.g. to go on training on a changed
        data set: the schedule and optimisers start afresh, and so do the pseudo-labels unless
        stage1.epochs is 0 (stage 2 alone takes the checkpoint's)."""
        try:
            st = torch.load(path, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, ValueError) as e:
            raise SystemExit(f"--init {path}: not a readable checkpoint ({e})")
        state = st.get("model", st.get("state_dict")) if isinstance(st, dict) else None
        if state is None:
            raise SystemExit(f"--init {path}: holds no model weights")
        try:
            self.model.load_state_dict(state)
        except RuntimeError as e:
            raise SystemExit(f"--init {path}: does not fit this configuration's model "
                             f"({str(e).splitlines()[0]})")
        if int(self.cfg["stage1"]["epochs"]) == 0:  # stage 2 alone: stage 1's dictionary and pseudo-labels
            pseudo, mapping = st.get("pseudo"), st.get("cluster_to_class")
            if pseudo is None or mapping is None:
                raise SystemExit(f"--init {path}: stage1.epochs 0 (stage 2 alone) needs a stage-1 checkpoint "
                                 f"with its pseudo-labels, e.g. a run's checkpoints/stage1_final.pt")
            if len(pseudo) != len(self.solo_idx):
                raise SystemExit(f"--init {path}: its pseudo-labels cover {len(pseudo)} training solo scenes, "
                                 f"this data set has {len(self.solo_idx)}")
            self.pseudo, self.cluster_to_class = pseudo, list(mapping)
            self._init_affine()  # from this config's stage2.affine_init / affine_scale
            self.log(f"stage 2 from the stage-1 dictionary and pseudo-labels in {path}, "
                     f"affine {[round(x, 4) for x in self.model.dsol.affine.tolist()]}")
        self.log(f"initialised from the weights in {path}")

    def vision_init(self, path: str | Path) -> None:
        """Start the vision trunk from dsol.pretrain's vision.pt or from a torchvision-layout ResNet-18
        state dict (its fc layer is dropped; layer4's stride does not change any shape)."""
        try:
            st = torch.load(path, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, ValueError) as e:
            raise SystemExit(f"--vision-init {path}: not a readable weights file ({e})")
        if isinstance(st, dict) and isinstance(st.get("vision"), dict):
            sd = st["vision"]
        elif isinstance(st, dict) and isinstance(st.get("state_dict", st.get("model")), dict):
            sd = st.get("state_dict", st.get("model"))
        else:
            sd = st
        if not isinstance(sd, dict):
            raise SystemExit(f"--vision-init {path}: holds no state dict")
        sd = {k.removeprefix("module."): v for k, v in sd.items() if not k.removeprefix("module.").startswith("fc.")}
        own = self.model.vision.state_dict()
        missing = sorted(set(own) - set(sd) - {k for k in own if k.endswith("num_batches_tracked")})
        extra = sorted(set(sd) - set(own))
        if missing or extra:
            raise SystemExit(f"--vision-init {path}: not a ResNet-18 trunk (missing {missing[:3]}, "
                             f"unexpected {extra[:3]})")
        bad = [f"{k} {tuple(v.shape)} (this model: {tuple(own[k].shape)})" for k, v in sd.items()
               if tuple(v.shape) != tuple(own[k].shape)]
        if bad:
            raise SystemExit(f"--vision-init {path}: shapes do not fit width {self.cfg['width']}: {bad[0]}")
        self.model.vision.load_state_dict(sd, strict=False)
        self.log(f"vision trunk initialised from {path}")

    # ------------------------------------------------ optimisers, freezing

    def _adam(self, params, lr, wd):
        return torch.optim.Adam(params, lr=float(lr), betas=(0.9, 0.999), weight_decay=float(wd))

    def _backbone_params(self) -> list[nn.Parameter]:
        m = self.model
        return list(m.vision.parameters()) + list(m.audio.parameters()) + list(m.loc.parameters())

    def _make_opt2(self) -> None:
        s2 = self.cfg["stage2"]
        params = [p for n, p in self.model.named_parameters() if n not in ("dsol.dictionary", "dsol.affine")]
        groups = [{"params": params},
                  {"params": [self.model.dsol.affine], "lr": float(s2["affine_lr"] or s2["lr"])}]
        self.opt2 = self._adam(groups, s2["lr"], s2["weight_decay"])

    def _make_teacher(self) -> None:
        self.teacher = copy.deepcopy(self.model).eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)

    def _stage1_lr(self, epoch: int) -> None:
        """Stage-1 backbone learning rate for this epoch: lr times the factor of the last lr_steps
        entry [from_epoch, factor] reached (a step schedule; none = constant)."""
        s1 = self.cfg["stage1"]
        factor = 1.0
        for start, f in s1["lr_steps"] or []:
            if epoch >= int(start):
                factor = float(f)
        for g in self.opt1.param_groups:
            g["lr"] = float(s1["lr"]) * factor

    def _frozen(self, stage1_epoch: int | None) -> tuple[int, int]:
        sp = self.cfg["speed"]
        if stage1_epoch is not None and stage1_epoch < int(sp["freeze_from_epoch"]):
            return 0, 0
        return int(sp["freeze_vision"]), int(sp["freeze_audio"])

    def _train_mode(self, frozen: tuple[int, int]) -> None:
        self.model.train()
        for m in stage_modules(self.model.vision, frozen[0]) + stage_modules(self.model.audio, frozen[1]):
            m.eval()

    def _to(self, x: torch.Tensor, image: bool = False) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        if image and self.cfg["speed"]["channels_last"]:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _features(self, images, audio, frozen=(0, 0)):
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bool(self.cfg["speed"]["bf16"])):
            fv = trunk(self.model.vision, images, frozen[0])
            ga = torch.amax(trunk(self.model.audio, audio, frozen[1]), dim=(2, 3))
        return fv.float(), ga.float()

    def _loader(self, ds, plan):
        if not self.cfg["speed"]["device_data"]:
            return loader(ds, plan, int(self.cfg["workers"]))
        key = id(ds.store)
        if key not in self._device_stores:
            split = next(sp for sp, st in self.stores.items() if st is ds.store)
            bar = Progress(len(ds.store), f"to {self.device.type} {split}", not self.quiet)
            self._device_stores[key] = DeviceStore(ds.store, self.device, bar.update)
            bar.close()
        return device_loader(ds, plan, self._device_stores[key])

    def _synced(self, i: int, n: int) -> bool:
        """Whether step i of n reads values back from the device (progress bar); on a GPU every read
        is a host synchronisation that stalls the queue of kernels."""
        every = int(self.cfg["speed"]["sync_every"] or 1) if self.device.type != "cpu" else 1
        return (i + 1) % every == 0 or i + 1 == n

    def _limit(self, section: str) -> int | None:
        v = self.cfg["limit"] or self.cfg[section]["max_batches"]
        return int(v) if v else None

    def _epoch(self, ds, plan: list[list[int]], desc: str, step, opts) -> dict:
        """One pass of a training phase over plan: step(batch) -> (loss, samples, {name: sum over the
        batch}) computes a batch's loss, which is then minimised with every optimiser in opts. Running
        sums stay on the device (read at the end, and by the bar every sync_every steps); returns the
        per-sample means ("loss" and step's names) and the pass's timing and throughput."""
        bar = Progress(len(plan), desc, not self.quiet)
        util = GpuUtilisation(self.device)
        sums: dict = {}
        n, t0 = 0, time.time()
        params = [p for o in opts for g in o.param_groups for p in g["params"]]
        # several processes: each loads its share of every global batch; step() gathers what the
        # loss needs and returns the global batch's loss and size (dsol.distributed)
        for bi, b in enumerate(self._loader(ds, self.dist.shard_plan(plan))):
            loss, k, extra = step(b)
            for o in opts:
                o.zero_grad(set_to_none=True)
            loss.backward()
            self.dist.average_gradients(params)
            for o in opts:
                o.step()
            for name, v in [("loss", loss * k), *extra.items()]:
                sums[name] = sums.get(name, 0.0) + v.detach()
            n += k
            if self._synced(bi, len(plan)):
                bar.update(bi + 1 - bar.n, loss=loss.item())
        bar.close()
        dt = time.time() - t0
        out = {name: float(v) / max(n, 1) for name, v in sums.items()}
        out.update({"batches": len(plan), "sec_per_batch": dt / max(len(plan), 1), "time_s": dt,
                    "pairs_per_s": n / max(dt, 1e-9), **util.stop()})
        return out

    # ------------------------------------------------ stage 1

    def stage1_loc(self, epoch: int) -> dict:
        s1 = self.cfg["stage1"]
        self._stage1_lr(epoch)
        frozen = self._frozen(epoch)
        self._train_mode(frozen)
        all_pairs = bool(s1["all_pairs"])
        infonce = float(s1["infonce"] or 0.0)
        ds = PairDataset(self.stores["train"], self.solo_idx, self.seed, self.aug, negatives=not all_pairs)
        ds.set_tag(1, epoch)
        rng = np.random.default_rng([self.seed, 1, epoch])
        plan = batch_plan(len(ds), int(s1["batch_size"]), rng, True, self._limit("stage1"))

        def step(b):
            audio = self._to(b["audio"])
            bsz = audio.shape[0]
            if all_pairs:
                # Every audio against every picture of the batch: N positives and N(N-1) mismatches
                # from one trunk pass; each half weighs as much as the other.
                fv, ga = self._features(self._to(b["pos"], image=True), audio, frozen)
                if self.dist.active:  # every rank's embeddings: the global batch's negatives
                    loc = self.model.loc
                    logits = loc.logits_of_embeddings(self.dist.gather(loc.embed_vision(fv)),
                                                      self.dist.gather(loc.embed_audio(ga)))
                    bsz = logits.shape[0]
                else:
                    logits = self.model.loc.pair_logits(fv, ga)
                scores = torch.sigmoid(logits)
                eye = torch.eye(bsz, dtype=torch.bool, device=scores.device)
                loss = all_pairs_loss(logits, infonce)
                score = torch.cat([scores[eye], scores[~eye]])
                target = torch.cat([torch.ones(bsz), torch.zeros(bsz * (bsz - 1))]).to(score)
                weight = torch.cat([torch.full((bsz,), 0.5 / bsz),
                                    torch.full((bsz * (bsz - 1),), 0.5 / max(1, bsz * (bsz - 1)))]).to(score)
            else:
                images = self._to(torch.cat([b["pos"], b["neg"]]), image=True)
                fv, ga = self._features(images, audio, frozen)
                l = self.model.loc(fv, torch.cat([ga, ga]))
                score = torch.amax(l, dim=(1, 2, 3))
                if self.dist.active:  # the global batch's positives, then its negatives
                    score = torch.cat([self.dist.gather(score[:bsz]), self.dist.gather(score[bsz:])])
                    bsz = score.shape[0] // 2
                target = torch.cat([torch.ones(bsz), torch.zeros(bsz)]).to(score)
                weight = torch.full_like(score, 1.0 / score.numel())
                loss = F.binary_cross_entropy(score, target)
            balanced = (((score > 0.5).float() == target).float() * weight).sum()  # balanced accuracy
            return loss, bsz, {"match_acc": balanced * bsz}

        return self._epoch(ds, plan, f"s1 e{epoch} loc", step, [self.opt1])

    @torch.no_grad()
    def extract_objects(self, split: str, indices: list[int]) -> torch.Tensor:
        """Masked object features o (N, D) of the given scenes (eval mode, no augmentation)."""
        self.model.eval()
        thr = float(self.cfg["stage1"]["mask_threshold"])
        rel = self.cfg["stage1"]["mask_relative"]
        if self.dist.active:  # each rank its share, gathered in order
            a, z = self.dist.shard_bounds(len(indices))[self.dist.rank]
            mine = self._extract(split, list(indices)[a:z], thr, rel).to(self.device)
            return self.dist.gather(mine).cpu()
        return self._extract(split, indices, thr, rel)

    def _extract(self, split: str, indices: list[int], thr: float, rel) -> torch.Tensor:
        ds = PlainDataset(self.stores[split], indices)
        plan = batch_plan(len(ds), int(self.cfg["eval"]["batch_size"]), None, False)
        out = [torch.zeros(0, self.model.feat_dim)]
        bar = Progress(len(plan), "extract o", not self.quiet)
        for b in self._loader(ds, plan):
            fv, ga = self._features(self._to(b["image"], True), self._to(b["audio"]))
            l = self.model.loc(fv, ga)
            out.append(object_features(fv, l, thr, rel).float().cpu())
            bar.update()
        bar.close()
        return torch.cat(out)

    def stage1_cluster(self, epoch: int) -> dict:
        s1 = self.cfg["stage1"]
        t0 = time.time()
        o = self.extract_objects("train", self.solo_idx).double().numpy()
        labels = inertia = None
        if self.dist.main:  # several processes: K-means on rank 0, its labels to all
            labels, _, inertia = kmeans(l2_normalize(o), self.n_clusters,
                                        seed=int(np.random.SeedSequence([self.seed, 2, epoch]).generate_state(1)[0]),
                                        n_init=int(s1["kmeans_restarts"]), max_iter=int(s1["kmeans_iters"]))
        labels, inertia = self.dist.broadcast_object((labels, inertia))
        dictionary = np.stack([o[labels == j].mean(0) for j in range(self.n_clusters)])
        self.pseudo = torch.from_numpy(labels.astype(np.int64))
        with torch.no_grad():
            self.model.dsol.dictionary.copy_(torch.from_numpy(dictionary).float())
        self._init_affine()
        self._update_mapping()
        gt = [self.stores["train"].scenes[i].label for i in self.solo_idx]
        known = [(c, g) for c, g in zip(labels, gt) if g >= 0]
        info = {"kmeans_inertia": inertia, "kmeans_s": time.time() - t0,
                "cluster_sizes": np.bincount(labels, minlength=self.n_clusters).tolist()}
        if known:
            cl, g = zip(*known)
            info["nmi"] = nmi(cl, g)
            info["cluster_acc"] = float(np.mean([self.cluster_to_class[c] == t for c, t in known]))
        self._stage1_lr(epoch)
        # classification rounds on the fresh pseudo-labels
        gen = torch.Generator().manual_seed(int(np.random.SeedSequence([self.seed, 3, epoch]).generate_state(1)[0]))
        reinit_classifiers(self.model, gen)
        heads = list(self.model.cls.parameters())
        opt_h = self._adam(heads, s1["head_lr"], s1["weight_decay"])
        frozen = self._frozen(epoch)
        ds = ClassifyDataset(self.stores["train"], self.solo_idx, labels, self.seed, self.aug)
        losses, accs = [], []
        t1 = time.time()
        nb = 0

        def step(b):
            fv, ga = self._features(self._to(b["image"], True), self._to(b["audio"]), frozen)
            y = b["label"].to(self.device)
            v_logits = self.model.cls.vision(fv.mean(dim=(2, 3)))
            a_logits = self.model.cls.audio(ga)
            if self.dist.active:  # the global batch's logits and labels
                v_logits, a_logits, y = (self.dist.gather(t) for t in (v_logits, a_logits, y))
            loss = F.cross_entropy(v_logits, y) + F.cross_entropy(a_logits, y)
            return loss, y.shape[0], {"audio": (a_logits.argmax(1) == y).float().sum(),
                                      "vision": (v_logits.argmax(1) == y).float().sum()}

        for ce in range(int(s1["class_epochs"])):
            self._train_mode(frozen)
            ds.set_tag(4, epoch, ce)
            rng = np.random.default_rng([self.seed, 4, epoch, ce])
            plan = batch_plan(len(ds), int(s1["class_batch_size"]), rng, True, self._limit("stage1"))
            r = self._epoch(ds, plan, f"s1 e{epoch} cls{ce}", step, [self.opt1, opt_h])
            losses.append(r["loss"])
            accs.append({"audio": r.get("audio", 0.0), "vision": r.get("vision", 0.0)})
            nb += r["batches"]
        dt = time.time() - t1
        info.update({"class_loss": losses, "class_acc": accs, "batches": nb,
                     "sec_per_batch": dt / max(nb, 1), "time_s": time.time() - t0})
        return info

    @torch.no_grad()
    def _init_affine(self) -> None:
        """w_o, b_o so that m = w_o (d.f) + b_o has mean 0 and std `affine_scale` over a few
        training scenes ("data"), or (1, 0) ("identity"). The scale sets how peaked p_v and the
        class maps can be: Adam at lr 1e-4 hardly moves a scalar over a few hundred steps."""
        mode = self.cfg["stage2"]["affine_init"]
        if mode == "identity":
            self.model.dsol.affine.copy_(torch.tensor([1.0, 0.0]))
            return
        idx = (self.cocktail_idx or self.solo_idx)[:64]
        split = "train"
        self.model.eval()
        ds = PlainDataset(self.stores[split], idx)
        zs = []
        for b in self._loader(ds, batch_plan(len(ds), 32, None, False)):
            fv = trunk(self.model.vision, self._to(b["image"], True), 0)
            zs.append(torch.einsum("kd,ndhw->nkhw", self.model.dsol.dictionary, fv).flatten())
        z = torch.cat(zs).double()
        std = float(z.std()) or 1.0
        k = float(self.cfg["stage2"]["affine_scale"])
        self.model.dsol.affine.copy_(torch.tensor([k / std, -k * float(z.mean()) / std]))

    def _update_mapping(self) -> None:
        gt = [self.stores["train"].scenes[i].label for i in self.solo_idx]
        pairs = [(int(c), g) for c, g in zip(self.pseudo.tolist(), gt) if g >= 0]
        if pairs:
            cl, g = zip(*pairs)
            self.cluster_to_class = M.hungarian_cluster_to_class(cl, g, self.n_clusters, len(self.classes))
        else:
            self.cluster_to_class = [j % len(self.classes) for j in range(self.n_clusters)]

    # ------------------------------------------------ stage 2

    def stage2_init(self) -> dict:
        if self.dist.main:
            torch.save({"state_dict": self.model.state_dict(), "pseudo": self.pseudo,
                        "cluster_to_class": self.cluster_to_class}, self.out / "checkpoints" / "stage1_final.pt")
        self._make_teacher()
        self._make_opt2()
        return {"affine": self.model.dsol.affine.tolist()}

    def stage2_epoch(self, epoch: int) -> dict:
        s2 = self.cfg["stage2"]
        frozen = self._frozen(None)
        self._train_mode(frozen)
        ds = PairDataset(self.stores["train"], self.cocktail_idx, self.seed, self.aug)
        ds.set_tag(5, epoch)
        rng = np.random.default_rng([self.seed, 5, epoch])
        plan = batch_plan(len(ds), int(s2["batch_size"]), rng, True, self._limit("stage2"))
        lam, keep, temp = float(s2["lambda"]), float(s2["keep_l"]), float(s2["teacher_temperature"])

        def step(b):
            audio = self._to(b["audio"])
            bsz = audio.shape[0]
            images = self._to(torch.cat([b["pos"], b["neg"]]), image=True)
            fv, ga = self._features(images, audio, frozen)
            l = self.model.loc(fv, torch.cat([ga, ga]))
            l_pos, l_neg = l[:bsz], l[bsz:]
            l1, pos_max, neg_q = quadrant_l1(l_pos, l_neg)
            m = self.model.object_response(fv[:bsz])
            log_pv = F.log_softmax((m * l_pos).mean(dim=(2, 3)), dim=1)
            with torch.no_grad():
                g_t = self.teacher.audio(audio)
                p_a = F.softmax(self.teacher.cls.audio(g_t) / temp, dim=1)
                if keep > 0:  # the teacher's sounding map of the true pairs
                    l_t = self.teacher.loc(trunk(self.teacher.vision, images[:bsz], 0), g_t)
            if self.dist.active:  # the global batch's maps and class distributions
                l_pos, l_neg, log_pv, p_a = (self.dist.gather(t) for t in (l_pos, l_neg, log_pv, p_a))
                if keep > 0:
                    l_t = self.dist.gather(l_t)
                bsz = l_pos.shape[0]
                l1, pos_max, neg_q = quadrant_l1(l_pos, l_neg)
            kl = F.kl_div(log_pv, p_a, reduction=s2["kl"])
            loss = kl + lam * l1
            if keep > 0:
                loss = loss + keep * F.binary_cross_entropy(l_pos.clamp(1e-6, 1 - 1e-6), l_t)
            acc = 0.5 * ((pos_max > 0.5).float().mean() + (neg_q <= 0.5).float().mean())
            return loss, bsz, {"kl": kl * bsz, "l1": l1 * bsz, "match_acc": acc * bsz}

        out = self._epoch(ds, plan, f"s2 e{epoch}", step, [self.opt2])
        out["affine"] = self.model.dsol.affine.tolist()
        return out

    @torch.no_grad()
    def _audio_features(self, model: DSOL, split: str, idx: list[int]) -> torch.Tensor:
        model.eval()
        st = self.stores[split]
        out = []
        for a in range(0, len(idx), 64):
            x = torch.from_numpy(np.stack([audio_input(st.mel(i)) for i in idx[a:a + 64]]))
            out.append(model.audio(self._to(x)).float())
        return torch.cat(out) if out else torch.zeros(0, model.feat_dim)

    def refit_audio_head(self) -> dict:
        """Fit the student's audio classifier to the teacher's p_a on frozen student g(a)."""
        idx = sorted(set(self.solo_idx) | set(self.cocktail_idx))
        g_s = self._audio_features(self.model, "train", idx)
        g_t = self._audio_features(self.teacher, "train", idx)
        with torch.no_grad():
            p_t = F.softmax(self.teacher.cls.audio(g_t), dim=1)
        head = self.model.cls.audio
        before = float((head(g_s).argmax(1) == p_t.argmax(1)).float().mean())
        opt = torch.optim.Adam(head.parameters(), lr=1e-3)
        steps = int(self.cfg["stage2"]["refit_steps"])
        for _ in range(steps):
            loss = F.kl_div(F.log_softmax(head(g_s), 1), p_t, reduction="batchmean")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():
            after = float((head(g_s).argmax(1) == p_t.argmax(1)).float().mean())
        return {"agree_before": before, "agree_after": after, "kl": loss.item() if steps else None}

    # ------------------------------------------------ evaluation

    @torch.no_grad()
    def evaluate(self, split: str = "val", class_aware: bool = True) -> dict:
        st = self.stores[split]
        if not len(st):
            return {}
        self._preload(split)
        self.model.eval()
        ev = self.cfg["eval"]
        lim = ev["limit"]
        groups: dict[str, list[int]] = {}
        for i, s in enumerate(st.scenes):
            groups.setdefault(s.kind, []).append(i)
        out = {}
        c2c = self.cluster_to_class or list(range(self.n_clusters))
        k = len(self.classes)
        for kind, idx in sorted(groups.items()):
            idx = idx[:int(lim)] if lim else idx
            ds = PlainDataset(st, idx)
            solo_ious, res_ca, res_lo = [], [], []
            frac = ev["duet_fraction"] if kind == "music_duet" else ev["synthetic_fraction"]
            for b in self._loader(ds, batch_plan(len(ds), int(ev["batch_size"]), None, False)):
                o = self.model(self._to(b["image"], True), self._to(b["audio"]))
                l = o["l"].float().cpu().numpy()
                cm = o["class_maps"].float().cpu().numpy()
                for j, i in enumerate(b["index"].tolist()):
                    objs = st.scenes[i].objects
                    if kind in SOLO_KINDS:
                        solo_ious.append(M.relative_iou(l[j, 0], [ob["box"] for ob in objs if ob["sounding"]],
                                                        M.SOLO_FRACTION))
                    else:
                        res_lo.append(M.loc_only_image(l[j, 0], objs, frac, num_classes=k))
                        if class_aware:
                            res_ca.append(M.cocktail_image(cm[j], objs, c2c, k, frac))
            if kind in SOLO_KINDS:
                out[kind] = M.summarize_solo(solo_ious)
            else:
                def summ(rs):
                    return M.summarize_cocktail([r["ciou"] for r in rs], [r["nsa"] for r in rs],
                                                [r["nsa_visible"] for r in rs])
                out[kind] = {"loc_only": summ(res_lo)}
                if class_aware:
                    out[kind]["class_aware"] = summ(res_ca)
        return out

    def _eval_due(self, i: int) -> bool:
        every = int(self.cfg["eval"]["every"] or 0)
        return every > 0 and (i % every == 0)

    # ------------------------------------------------ final

    def final(self) -> dict:
        if not self.dist.main:  # rank 0 refits, evaluates and exports
            return {}
        info = {}
        if self.teacher is not None and self.cfg["stage2"]["refit_audio_head"]:
            info["refit_audio_head"] = self.refit_audio_head()
        self._update_mapping()
        names = []
        for j, c in enumerate(self.cluster_to_class):
            name = self.classes[c]
            n = sum(1 for x in self.cluster_to_class[:j] if x == c)
            names.append(name if n == 0 else f"{name}_{n + 1}")
        self.model.classes = names
        info["cluster_to_class"] = self.cluster_to_class
        info["classes"] = names
        for split in self.cfg["eval"]["final_splits"]:
            info[f"{split}_metrics"] = self.evaluate(split)
        torch.save({"state_dict": self.model.state_dict(), "classes": names,
                    "cluster_to_class": self.cluster_to_class, "data_classes": self.classes,
                    "config": self.cfg}, self.out / "final.pt")
        # what a later run continues from (--init), small enough to travel and to keep in the repository
        half = {k: v.half() if v.is_floating_point() else v for k, v in self.model.state_dict().items()}
        torch.save({"state_dict": half, "pseudo": self.pseudo, "cluster_to_class": self.cluster_to_class,
                    "classes": names, "config": self.cfg, "history": self.history},
                   self.out / "checkpoints" / "state16.pt")
        src = (f"dsol.train seed {self.seed} width {self.cfg['width']} data {Path(self.data_path).name}; "
               f"stage1 {self.cfg['stage1']['epochs']} ep, stage2 {self.cfg['stage2']['epochs']} ep")
        if self.cfg["init_from"]:  # the run folder and file its weights started from
            src += f"; init from {'/'.join(Path(self.cfg['init_from']).parts[-3:])}"
        model = copy.deepcopy(self.model).cpu().float().eval()
        if self.cfg["speed"]["channels_last"]:
            model = model.to(memory_format=torch.contiguous_format)
        info["checksum"] = export_model(model, self.out / "model.safetensors", src,
                                        cluster_to_class=self.cluster_to_class)
        (self.out / "final.json").write_text(json.dumps(info, indent=1) + "\n")
        return info

    # ------------------------------------------------ driver

    def fit_time_budget(self, seconds_left: float) -> None:
        """Shorten stage 1 so that the whole run ends within seconds_left, from the steps timed so far
        (at least one localisation epoch and one clustering round); lr_steps shrink with it. The
        configured stage-1 epochs are the most it will plan, stage 2 keeps its epochs, and the finished
        steps stay the start of the new plan, so --resume works as usual. Called again later, it plans
        afresh from the configured schedule with the better timing."""
        s1, s2 = self.cfg["stage1"], self.cfg["stage2"]
        if self._budget_base is None:
            self._budget_base = (int(s1["epochs"]), [list(x) for x in s1["lr_steps"] or []])
        planned, steps = self._budget_base
        loc = [h["wall_s"] for h in self.history if h["phase"] == "s1_loc"]
        cls = [h["wall_s"] for h in self.history if h["phase"] == "s1_cls"]
        if not loc or not cls:
            raise ValueError("time the first localisation epoch and clustering round first")
        # the first epoch and round also pay for start-up (workers, caches, kernel selection)
        per_loc = float(np.mean(loc[1:] or loc))
        per_epoch = per_loc + float(np.mean(cls[1:] or cls)) / max(1, int(s1["cluster_every"]))
        # a stage-2 epoch: two pictures per cocktail sample and a teacher pass, against one picture per solo one
        per_s2 = 2.5 * per_loc * len(self.cocktail_idx) / max(1, len(self.solo_idx))
        n2 = int(s2["epochs"]) if self.cocktail_idx else 0
        reserve = 1.5 * per_epoch + 60.0  # stage-2 set-up, refit, final evaluation and export
        done = max(e for k, e in self.plan[:self.step] if k == "s1_loc") + 1
        fit = int((seconds_left - n2 * per_s2 - reserve) // per_epoch) + done
        epochs = max(done + 1, min(planned, fit))
        if epochs != int(s1["epochs"]):
            s1["epochs"] = epochs
            if steps:
                scale = epochs / planned
                s1["lr_steps"] = [[max(done, int(round(a * scale))), f] for a, f in steps]
            self.plan = self._plan()
            if self.dist.main:
                (self.out / "config.yaml").write_text(yaml.safe_dump(self.cfg, sort_keys=False))
        self.log(f"time budget: {seconds_left:.0f} s left, {per_epoch:.1f} s per stage-1 epoch, "
                 f"~{per_s2:.1f} s per stage-2 epoch -> {epochs} stage-1 epochs (configured {planned}), "
                 f"lr_steps {s1.get('lr_steps')}")

    def run(self, stop_after: int | None = None, deadline: float | None = None) -> dict:
        """Run the remaining steps; with stop_after, return after that many (as if interrupted);
        with deadline (a time.time() value), fit stage 1 to it once the first clustering round is timed."""
        self._preload("train")
        done = 0
        fits = 2 if deadline is None else 0
        while self.step < len(self.plan):
            # fit stage 1 to the deadline after the first clustering round, and again once a few
            # localisation epochs without start-up costs are timed (the first fit overestimates them)
            if (fits < 2 and self.step > 0 and self.plan[self.step - 1][0] == "s1_cls"
                    and self.plan[self.step][0] == "s1_loc"
                    and (fits == 0 or sum(h["phase"] == "s1_loc" for h in self.history) >= 4)):
                self.fit_time_budget(self.dist.broadcast_object(deadline - time.time()))
                fits += 1
            if stop_after is not None and done >= stop_after:
                self.log(f"stopping after {done} steps (--stop-after)")
                return self.history[-1] if self.history else {}
            done += 1
            kind, e = self.plan[self.step]
            t0 = time.time()
            entry: dict = {"step": self.step, "phase": kind, "epoch": e}
            with torch.enable_grad():  # whatever the caller's grad mode
                if kind == "s1_loc":
                    entry.update(self.stage1_loc(e))
                elif kind == "s1_cls":
                    entry.update(self.stage1_cluster(e))
                elif kind == "s2_init":
                    entry.update(self.stage2_init())
                elif kind == "s2":
                    entry.update(self.stage2_epoch(e))
                else:
                    entry.update(self.final())
            if kind in ("s1_cls", "s2") or (kind == "s1_loc" and self.pseudo is None):
                if self._eval_due(e) and self.dist.main:
                    entry["val"] = self.evaluate("val", class_aware=self.pseudo is not None)
            entry["wall_s"] = time.time() - t0
            entry = self.dist.broadcast_object(entry)  # rank 0's timings: every rank plans alike
            self.record(entry)
            self.log(self._summary(entry))
            self.step += 1
            if kind != "final":
                self.save(f"{kind}_e{e:02d}")
        self.log(f"done: {self.out / 'model.safetensors'}")
        return self.history[-1]

    def _summary(self, e: dict) -> str:
        parts = [f"[{e['step']:03d}] {e['phase']} e{e['epoch']}"]
        for k in ("loss", "match_acc", "kl", "l1", "nmi", "cluster_acc", "sec_per_batch", "pairs_per_s", "gpu_util"):
            if isinstance(e.get(k), (int, float)):
                parts.append(f"{k} {e[k]:.4f}")
        if "class_loss" in e:
            parts.append(f"class_loss {e['class_loss'][-1]:.4f} acc a/v "
                         f"{e['class_acc'][-1]['audio']:.3f}/{e['class_acc'][-1]['vision']:.3f}")
        val = e.get("val") or e.get("val_metrics") or {}
        for kind, v in val.items():
            if "iou@0.5" in v:
                parts.append(f"{kind} IoU@0.5 {v['iou@0.5']:.3f} AUC {v['auc']:.3f}")
            else:
                for mode, r in v.items():
                    nsa = r["nsa"] if r["nsa"] is not None else float("nan")
                    parts.append(f"{kind}/{mode} CIoU@0.3 {r['ciou@0.3']:.3f} AUC {r['auc']:.3f} NSA {nsa:.3f}")
        parts.append(f"{e.get('wall_s', 0):.1f}s")
        return " | ".join(parts)


def main(argv: list[str] | None = None) -> int:
    """`python3 -m dsol.train`: the command line lives in dsol.train_cli."""
    from .train_cli import main as cli_main
    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
