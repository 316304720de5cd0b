"""Seconds per training batch of each DSOL training phase on random inputs (no data needed):

    cd Tools && python3 -m dsol.train --benchmark [--width 64] [--batch 32] [--threads N]
"""

from __future__ import annotations

import copy
import time

import numpy as np
import torch
import torch.nn.functional as F

from .losses import quadrant_l1
from .model import DSOL
from .train import stage_modules, trunk


@torch.enable_grad()
def benchmark(width: int, batch: int, threads: int | None, iters: int = 3, channels_last: bool = False,
              freeze_vision: int = 0) -> dict:
    """Seconds per training batch of each phase on random inputs (no data needed)."""
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = DSOL(width=width, num_classes=11)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def img(n):
        x = torch.randn(n, 3, 224, 224)
        return x.contiguous(memory_format=torch.channels_last) if channels_last else x

    aud = torch.randn(batch, 1, 201, 64) * 10 - 50
    res = {}

    def timed(name, fn):
        ts, cs = [], []
        for _ in range(iters):
            t, c = time.perf_counter(), time.process_time()
            fn()
            ts.append(time.perf_counter() - t)
            cs.append(time.process_time() - c)
        rest = slice(1, None) if len(ts) > 1 else slice(None)
        res[name] = {"first": ts[0], "median_rest": float(np.median(ts[rest])),
                     "cpu_median_rest": float(np.median(cs[rest]))}
        print(f"  {name:30s} first {ts[0]:7.2f} s   then {res[name]['median_rest']:7.2f} s/batch "
              f"(process CPU {res[name]['cpu_median_rest']:7.2f} s)", flush=True)

    fz = (freeze_vision, 0)
    model.train()
    for m in stage_modules(model.vision, freeze_vision):
        m.eval()

    def s1_loc():
        fv = trunk(model.vision, img(2 * batch), fz[0])
        ga = torch.amax(trunk(model.audio, aud, 0), dim=(2, 3))
        l = model.loc(fv, torch.cat([ga, ga]))
        loss = F.binary_cross_entropy(torch.amax(l, dim=(1, 2, 3)), torch.cat([torch.ones(batch), torch.zeros(batch)]))
        opt.zero_grad()
        loss.backward()
        opt.step()

    def s1_cls():
        fv = trunk(model.vision, img(batch), fz[0])
        ga = torch.amax(trunk(model.audio, aud, 0), dim=(2, 3))
        y = torch.randint(0, 11, (batch,))
        loss = F.cross_entropy(model.cls.vision(fv.mean(dim=(2, 3))), y) + F.cross_entropy(model.cls.audio(ga), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    teacher = copy.deepcopy(model).eval()

    def s2():
        fv = trunk(model.vision, img(2 * batch), fz[0])
        ga = torch.amax(trunk(model.audio, aud, 0), dim=(2, 3))
        l = model.loc(fv, torch.cat([ga, ga]))
        l1 = quadrant_l1(l[:batch], l[batch:])[0]
        m = torch.einsum("kd,ndhw->nkhw", model.dsol.dictionary, fv[:batch])
        with torch.no_grad():
            p_a = F.softmax(teacher.cls.audio(teacher.audio(aud)), dim=1)
        kl = F.kl_div(F.log_softmax((m * l[:batch]).mean(dim=(2, 3)), 1), p_a, reduction="batchmean")
        opt.zero_grad()
        (kl + 0.5 * l1).backward()
        opt.step()

    @torch.no_grad()
    def extract():
        model.eval()
        model(img(batch), aud)
        model.train()

    print(f"benchmark: width {width}, batch {batch}+{batch}, threads {torch.get_num_threads()}, "
          f"channels_last {channels_last}, frozen vision stages {freeze_vision}", flush=True)
    timed(f"stage-1 localisation {batch}+{batch}", s1_loc)
    timed(f"stage-1 classification {batch}", s1_cls)
    timed(f"stage-2 {batch}+{batch}", s2)
    timed(f"eval/extract forward {batch}", extract)
    return res
