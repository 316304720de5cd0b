"""The command line of the DSOL trainer: `python3 -m dsol.train` (see dsol.train for what a run does).

Several processes (GPUs, or CPU processes with gloo) with torchrun, the same options:
    torchrun --standalone --nproc_per_node N -m dsol.train --config C --data D --out R --device cuda
(dsol.distributed: the same global batches and losses as one process; --resume with any N)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import yaml

from .distributed import init_from_env, shutdown
from .train import DEFAULTS, Trainer, deep_merge, load_config


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m dsol.train", description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", help="YAML config (missing keys take the defaults of dsol.train.DEFAULTS)")
    ap.add_argument("--data", help="manifest.json of the builder, or a MUSIC-layout folder")
    ap.add_argument("--out", help="run folder")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (or cuda:N)")
    ap.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    ap.add_argument("--init", metavar="CKPT", help="start a new run from the model weights of a checkpoint "
                    "(e.g. another run's checkpoints/stage1_final.pt)")
    ap.add_argument("--vision-init", metavar="FILE", help="start the vision trunk from dsol.pretrain's vision.pt "
                    "or a torchvision-layout ResNet-18 state dict (e.g. ImageNet weights, width 64)")
    ap.add_argument("--seed", type=int)
    ap.add_argument("--width", type=int, help="ResNet base width (64 = the real model)")
    ap.add_argument("--limit", type=int, help="at most N batches per training epoch/round")
    ap.add_argument("--threads", type=int, help="torch.set_num_threads")
    ap.add_argument("--quiet", action="store_true", help="no progress bars or log lines on the terminal")
    ap.add_argument("--time-budget", type=float, metavar="SECONDS",
                    help="fit the stage-1 epochs (at most the configured ones) so the run ends within this time")
    ap.add_argument("--stop-after", type=int, help=argparse.SUPPRESS)  # tests: interrupt after N steps
    ap.add_argument("--benchmark", action="store_true", help="time training batches on random inputs and exit")
    ap.add_argument("--batch", type=int, default=32, help="batch size for --benchmark")
    ap.add_argument("--iters", type=int, default=3, help="batches per phase for --benchmark")
    ap.add_argument("--channels-last", action="store_true", help="--benchmark in channels-last layout")
    ap.add_argument("--freeze-vision", type=int, default=0, help="--benchmark with N frozen vision stages")
    args = ap.parse_args(argv)
    started = time.time()

    if args.benchmark:
        from .train_bench import benchmark
        benchmark(args.width or 64, args.batch, args.threads, args.iters, args.channels_last, args.freeze_vision)
        return 0
    if not args.data or not args.out:
        ap.error("--data and --out are required")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        ap.error("--device cuda: no CUDA device available to this PyTorch build")
    try:
        return _train(ap, args, started)
    finally:
        shutdown()


def _train(ap: argparse.ArgumentParser, args: argparse.Namespace, started: float) -> int:
    dist, device = init_from_env(args.device)  # torchrun: this process's rank and GPU
    out = Path(args.out)
    last = out / "checkpoints" / "last.pt"
    if args.init and args.resume:
        ap.error("--init starts a new run; --resume continues one (its weights come from its checkpoint)")
    if args.init and not Path(args.init).is_file():
        ap.error(f"--init: no file {args.init}")
    if args.vision_init and (args.resume or args.init):
        ap.error("--vision-init starts a new run's vision trunk; --resume and --init bring all weights")
    if args.vision_init and not Path(args.vision_init).is_file():
        ap.error(f"--vision-init: no file {args.vision_init}")
    if args.resume:
        if not last.exists():
            ap.error(f"--resume: no checkpoint at {last}")
        # a run folder of an older trainer lacks the keys added since: they take today's defaults
        cfg = deep_merge(DEFAULTS, yaml.safe_load((out / "config.yaml").read_text()))
        if args.config:  # a changed schedule for the same run (load() checks the finished steps still match)
            origin = cfg.get("init_from")
            cfg = load_config(args.config)
            if origin:
                cfg["init_from"] = origin
            for key in ("seed", "width", "limit"):
                if getattr(args, key) is not None:
                    cfg[key] = getattr(args, key)
            if dist.main:
                (out / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    else:
        if last.exists():
            ap.error(f"{out} already holds a run; use --resume or another --out")
        cfg = load_config(args.config)
        for key in ("seed", "width", "limit", "threads"):
            if getattr(args, key) is not None:
                cfg[key] = getattr(args, key)
        if args.init:  # recorded with the run: its weights did not start from scratch
            cfg["init_from"] = str(Path(args.init).resolve())
        if args.vision_init:
            cfg["vision_init"] = str(Path(args.vision_init).resolve())
        out.mkdir(parents=True, exist_ok=True)
        if dist.main:
            (out / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    if args.threads is not None:
        cfg["threads"] = args.threads
    trainer = Trainer(cfg, args.data, out, device, quiet=args.quiet, dist=dist)
    if dist.active:
        trainer.log(f"{dist.world} processes ({'nccl' if device.startswith('cuda') else 'gloo'}): "
                    f"each global batch shared, losses over the whole batch")
    if args.init:
        trainer.init_from(args.init)
    if args.vision_init:
        trainer.vision_init(args.vision_init)
    if args.resume:
        trainer.load(last)
        trainer.log(f"resumed at step {trainer.step}/{len(trainer.plan)} from {last}")
    deadline = started + args.time_budget if args.time_budget else None
    trainer.run(args.stop_after, deadline)
    return 0
