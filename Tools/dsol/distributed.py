"""Data-parallel training of dsol.train over several processes (torchrun), one device each.

    torchrun --standalone --nproc_per_node 4 -m dsol.train --config C --data D --out R --device cuda

What several processes change, and what they do not:

  * The batch plan is the one process's plan: every rank draws the same global batches (all
    randomness derives from (seed, stage, epoch, position)) and computes only its contiguous share
    of each (`shard`), so a run's batches do not depend on the number of processes.
  * Every per-sample output a loss needs (matching scores, embeddings, logits, sounding maps) is
    gathered from all ranks with gradients (`gather`), and each rank computes the loss of the whole
    global batch: the batch-softmax matching sees every negative of the global batch, and the
    loss equals the one-process loss. The gradients are then averaged over the ranks
    (`average_gradients`); with the gathers' backward summing over ranks this is exactly the
    global batch's gradient (each rank's loss is the same global loss, so the sum over ranks is
    world times it).
  * BatchNorm in training mode normalises with the global batch's statistics
    (`CrossRankBatchNorm2d`, two differentiable all-reduces per layer: the sum, then the sum of
    squared deviations from the global mean), so the activations, the running statistics and
    hence the losses are those of one process. torch's SyncBatchNorm runs on CUDA only; this one
    runs with gloo on the CPU too. It is installed only when there are several processes: the
    one-process path, and its bit-reproducibility on the CPU, are unchanged.
  * The object features for K-means are extracted in shares and gathered; K-means runs on rank 0
    and its labels are broadcast. Evaluation, logs, metrics.jsonl, checkpoints and the exported
    model are rank 0's; each history entry is rank 0's, broadcast, so every rank plans alike
    (--time-budget).
  * Checkpoints hold nothing per rank: a run resumes with any number of processes.

Backends: nccl for CUDA, gloo for the CPU (tests: two CPU processes give the one-process losses).
"""

from __future__ import annotations

import os
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.nn as nn


class Dist:
    """This process's place in the run: rank, world size, local rank (the GPU it drives)."""

    def __init__(self, rank: int = 0, world: int = 1, local_rank: int = 0):
        self.rank, self.world, self.local_rank = int(rank), int(world), int(local_rank)

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    @classmethod
    def current(cls) -> "Dist":
        """The initialised process group's view (one process when there is none)."""
        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
        return cls()

    # ------------------------------------------------ batches

    def shard_bounds(self, n: int) -> list[tuple[int, int]]:
        """Contiguous shares of n samples, the first n % world ranks one larger."""
        base, extra = divmod(n, self.world)
        out, a = [], 0
        for r in range(self.world):
            b = a + base + (1 if r < extra else 0)
            out.append((a, b))
            a = b
        return out

    def shard(self, batch: list[int]) -> list[int]:
        """This rank's share of a global batch (positions in the data set)."""
        if self.world > 1 and len(batch) < self.world:
            raise ValueError(f"a batch of {len(batch)} samples cannot be shared by {self.world} processes; "
                             f"use a batch size of at least {self.world}")
        a, b = self.shard_bounds(len(batch))[self.rank]
        return list(batch[a:b])

    def shard_plan(self, plan: list[list[int]]) -> list[list[int]]:
        return plan if self.world == 1 else [self.shard(b) for b in plan]

    # ------------------------------------------------ collectives

    def gather(self, x: torch.Tensor) -> torch.Tensor:
        """Concatenate every rank's x along dim 0 in rank order (sizes may differ), with gradients:
        the backward pass sums the gradient of the whole over ranks and hands each its part."""
        if self.world == 1:
            return x
        sizes = torch.tensor([x.shape[0]], dtype=torch.int64, device=x.device)
        all_sizes = [torch.zeros_like(sizes) for _ in range(self.world)]
        dist.all_gather(all_sizes, sizes)
        return _Gather.apply(x, [int(s) for s in all_sizes])

    def all_reduce(self, x: torch.Tensor) -> torch.Tensor:
        """Sum of x over ranks, with gradients (the backward pass sums the gradients over ranks)."""
        return x if self.world == 1 else _AllReduce.apply(x)

    def average_gradients(self, params) -> None:
        """Mean over ranks of every parameter's gradient, in one flat buffer."""
        if self.world == 1:
            return
        grads = [p.grad for p in params if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world
        a = 0
        for g in grads:
            g.copy_(flat[a:a + g.numel()].view_as(g))
            a += g.numel()

    def broadcast_module(self, module: nn.Module) -> None:
        """Rank 0's parameters and buffers to every rank."""
        if self.world == 1:
            return
        with torch.no_grad():
            for t in list(module.parameters()) + list(module.buffers()):
                dist.broadcast(t.data, 0)

    def broadcast_object(self, obj):
        """Rank 0's (picklable) value on every rank."""
        if self.world == 1:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, 0)
        return box[0]

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


class _Gather(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, sizes: list[int]) -> torch.Tensor:
        ctx.sizes = sizes
        ctx.rank = dist.get_rank()
        longest = max(sizes)
        pad = x.new_zeros((longest - x.shape[0],) + tuple(x.shape[1:]))
        parts = [x.new_empty((longest,) + tuple(x.shape[1:])) for _ in sizes]
        dist.all_gather(parts, torch.cat([x, pad]).contiguous())
        return torch.cat([p[:n] for p, n in zip(parts, sizes)])

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        g = grad.contiguous().clone()
        dist.all_reduce(g)
        a = sum(ctx.sizes[:ctx.rank])
        return g[a:a + ctx.sizes[ctx.rank]], None


class _AllReduce(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        y = x.clone().contiguous()
        dist.all_reduce(y)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        g = grad.contiguous().clone()
        dist.all_reduce(g)
        return g


class CrossRankBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training-mode statistics are those of the global batch over all ranks
    (mean, biased variance for the normalisation, unbiased for the running variance, as
    nn.BatchNorm2d computes them on one batch). Same parameters and buffers as BatchNorm2d, so
    state dicts, checkpoints and the exporter's folding are unchanged; in eval mode, or with one
    process, it is nn.BatchNorm2d."""

    def __init__(self, *args, dist_view: Dist | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.dist_view = dist_view or Dist.current()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self.dist_view
        if not self.training or d.world == 1:
            return super().forward(x)
        xf = x.float()
        c = xf.shape[1]
        count = torch.tensor([xf.numel() // c], dtype=xf.dtype, device=xf.device)
        first = d.all_reduce(torch.cat([xf.sum(dim=(0, 2, 3)), count]))
        n = first[c]
        mean = first[:c] / n
        centred = xf - mean.view(1, c, 1, 1)
        var = d.all_reduce(centred.pow(2).sum(dim=(0, 2, 3))) / n
        y = centred * torch.rsqrt(var + self.eps).view(1, c, 1, 1)
        if self.affine:
            y = y * self.weight.view(1, c, 1, 1) + self.bias.view(1, c, 1, 1)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                if self.momentum is None:
                    m = 1.0 / float(self.num_batches_tracked)
                else:
                    m = self.momentum
                unbiased = var.detach() * (n.detach() / torch.clamp(n.detach() - 1, min=1))
                self.running_mean.mul_(1 - m).add_(mean.detach().to(self.running_mean.dtype), alpha=m)
                self.running_var.mul_(1 - m).add_(unbiased.to(self.running_var.dtype), alpha=m)
        return y


def convert_batchnorm(module: nn.Module, d: Dist) -> nn.Module:
    """Replace every nn.BatchNorm2d in module (in place) by a CrossRankBatchNorm2d holding the same
    parameter and buffer tensors; a no-op with one process."""
    if d.world == 1:
        return module
    for name, child in list(module.named_children()):
        if isinstance(child, nn.BatchNorm2d) and not isinstance(child, CrossRankBatchNorm2d):
            new = CrossRankBatchNorm2d(child.num_features, eps=child.eps, momentum=child.momentum,
                                       affine=child.affine, track_running_stats=child.track_running_stats,
                                       dist_view=d)
            if child.affine:
                new.weight, new.bias = child.weight, child.bias
            if child.track_running_stats:
                new.running_mean, new.running_var = child.running_mean, child.running_var
                new.num_batches_tracked = child.num_batches_tracked
            new.train(child.training)
            setattr(module, name, new)
        else:
            convert_batchnorm(child, d)
    return module


def init_from_env(device: str) -> tuple[Dist, str]:
    """Join the process group torchrun describes in the environment (WORLD_SIZE > 1): nccl for
    CUDA, gloo otherwise; each rank drives the GPU of its LOCAL_RANK. Returns this process's view and
    the device it trains on. Without torchrun's environment: one process, the device unchanged."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(), device
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    cuda = device.startswith("cuda")
    if cuda:
        if ":" in device:
            raise SystemExit("--device cuda:N with torchrun: give --device cuda, each process takes the GPU "
                             "of its LOCAL_RANK")
        if torch.cuda.device_count() <= local:
            raise SystemExit(f"rank {rank}: LOCAL_RANK {local} but {torch.cuda.device_count()} CUDA devices")
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(minutes=30))
    return Dist(rank, world, local), device


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
