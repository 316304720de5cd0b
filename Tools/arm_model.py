#!/usr/bin/env python3
"""ARM performance model of soundloc's int8 DSOL frame (method and sources: docs/ARM_PERFORMANCE.md).

    python3 Tools/arm_model.py                          # frame estimate, Pi 4 and Pi 5, 1/2/4 threads, with ranges
    python3 Tools/arm_model.py --layers pi5             # per-layer 1-thread estimate, same names as
                                                        #   `soundloc bench engine --layers` prints
    python3 Tools/arm_model.py --compare B.json --board pi4-1.8   # a board's `soundloc bench engine --json` against it
    python3 Tools/arm_model.py --json est.json          # everything as JSON
    python3 Tools/arm_model.py --recount-loops          # recompile the two aarch64 microkernels with clang -O2 -S
                                                        #   and recount their inner loops (needs clang with arm_neon.h)
    python3 Tools/arm_model.py --measure-qemu OUT.json  # redo the qemu-user dynamic instruction counts
                                                        #   (needs aarch64-linux-gnu-gcc, clang, qemu-aarch64-static)

No ARM board was reachable, so nothing here is an ARM measurement. The model multiplies exact per-layer counts
(MACs, microkernel loop iterations after tile padding, thread row splits) by per-iteration cycle costs taken from the
issue rates in Arm's Software Optimization Guides, adds the rest of each convolution (im2col, activation packing,
requantisation, driver) from instruction counts measured under qemu-aarch64, adds the single-threaded parts (pooling,
input quantisation, heads), and divides the parallel part by an assumed parallel efficiency. Each uncertain input
has a (low, nominal, high) range; the frame's range is the product of all optimistic or all pessimistic ends, so it is
wide on purpose. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------------------------------------------- network shapes


@dataclass(frozen=True)
class Conv:
    """One convolution of a trunk, NHWC, as the int8 engine runs it (im2col + GEMM, or the input as A for 1x1/1)."""

    name: str
    h: int
    w: int
    cin: int
    cout: int
    k: int
    stride: int
    residual: bool

    @property
    def pad(self) -> int:
        return self.k // 2

    @property
    def oh(self) -> int:
        return out_size(self.h, self.k, self.stride, self.pad)

    @property
    def ow(self) -> int:
        return out_size(self.w, self.k, self.stride, self.pad)

    @property
    def m(self) -> int:  # GEMM rows = output pixels
        return self.oh * self.ow

    @property
    def n(self) -> int:  # GEMM columns = output channels
        return self.cout

    @property
    def kdim(self) -> int:  # GEMM depth = kh·kw·cin
        return self.k * self.k * self.cin

    @property
    def macs(self) -> int:
        return self.m * self.n * self.kdim

    @property
    def pointwise(self) -> bool:  # read directly, no im2col (QuantizedConv2D.isPointwise)
        return self.k == 1 and self.stride == 1

    @property
    def key(self) -> str:  # shape key of the measured tables
        return f"{self.h}x{self.w}x{self.cin}->{self.cout} k{self.k}s{self.stride}{'r' if self.residual else ''}"


def out_size(n: int, k: int, s: int, p: int) -> int:
    return (n + 2 * p - k) // s + 1


def trunk(prefix: str, h: int, w: int, cin: int, width: int, strides=(1, 2, 2, 1)) -> list[Conv]:
    """ResNet-18-S5 (Sources/SoundlocEngine/ResNet18S5.swift): 7x7/2 stem, 3x3/2 max-pool, BasicBlocks [2,2,2,2] with
    layer strides 1,2,2,1, a 1x1 downsample where the block changes shape; conv2 of each block adds the residual.
    strides=(1,2,2,2) gives torchvision's ResNet-18 trunk (without its pooling and fc)."""
    layers = [Conv(f"{prefix}.conv1", h, w, cin, width, 7, 2, False)]
    h, w = out_size(out_size(h, 7, 2, 3), 3, 2, 1), out_size(out_size(w, 7, 2, 3), 3, 2, 1)
    c = width
    for li, s in enumerate(strides):
        cout = width << li
        for b in range(2):
            st = s if b == 0 else 1
            name = f"{prefix}.layer{li + 1}.{b}"
            layers.append(Conv(f"{name}.conv1", h, w, c, cout, 3, st, False))
            if b == 0 and (st != 1 or c != cout):
                layers.append(Conv(f"{name}.downsample", h, w, c, cout, 1, st, False))
            h2, w2 = out_size(h, 3, st, 1), out_size(w, 3, st, 1)
            layers.append(Conv(f"{name}.conv2", h2, w2, cout, cout, 3, 1, True))
            h, w, c = h2, w2, cout
    return layers


def frame(width: int = 64, image: int = 224, frames: int = 201, mels: int = 64) -> list[Conv]:
    """The DSOL frame's convolutions: vision trunk on a 3×image×image picture, audio trunk on a 1×frames×mels
    log-mel window (Models/FORMAT.md; the README's windows.npy is (windows, 201, 64))."""
    return trunk("vision", image, image, 3, width) + trunk("audio", frames, mels, 1, width)


def resnet18_macs(image: int = 224) -> int:
    """MACs of torchvision ResNet-18 at image×image (ncnn's benchmark input), convolutions plus the 512×1000 fc."""
    return sum(c.macs for c in trunk("r18", image, image, 3, 64, strides=(1, 2, 2, 2))) + 512 * 1000


def head_macs(width: int = 64, image: int = 224, embed: int = 128, classes: int = 11) -> int:
    """fp32 MACs of the DSOL heads (Sources/SoundlocDSOL/DSOLHeads.swift): per-pixel v_fc1, v_fc2 and the class
    dictionary over the vision map, a_fc1/a_fc2 and the two classifiers on pooled vectors."""
    d = 8 * width
    px = trunk("v", image, image, 3, width)[-1].m
    return px * (d * embed + embed * embed + d * classes) + d * embed + embed * embed + 2 * d * classes


# -------------------------------------------------------------------------------------------------- the microkernels


@dataclass(frozen=True)
class Kernel:
    name: str
    mr: int  # register tile rows (GEMM M)
    nr: int  # columns (GEMM N)
    kr: int  # K per loop iteration
    mc: int  # rows per driver block (q8_gemm_config.mc)
    loop: dict  # instruction mix of one inner-loop iteration, clang 21 -O2 --target=aarch64-linux-gnu

    @property
    def loop_instructions(self) -> int:
        return sum(self.loop.values())

    @property
    def macs_per_iteration(self) -> int:
        return self.mr * self.nr * self.kr

    def iterations(self, m: int, n: int, kdim: int) -> int:
        """Inner-loop iterations of an m×n×kdim GEMM: rows padded to mr (the kernel computes a whole tile), columns to
        nr, K to kr (q8_gemm_drive + the ukernels)."""
        return math.ceil(m / self.mr) * math.ceil(n / self.nr) * (math.ceil(kdim / self.kr) * self.kr // self.kr)


# Counted from `clang --target=aarch64-linux-gnu -O2 -S` (Swift 6 toolchain's clang 21) of
# Sources/CSoundlocKernels/q8-gemm-2x8c16-neon.c and q8-gemm-4x16c4-neondot.c; `--recount-loops` redoes it.
# neon: one K step is inline assembly (each column's SMULL x2, SMLAL2 x2, SADALP x2 together, weights by
# post-indexed LDP q), so 16 accumulators + 2 activations + 4 weights + 4 products = 26 vector registers: no spills
# under clang or gcc, 57 instructions. The intrinsics version it replaced (NEON_SPILLING_LOOP) had clang hoist all
# products ahead of their SADALPs, spill 8 accumulators per iteration and shuffle 14 registers: 81 instructions.
NEON = Kernel("neon", 2, 8, 16, 16, {
    "smull": 16, "smlal2": 16, "sadalp": 16, "ldp_q": 4, "ldr_q": 2, "add": 1, "cmp": 1, "b": 1,
})
NEON_SPILLING_LOOP = {
    "smull": 16, "smlal2": 16, "sadalp": 16,
    "ldp_q": 7, "ldr_q": 4, "stp_q": 4, "mov_v": 14, "add": 2, "cmp": 1, "b": 1,
}
NEONDOT = Kernel("neondot", 4, 16, 8, 16, {
    "sdot": 32, "ldp_q": 4, "ldr_d": 4, "add": 2, "cmp": 1, "b": 1,
})
KERNELS = {"neon": NEON, "neondot": NEONDOT}

# ----------------------------------------------------------------------------------------- the cores, issue rates

# Issue rates (instructions per cycle) from the Software Optimization Guides, section "Instruction characteristics":
#   Cortex-A72 SOG (ARM UAN 0016A, 2015), ASIMD integer table: SMULL/UMULL "ASIMD multiply long" and
#     SMLAL(2)/UMLAL(2) "ASIMD multiply accumulate long": throughput 1, pipeline F0 only; SADALP "ASIMD pairwise add
#     and accumulate": pipeline F1; decode/dispatch 3 instructions per cycle; one load (L) and one store (S) pipe.
#   Cortex-A76 SOG (PJDOC-466751330-7215, v8.0, 2019): SDOT/UDOT "ASIMD dot product": latency 2, throughput 2 (V0 and
#     V1); ASIMD multiply (long) V0 only, SADALP V1 only; decode 4 instructions per cycle; two load pipes.
# A72 "as compiled": llvm-mca 14 -mcpu=cortex-a72 (LLVM models the A72 with its Cortex-A57 model, built from the A57
# SOG, whose ASIMD tables the A72 SOG repeats for these instructions) on the clang loop: 32.1 cycles per iteration
# (200 iterations, 6417 cycles; F0 busy 32 cycles, F1 16, the load pipe 10, decode 19): the loop is at its F0 bound.
# The spilling loop it replaced: 42.1 cycles (8420; dispatch of the spill stores' micro-ops was the limit).
# A76: this LLVM has no A76 model; the loop has no spills and 11 cycles of decode for 16 cycles of SDOT, so "as
# compiled" is the SDOT bound plus an assumed 0-15 % (5 % nominal).


@dataclass(frozen=True)
class Core:
    name: str
    board: str
    ghz: float
    kernel: Kernel
    loop_cycles: tuple  # (low, nominal, high) cycles per inner-loop iteration
    ipc_other: tuple  # (high, nominal, low) instructions per cycle of the non-loop GEMM/im2col code (assumed)
    fp32_macs_per_cycle: float  # 2 × 128-bit FMLA pipes = 8 fp32 MACs per cycle (A72: F0/F1, A76: V0/V1)
    serial_slowdown: tuple  # (low, nominal, high) vs this x86 machine for the Swift scalar parts (assumed)
    dram_gbs: tuple  # (high, nominal, low) sustained DRAM bandwidth, GB/s (assumed, see the doc)


def a72_ideal_cycles() -> float:
    """Issue bound of one neon iteration without spills: 32 SMULL/SMLAL2 on F0 at 1 per cycle."""
    return (NEON.loop["smull"] + NEON.loop["smlal2"]) / 1.0


def a76_ideal_cycles() -> float:
    """Issue bound of one neondot iteration: 32 SDOT on V0/V1 at 2 per cycle (decode: 44/4 = 11, loads: 6)."""
    return NEONDOT.loop["sdot"] / 2.0


A72_MCA_CYCLES = 32.1  # llvm-mca 14, -mcpu=cortex-a72, clang 21 -O2 loop body, 200 iterations
A72_MCA_CYCLES_SPILLING = 42.1  # the same for NEON_SPILLING_LOOP (the intrinsics loop before the fix)


def a72_own_count_cycles(loop: dict | None = None) -> float:
    """Own resource count of a neon loop on the A72: F0 carries the 32 multiplies and half of the vector moves (the
    other half go to F1 with the 16 SADALP): 32 cycles for the shipped loop, 39 for the spilling one (14 moves)."""
    loop = NEON.loop if loop is None else loop
    return loop["smull"] + loop["smlal2"] + loop.get("mov_v", 0) / 2


def a72_loop_cycles(loop: dict | None = None, mca: float = A72_MCA_CYCLES) -> tuple:
    """(low, nominal, high) cycles per neon iteration: own count, llvm-mca, llvm-mca + 10 %."""
    return (a72_own_count_cycles(loop), mca, mca * 1.1)


def cores() -> dict[str, Core]:
    a72_loop = a72_loop_cycles()
    a76_loop = (a76_ideal_cycles(), a76_ideal_cycles() * 1.05, a76_ideal_cycles() * 1.15)
    common72 = dict(kernel=NEON, loop_cycles=a72_loop, ipc_other=(2.0, 1.5, 1.0), fp32_macs_per_cycle=8.0,
                    dram_gbs=(6.0, 4.5, 3.0))
    return {
        "pi4-1.5": Core("Cortex-A72", "Raspberry Pi 4 (BCM2711, 1.5 GHz)", 1.5, serial_slowdown=(3.0, 4.5, 6.0),
                        **common72),
        "pi4-1.8": Core("Cortex-A72", "Raspberry Pi 4 (BCM2711, 1.8 GHz)", 1.8, serial_slowdown=(2.5, 3.75, 5.0),
                        **common72),
        "pi5": Core("Cortex-A76", "Raspberry Pi 5 (BCM2712, 2.4 GHz)", 2.4, kernel=NEONDOT, loop_cycles=a76_loop,
                    ipc_other=(3.0, 2.2, 1.5), fp32_macs_per_cycle=8.0, serial_slowdown=(1.5, 2.2, 3.0),
                    dram_gbs=(12.0, 9.0, 6.0)),
    }


# Parallel efficiency of the threaded part (GEMM rows and their im2col split over `threads`; the row split's own
# imbalance is counted exactly in rows_per_thread). Assumed; the evidence on these boards is poor 4-thread scaling:
# ncnn's ResNet-18 int8 runs 2.18x faster on 4 threads than on 1 on the Pi 5 and 1.89x on the Pi 4 (whole network,
# its serial parts included; benchmark/README.md), and HPL with OpenBLAS on a Pi 5 goes from 16 to 22-39 GFLOP/s on
# 4 threads (OpenMathLib/OpenBLAS#4581). soundloc's own int8 frame ran 1.65x and 1.87x faster on 2 threads than on 1
# on the 2-core AVX2 machine of issue 18.
PARALLEL_EFFICIENCY = {1: (1.0, 1.0, 1.0), 2: (0.95, 0.85, 0.7), 3: (0.9, 0.75, 0.6), 4: (0.85, 0.65, 0.5)}

# ------------------------------------------------------------------------------------- measured inputs (this machine)

# Dynamic instruction counts per convolution shape, one gemm_q8 call on the layer's shape plus one im2col, from
# `--measure-qemu` (qemu-aarch64-static 7.2 `-d in_asm,exec,nochain`, TB executions × TB lengths, per function):
#   loop:    the microkernel (neon_ukernel / dot_ukernel) incl. its prologue and epilogue
#   other:   q8_gemm_drive + q8_pack_a_s8_neon + q8_requant_neon
#   im2col:  soundloc_u8_im2col_nhwc + memcpy + memset + their PLT stubs (includes the one packing memset, < 2 %)
# -cpu cortex-a72 for neon, -cpu cortex-a76 for neondot; binary built like Tools/kernels/test_arm.sh's clang build.
# neon's "loop" values were re-measured after its K step became inline assembly (57-instruction body + 53 per call);
# its "other" came out identical, its "im2col" within 0.1 % (the stem im2col changed since), so those stay as first
# measured.
QEMU_COUNTS: dict = {
    "neon": {
        "13x4x256->256 k3s1": {"loop": 6961344, "iterations": 119808, "other": 262291, "im2col": 67474},
        "13x4x256->256 k3s1r": {"loop": 6961344, "iterations": 119808, "other": 281115, "im2col": 67474},
        "13x4x256->512 k1s1": {"loop": 1605760, "iterations": 26624, "other": 194053, "im2col": 8390},
        "13x4x256->512 k3s1": {"loop": 13922688, "iterations": 239616, "other": 524485, "im2col": 104402},
        "13x4x512->512 k3s1": {"loop": 27757184, "iterations": 479232, "other": 881541, "im2col": 194498},
        "13x4x512->512 k3s1r": {"loop": 27757184, "iterations": 479232, "other": 919189, "im2col": 194498},
        "14x14x256->256 k3s1": {"loop": 26238912, "iterations": 451584, "other": 981931, "im2col": 154862},
        "14x14x256->256 k3s1r": {"loop": 26238912, "iterations": 451584, "other": 1052883, "im2col": 154862},
        "14x14x256->512 k1s1": {"loop": 6052480, "iterations": 100352, "other": 726133, "im2col": 8390},
        "14x14x256->512 k3s1": {"loop": 52477824, "iterations": 903168, "other": 1963765, "im2col": 191790},
        "14x14x512->512 k3s1": {"loop": 104623232, "iterations": 1806336, "other": 3301749, "im2col": 332142},
        "14x14x512->512 k3s1r": {"loop": 104623232, "iterations": 1806336, "other": 3443653, "im2col": 332142},
        "201x64x1->64 k7s2": {"loop": 3632768, "iterations": 51712, "other": 1481198, "im2col": 1978116},
        "224x224x3->64 k7s2": {"loop": 31259648, "iterations": 501760, "other": 6501062, "im2col": 7498856},
        "26x8x128->128 k3s1": {"loop": 7005440, "iterations": 119808, "other": 342762, "im2col": 99372},
        "26x8x128->128 k3s1r": {"loop": 7005440, "iterations": 119808, "other": 380410, "im2col": 99372},
        "26x8x128->256 k1s2": {"loop": 423488, "iterations": 6656, "other": 90419, "im2col": 9077},
        "26x8x128->256 k3s2": {"loop": 3502720, "iterations": 59904, "other": 173027, "im2col": 41570},
        "28x28x128->128 k3s1": {"loop": 26405120, "iterations": 451584, "other": 1291578, "im2col": 351764},
        "28x28x128->128 k3s1r": {"loop": 26405120, "iterations": 451584, "other": 1433482, "im2col": 351764},
        "28x28x128->256 k1s2": {"loop": 1596224, "iterations": 25088, "other": 338027, "im2col": 29487},
        "28x28x128->256 k3s2": {"loop": 13202560, "iterations": 225792, "other": 647435, "im2col": 104653},
        "51x16x64->128 k1s2": {"loop": 467584, "iterations": 6656, "other": 172306, "im2col": 27471},
        "51x16x64->128 k3s2": {"loop": 3502720, "iterations": 59904, "other": 225554, "im2col": 77172},
        "51x16x64->64 k3s1": {"loop": 6870720, "iterations": 117504, "other": 577250, "im2col": 286598},
        "51x16x64->64 k3s1r": {"loop": 6870720, "iterations": 117504, "other": 653138, "im2col": 286598},
        "56x56x64->128 k1s2": {"loop": 1762432, "iterations": 25088, "other": 649090, "im2col": 100065},
        "56x56x64->128 k3s2": {"loop": 13202560, "iterations": 225792, "other": 849794, "im2col": 280207},
        "56x56x64->64 k3s1": {"loop": 26405120, "iterations": 451584, "other": 2218070, "im2col": 1102544},
        "56x56x64->64 k3s1r": {"loop": 26405120, "iterations": 451584, "other": 2509718, "im2col": 1102544},
    },
    "neondot": {
        "13x4x256->256 k3s1": {"loop": 2664480, "iterations": 59904, "other": 203203, "im2col": 67474},
        "13x4x256->256 k3s1r": {"loop": 2664480, "iterations": 59904, "other": 222027, "im2col": 67456},
        "13x4x256->512 k1s1": {"loop": 604864, "iterations": 13312, "other": 154661, "im2col": 8390},
        "13x4x256->512 k3s1": {"loop": 5328960, "iterations": 119808, "other": 406309, "im2col": 104402},
        "13x4x512->512 k3s1": {"loop": 10638784, "iterations": 239616, "other": 684581, "im2col": 194498},
        "13x4x512->512 k3s1r": {"loop": 10638784, "iterations": 239616, "other": 722229, "im2col": 194498},
        "14x14x256->256 k3s1": {"loop": 10043040, "iterations": 225792, "other": 761707, "im2col": 154862},
        "14x14x256->256 k3s1r": {"loop": 10043040, "iterations": 225792, "other": 832659, "im2col": 154862},
        "14x14x256->512 k1s1": {"loop": 2279872, "iterations": 50176, "other": 579317, "im2col": 8390},
        "14x14x256->512 k3s1": {"loop": 20086080, "iterations": 451584, "other": 1523317, "im2col": 191790},
        "14x14x512->512 k3s1": {"loop": 40100032, "iterations": 903168, "other": 2567669, "im2col": 332142},
        "14x14x512->512 k3s1r": {"loop": 40100032, "iterations": 903168, "other": 2709573, "im2col": 332142},
        "201x64x1->64 k7s2": {"loop": 1144128, "iterations": 22624, "other": 1179814, "im2col": 1981316},
        "224x224x3->64 k7s2": {"loop": 11063808, "iterations": 238336, "other": 5331334, "im2col": 7511368},
        "26x8x128->128 k3s1": {"loop": 2674048, "iterations": 59904, "other": 265178, "im2col": 99372},
        "26x8x128->128 k3s1r": {"loop": 2674048, "iterations": 59904, "other": 302826, "im2col": 99372},
        "26x8x128->256 k1s2": {"loop": 156000, "iterations": 3328, "other": 70723, "im2col": 9077},
        "26x8x128->256 k3s2": {"loop": 1337024, "iterations": 29952, "other": 133635, "im2col": 41552},
        "28x28x128->128 k3s1": {"loop": 10079104, "iterations": 225792, "other": 999146, "im2col": 351764},
        "28x28x128->128 k3s1r": {"loop": 10079104, "iterations": 225792, "other": 1141050, "im2col": 351764},
        "28x28x128->256 k1s2": {"loop": 588000, "iterations": 12544, "other": 264619, "im2col": 29487},
        "28x28x128->256 k3s2": {"loop": 5039552, "iterations": 112896, "other": 500619, "im2col": 104653},
        "51x16x64->128 k1s2": {"loop": 165568, "iterations": 3328, "other": 133514, "im2col": 27471},
        "51x16x64->128 k3s2": {"loop": 1337024, "iterations": 29952, "other": 186762, "im2col": 77154},
        "51x16x64->64 k3s1": {"loop": 2622624, "iterations": 58752, "other": 501158, "im2col": 286598},
        "51x16x64->64 k3s1r": {"loop": 2622624, "iterations": 58752, "other": 577046, "im2col": 286598},
        "56x56x64->128 k1s2": {"loop": 624064, "iterations": 12544, "other": 502874, "im2col": 100047},
        "56x56x64->128 k3s2": {"loop": 5039552, "iterations": 112896, "other": 703578, "im2col": 280207},
        "56x56x64->64 k3s1": {"loop": 10079104, "iterations": 225792, "other": 1925638, "im2col": 1102544},
        "56x56x64->64 k3s1r": {"loop": 10079104, "iterations": 225792, "other": 2217286, "im2col": 1102544},
    },
}

# Thread-CPU microseconds on this x86 machine (AMD EPYC with AVX-512 VNNI, 2 cores, heavily loaded by other jobs:
# thread CPU time, minimum of 7) of im2col and of the GEMM for each shape, from `--measure-x86` — used only for the
# x86 non-GEMM factor the doc compares with.
X86_US: dict = {  # shape: [im2col µs, GEMM µs] (0 im2col: the 1x1/1 convolutions read their input directly)
    "avx2": {
        "13x4x256->256 k3s1": [2.8, 379.1],
        "13x4x256->256 k3s1r": [3.5, 401.4],
        "13x4x256->512 k1s1": [0.0, 82.4],
        "13x4x256->512 k3s1": [3.4, 766.3],
        "13x4x512->512 k3s1": [10.9, 1691.2],
        "13x4x512->512 k3s1r": [16.5, 1828.9],
        "14x14x256->256 k3s1": [11.4, 1430.6],
        "14x14x256->256 k3s1r": [14.3, 1422.7],
        "14x14x256->512 k1s1": [0.0, 323.6],
        "14x14x256->512 k3s1": [16.0, 3079.2],
        "14x14x512->512 k3s1": [51.3, 6754.3],
        "14x14x512->512 k3s1r": [51.6, 6309.0],
        "201x64x1->64 k7s2": [191.1, 175.8],
        "224x224x3->64 k7s2": [770.9, 1706.9],
        "26x8x128->128 k3s1": [7.2, 371.5],
        "26x8x128->128 k3s1r": [7.3, 372.6],
        "26x8x128->256 k1s2": [1.0, 24.2],
        "26x8x128->256 k3s2": [2.3, 191.0],
        "28x28x128->128 k3s1": [37.8, 1417.1],
        "28x28x128->128 k3s1r": [31.3, 1425.1],
        "28x28x128->256 k1s2": [2.5, 87.4],
        "28x28x128->256 k3s2": [7.7, 702.6],
        "51x16x64->128 k1s2": [2.7, 26.7],
        "51x16x64->128 k3s2": [6.8, 189.5],
        "51x16x64->64 k3s1": [23.0, 379.7],
        "51x16x64->64 k3s1r": [24.9, 379.6],
        "56x56x64->128 k1s2": [8.1, 98.5],
        "56x56x64->128 k3s2": [22.9, 726.3],
        "56x56x64->64 k3s1": [90.9, 1459.1],
        "56x56x64->64 k3s1r": [111.2, 1519.7],
    },
    "avx512vnni": {
        "13x4x256->256 k3s1": [4.0, 145.5],
        "13x4x256->256 k3s1r": [3.9, 147.6],
        "13x4x256->512 k1s1": [0.0, 37.5],
        "13x4x256->512 k3s1": [4.4, 294.7],
        "13x4x512->512 k3s1": [5.3, 561.1],
        "13x4x512->512 k3s1r": [4.9, 559.0],
        "14x14x256->256 k3s1": [10.1, 525.2],
        "14x14x256->256 k3s1r": [10.6, 529.4],
        "14x14x256->512 k1s1": [0.0, 130.1],
        "14x14x256->512 k3s1": [10.3, 1051.8],
        "14x14x512->512 k3s1": [20.9, 2130.2],
        "14x14x512->512 k3s1r": [19.6, 2270.1],
        "201x64x1->64 k7s2": [235.9, 116.1],
        "224x224x3->64 k7s2": [857.7, 850.1],
        "26x8x128->128 k3s1": [7.6, 141.9],
        "26x8x128->128 k3s1r": [7.3, 142.5],
        "26x8x128->256 k1s2": [1.1, 10.4],
        "26x8x128->256 k3s2": [2.4, 70.9],
        "28x28x128->128 k3s1": [29.1, 534.8],
        "28x28x128->128 k3s1r": [30.3, 541.4],
        "28x28x128->256 k1s2": [2.4, 37.9],
        "28x28x128->256 k3s2": [8.5, 282.2],
        "51x16x64->128 k1s2": [2.7, 13.0],
        "51x16x64->128 k3s2": [8.5, 77.4],
        "51x16x64->64 k3s1": [23.6, 147.4],
        "51x16x64->64 k3s1r": [23.5, 148.4],
        "56x56x64->128 k1s2": [8.5, 47.4],
        "56x56x64->128 k3s2": [32.7, 290.2],
        "56x56x64->64 k3s1": [121.8, 609.2],
        "56x56x64->64 k3s1r": [99.1, 576.1],
    },
}

# The Swift parts that are not convolutions, single-threaded, on this x86 machine (ms), from
# `soundloc bench engine --layers` on a width-64 random int8 model: the two max-pool rows (0.094 + 0.026 ms) and the
# "heads" stage (0.51-0.57 ms: fp32 heads through OpenBLAS on 1 thread, dequantising f(v), pooling g(a)). The input
# quantisation (CHW float -> NHWC codes, 163 k values) is not profiled on its own: taken as 0.3 ms. Medians under
# heavy load: treated as +-50 %. On ARM the fp32 heads are modelled from their MACs instead (serial_ms), so only
# the max-pools, the input quantisation and an assumed 0.15 ms of the heads stage (dequantisation and pooling of
# 126 k codes) are scaled by the slowdown.
X86_HEADS_STAGE_MS = 0.51
X86_SERIAL_MS = {"maxpool": 0.094 + 0.026, "dequant_pool": 0.15, "input_quant": 0.3}

# ---------------------------------------------------------------------------------------------------- the estimate


def rows_per_thread(m: int, threads: int, mr: int) -> int:
    """Rows of the busiest thread: QuantizedResNet18S5.rows() splits M in chunks of whole register tiles."""
    chunk = math.ceil(math.ceil(m / threads) / mr) * mr
    return min(m, chunk)


def counts_for(conv: Conv, kernel: Kernel) -> dict:
    """Measured instruction counts for this shape (QEMU_COUNTS). Only width-64 shapes were measured; another width
    takes the same-named width-64 layer's non-loop counts scaled by m·(k+n) (im2col and packing grow with m·k,
    requantisation with m·n) — rough, for what-ifs only."""
    table = QEMU_COUNTS.get(kernel.name, {})
    c = table.get(conv.key)
    if c is not None:
        return c
    ref = next((r for r in frame(64) if r.name == conv.name), None)
    if ref is None or ref.key not in table:
        raise KeyError(f"no qemu count for {kernel.name} {conv.key}")
    r = table[ref.key]
    scale = conv.m * (conv.kdim + conv.n) / (ref.m * (ref.kdim + ref.n))
    iters = kernel.iterations(conv.m, conv.n, conv.kdim)
    per_call = (r["loop"] - r["iterations"] * kernel.loop_instructions) * scale
    return {"loop": iters * kernel.loop_instructions + per_call, "iterations": iters, "other": r["other"] * scale,
            "im2col": r["im2col"] * scale}


def conv_cycles(conv: Conv, core: Core, threads: int, end: int, loop_cycles: tuple | None = None) -> dict:
    """Cycles of the busiest thread for one convolution. end: 0 optimistic, 1 nominal, 2 pessimistic.
    loop_cycles replaces the core's cycles per inner-loop iteration (what-if)."""
    k = core.kernel
    rows = rows_per_thread(conv.m, threads, k.mr)
    share = rows / conv.m
    iters = k.iterations(rows, conv.n, conv.kdim)
    loop = iters * (loop_cycles or core.loop_cycles)[end]
    c = counts_for(conv, k)
    other = (c["other"] + c["loop"] - c["iterations"] * k.loop_instructions) * share / core.ipc_other[end]
    im2col = 0 if conv.pointwise else c["im2col"] * share / core.ipc_other[end]
    return {"loop": loop, "other": other, "im2col": im2col, "iterations": iters}


def serial_ms(core: Core, end: int, width: int = 64) -> float:
    """Single-threaded parts: max-pools, input quantisation, dequantisation/pooling of the trunk outputs (x86 × an
    assumed slowdown) and the fp32 heads (their MACs at 8 fp32 MACs/cycle, 50-85 % of it, OpenBLAS 1 thread)."""
    x86 = sum(X86_SERIAL_MS.values())
    x86 *= (0.5, 1.0, 1.5)[end]
    heads_eff = (0.85, 0.7, 0.5)[end]
    heads = head_macs(width) / (core.fp32_macs_per_cycle * heads_eff * core.ghz * 1e9) * 1e3
    return x86 * core.serial_slowdown[end] + heads


def weight_bytes(layers: list[Conv], kernel: Kernel) -> int:
    return sum(math.ceil(c.n / kernel.nr) * kernel.nr * (math.ceil(c.kdim / kernel.kr) * kernel.kr + 4)
               for c in layers)


def dram_floor_ms(core: Core, end: int, layers: list[Conv]) -> float:
    """A floor from DRAM traffic: every weight byte once per frame (22 MB do not fit any cache of either board) plus
    each im2col matrix written and read back once. Overlaps with compute; reported, and the frame is max(compute,
    floor)."""
    b = weight_bytes(layers, core.kernel) + sum(0 if c.pointwise else 2 * c.m * c.kdim for c in layers)
    return b / (core.dram_gbs[end] * 1e9) * 1e3


def estimate(board: str, threads: int, end: int = 1, width: int = 64, loop_cycles: tuple | None = None) -> dict:
    """Whole-frame estimate (ms) for one board, thread count and end of the ranges (0 low, 1 nominal, 2 high)."""
    core = cores()[board]
    layers = frame(width)
    eff = PARALLEL_EFFICIENCY[threads][end]
    parts = Counter()
    for conv in layers:
        for key, v in conv_cycles(conv, core, threads, end, loop_cycles).items():
            parts[key] += v
    hz = core.ghz * 1e9
    conv_ms = (parts["loop"] + parts["other"] + parts["im2col"]) / hz * 1e3 / eff
    ser = serial_ms(core, end, width)
    floor = dram_floor_ms(core, end, layers)
    total = max(conv_ms + ser, floor)
    return {
        "board": board, "threads": threads, "end": ("low", "nominal", "high")[end],
        "gemm_loop_ms": parts["loop"] / hz * 1e3 / eff, "gemm_other_ms": parts["other"] / hz * 1e3 / eff,
        "im2col_ms": parts["im2col"] / hz * 1e3 / eff, "serial_ms": ser, "dram_floor_ms": floor,
        "frame_ms": total, "fps": 1e3 / total,
    }


def table(width: int = 64) -> list[dict]:
    rows = []
    for board in cores():
        for t in (1, 2, 4):
            lo, nom, hi = (estimate(board, t, e, width) for e in (0, 1, 2))
            rows.append({**nom, "frame_ms_low": lo["frame_ms"], "frame_ms_high": hi["frame_ms"],
                         "fps_low": hi["fps"], "fps_high": lo["fps"]})
    return rows


# ncnn's published ResNet-18 int8 times (ms, "avg" of benchncnn, 224x224 input), Tencent/ncnn benchmark/README.md at
# a4d2ea1d (2026-07-22): "Raspberry Pi 4 Model B Broadcom BCM2711B0, Cortex-A72 (ARMv8) (1.8GHz x 4)" (lines
# 1834-1901, added in cc37c1099, 2023-06-15) and "Raspberry Pi 5 Broadcom BCM2712, Cortex-A76 (ARMv8) (2.4GHz x 4)"
# (lines 1920-1988, added in f38fc95e0, 2023-09-28). No 1.5 GHz Pi 4 int8 numbers are published there.
NCNN_RESNET18_INT8_MS = {"pi4-1.8": {1: 158.50, 4: 83.92}, "pi5": {1: 36.42, 4: 16.74}}


def ncnn_scaled(board: str, threads: int, width: int = 64) -> float | None:
    """ncnn's ResNet-18 int8 time scaled by the MAC ratio of the DSOL frame to ResNet-18: what the frame would take at
    ncnn's achieved whole-network MAC rate (an empirical anchor, not a prediction of soundloc's kernels)."""
    t = NCNN_RESNET18_INT8_MS.get(board, {}).get(threads)
    return None if t is None else t * sum(c.macs for c in frame(width)) / resnet18_macs()


TARGETS = {"pi5": 25.0, "pi4-1.5": 8.0, "pi4-1.8": 8.0}  # issue 18: full-width int8 frame at 4 threads


def summary(width: int = 64) -> dict:
    layers = frame(width)
    macs = sum(c.macs for c in layers)
    out = {"frame_macs": macs, "vision_macs": sum(c.macs for c in layers if c.name.startswith("vision")),
           "audio_macs": sum(c.macs for c in layers if c.name.startswith("audio")),
           "resnet18_macs": resnet18_macs(), "head_macs": head_macs(width), "kernels": {}}
    for name, k in KERNELS.items():
        executed = sum(k.iterations(c.m, c.n, c.kdim) * k.macs_per_iteration for c in layers)
        out["kernels"][name] = {
            "loop_instructions": k.loop_instructions, "macs_per_iteration": k.macs_per_iteration,
            "instructions_per_mac": k.loop_instructions / k.macs_per_iteration,
            "padding_overhead": executed / macs - 1,
            "weight_bytes": weight_bytes(layers, k)}
    c = cores()
    out["loop_macs_per_cycle"] = {b: {"ideal": c[b].kernel.macs_per_iteration / ((a72_ideal_cycles() if c[b].kernel
                                                                                    is NEON else a76_ideal_cycles())),
                                      "nominal": c[b].kernel.macs_per_iteration / c[b].loop_cycles[1]}
                                  for b in c}
    return out


# The neon loop before the spill fix (docs/ARM_PERFORMANCE.md, "Waste found", item 1): 81 instructions, 39 / 42.1 /
# 46.3 cycles per iteration. Kept as a what-if so the report shows what the fix is worth. (The non-loop counts are
# the fixed kernel's; the old loop's prologue/epilogue differed by under 1 instruction per iteration.)
NEON_SPILLING = a72_loop_cycles(NEON_SPILLING_LOOP, A72_MCA_CYCLES_SPILLING)


def what_if_rows() -> list[dict]:
    """The Pi 4 frame (1 and 4 threads) with the spilling neon loop the kernel had before the fix."""
    rows = []
    for board in ("pi4-1.5", "pi4-1.8"):
        for t in (1, 4):
            r = [estimate(board, t, e, loop_cycles=NEON_SPILLING)["frame_ms"] for e in (0, 1, 2)]
            rows.append({"case": f"{board}, {t} thread{'s' if t > 1 else ''}, the spilling neon loop before the fix",
                         "frame_ms": r[1], "low": r[0], "high": r[2]})
    return rows


def x86_factor(impl: str = "avx512vnni") -> dict:
    """This x86 machine's non-GEMM factor: (GEMM + im2col + the serial Swift parts) / GEMM over the frame, GEMM being
    the whole gemm_q8 call (packing, microkernel, requantisation), from X86_US and X86_SERIAL_MS."""
    layers = frame()
    gemm = sum(X86_US[impl][c.key][1] for c in layers) / 1e3
    im2col = sum(X86_US[impl][c.key][0] for c in layers) / 1e3
    serial = X86_SERIAL_MS["maxpool"] + X86_SERIAL_MS["input_quant"] + X86_HEADS_STAGE_MS
    return {"gemm_ms": gemm, "im2col_ms": im2col, "serial_ms": serial, "im2col_factor": (gemm + im2col) / gemm,
            "factor": (gemm + im2col + serial) / gemm}


def arm_factor(board: str, threads: int = 1) -> float:
    """The model's own ratio (whole frame) / (gemm_q8 work: loop + packing/requantisation/driver), nominal."""
    r = estimate(board, threads)
    return r["frame_ms"] / (r["gemm_loop_ms"] + r["gemm_other_ms"])


# ------------------------------------------------------------------------------------------ per-layer and comparison


def layer_rows(board: str, threads: int = 1) -> list[tuple[str, float]]:
    """Nominal per-layer time (ms) with the names `soundloc bench engine --layers` prints (max-pools included)."""
    core = cores()[board]
    hz = core.ghz * 1e9
    rows = []
    for conv in frame():
        cyc = conv_cycles(conv, core, threads, 1)
        ms = (cyc["loop"] + cyc["other"] + cyc["im2col"]) / hz * 1e3 / PARALLEL_EFFICIENCY[threads][1]
        rows.append((f"q8 conv {conv.k}x{conv.k}/{conv.stride}{'+res' if conv.residual else ''} "
                     f"{conv.h}x{conv.w}x{conv.cin} -> {conv.oh}x{conv.ow}x{conv.cout}  [{conv.name}]", ms))
        if conv.name.endswith(".conv1") and "layer" not in conv.name:
            pool_ms = X86_SERIAL_MS["maxpool"] * core.serial_slowdown[1] * (0.78 if conv.name.startswith("v") else 0.22)
            rows.append((f"maxpool u8 {conv.oh}x{conv.ow}x{conv.cout}  [{conv.name.split('.')[0]}.maxpool]", pool_ms))
    return rows


def compare(path: str, board: str) -> list[dict]:
    """Rows of a `soundloc bench engine --json` report (int8 stages) beside the estimate for the same thread count."""
    doc = json.loads(Path(path).read_text())
    out = []
    for s in doc.get("stages", []):
        m = re.match(r"(full forward|vision trunk|audio trunk|heads) int8/(\w+), (\d+) thr", s.get("name", ""))
        if not m:
            continue
        stage, kernel, t = m.group(1), m.group(2), int(m.group(3))
        if stage != "full forward" or t not in PARALLEL_EFFICIENCY:
            continue
        est = [estimate(board, t, e)["frame_ms"] for e in (0, 1, 2)]
        measured = s["medianMicroseconds"] / 1e3
        out.append({"stage": s["name"], "measured_ms": measured, "estimate_ms": est[1], "low_ms": est[0],
                    "high_ms": est[2], "measured/estimate": measured / est[1],
                    "inside_range": est[0] <= measured <= est[2], "kernel": kernel,
                    "model_kernel": cores()[board].kernel.name})
    return out


# ------------------------------------------------------------------------------------------------ re-measurement


def recount_loops(clang: str = "/opt/swift/usr/bin/clang") -> dict:
    """Compile the two microkernels for aarch64 and count the instructions of their innermost loop."""
    src = ROOT / "Sources" / "CSoundlocKernels"
    out = {}
    for file, fn in (("q8-gemm-2x8c16-neon.c", "neon_ukernel"), ("q8-gemm-4x16c4-neondot.c", "dot_ukernel")):
        asm = subprocess.run([clang, "--target=aarch64-linux-gnu", "-O2", "-std=gnu11", f"-I{src / 'include'}", "-S",
                              str(src / file), "-o", "-"], check=True, capture_output=True, text=True).stdout
        out[fn] = loop_mix(asm, fn)
    return out


def loop_mix(asm: str, fn: str) -> Counter:
    """Instruction mix of the first loop (from LLVM's 'Inner Loop Header' label to its backward branch) in fn."""
    lines = asm.splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith(fn + ":"))
    head = next(i for i in range(start, len(lines)) if "Inner Loop Header" in lines[i])
    label = lines[head].split(":")[0]
    mix = Counter()
    for l in lines[head + 1:]:
        ins = l.split("//")[0].strip()
        if not ins or ins.startswith("."):
            continue
        op = ins.split()[0]
        args = ins[len(op):]
        if op in ("ldp", "ldr", "stp", "str"):
            op += "_q" if re.search(r"\bq\d", args) else "_d" if re.search(r"\bd\d", args) else ""
        elif op == "mov" and ".16b" in args:
            op = "mov_v"
        elif op.startswith("b.") or op == "b":
            op = "b"
        mix[op] += 1
        if args.strip().endswith(label):
            break
    return mix


HARNESS_C = r"""
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "soundloc_kernels.h"
/* harness IMPL H W CIN COUT K STRIDE RES: one im2col and one gemm_q8 of that convolution's shape */
int main(int argc, char **argv) {
    if (argc != 9) return 2;
    const soundloc_q8_gemm_impl *impl = soundloc_kernels_impl(argv[1]);
    if (!impl) return 2;
    size_t h = atoi(argv[2]), w = atoi(argv[3]), cin = atoi(argv[4]), n = atoi(argv[5]), k = atoi(argv[6]),
           s = atoi(argv[7]), res = atoi(argv[8]), pad = k / 2;
    size_t oh = soundloc_conv_out_size(h, k, s, pad, pad), ow = soundloc_conv_out_size(w, k, s, pad, pad);
    size_t m = oh * ow, kk = k * k * cin;
    uint8_t *x = malloc(h * w * cin), *col = malloc(m * kk), *c = malloc(m * n), *r = malloc(m * n);
    int8_t *wt = malloc(n * kk);
    float *scale = malloc(n * sizeof(float));
    unsigned seed = 1;
    for (size_t i = 0; i < h * w * cin; i++) x[i] = (uint8_t)((seed = seed * 1103515245u + 12345u) >> 24);
    for (size_t i = 0; i < n * kk; i++) wt[i] = (int8_t)((int)((seed = seed * 1103515245u + 12345u) >> 25) - 64);
    for (size_t i = 0; i < m * n; i++) r[i] = (uint8_t)i;
    for (size_t i = 0; i < n; i++) scale[i] = 1e-4f;
    void *packed = aligned_alloc(64, (impl->packed_size(n, kk) + 63) / 64 * 64);
    if (impl->pack_weights(n, kk, wt, NULL, 3, packed)) return 1;
    soundloc_q8_requant rq = {scale, 0, 0, 255, res ? r : NULL, n, 5, 0.5f};
    const int pointwise = k == 1 && s == 1;
    if (!pointwise) soundloc_u8_im2col_nhwc(x, h, w, cin, k, k, s, s, pad, pad, ow, 3, 0, m, col, kk);
    impl->gemm_q8(packed, 0, m, 0, n, pointwise ? x : col, kk, &rq, c, n);
    printf("%u\n", c[0]);
    return 0;
}
"""


def count_log(stream) -> tuple[Counter, dict]:
    """Dynamic instructions per function from a qemu `-d in_asm,exec,nochain` log: each executed translation block
    (a 'Trace' line) counts the instructions of its latest translation ('IN:' block)."""
    tb, cur, first = {}, None, None
    per_fn: Counter = Counter()
    backedges: Counter = Counter()
    for line in stream:
        if line.startswith("IN:"):
            cur, first = [], None
        elif cur is not None and line.startswith("0x"):
            parts = line.split(None, 3)
            if first is None:
                first = int(parts[0].rstrip(":"), 16)
            cur.append(parts[2] if len(parts) > 2 else "?")
            tb[first] = (len(cur), cur.count("b.lo"))
        elif line.startswith("Trace"):
            cur = None
            pc = int(re.search(r"\[[0-9a-f]+/([0-9a-f]+)/", line).group(1), 16)
            fn = line.rsplit("]", 1)[1].strip()
            n, b = tb[pc]
            per_fn[fn] += n
            backedges[fn] += b
    return per_fn, backedges


def measure_qemu(out_path: str) -> dict:
    """Rebuild the harness for aarch64 (clang objects, gcc static link) and count every distinct conv shape."""
    src = ROOT / "Sources" / "CSoundlocKernels"
    clang = shutil.which("clang") or "/opt/swift/usr/bin/clang"
    work = Path(tempfile.mkdtemp(prefix="arm-model-"))
    (work / "harness.c").write_text(HARNESS_C)
    objs = []
    for f in [*sorted(src.glob("*.c")), work / "harness.c"]:
        o = work / (f.stem + ".o")
        subprocess.run([clang, "--target=aarch64-linux-gnu", "--sysroot=/usr/aarch64-linux-gnu", "-isystem",
                        "/usr/aarch64-linux-gnu/include", "-O2", "-std=gnu11", f"-I{src / 'include'}", "-c", str(f),
                        "-o", str(o)], check=True)
        objs.append(str(o))
    exe = work / "harness"
    subprocess.run(["aarch64-linux-gnu-gcc", "-static", *objs, "-lm", "-o", str(exe)], check=True)
    result: dict = {}
    shapes = {c.key: c for c in frame()}
    for kname, cpu, ukernel in (("neon", "cortex-a72", "neon_ukernel"), ("neondot", "cortex-a76", "dot_ukernel")):
        result[kname] = {}
        for key, c in sorted(shapes.items()):
            fifo = work / "log"
            os.mkfifo(fifo)
            shape = map(str, (c.h, c.w, c.cin, c.cout, c.k, c.stride, int(c.residual)))
            p = subprocess.Popen(["qemu-aarch64-static", "-cpu", cpu, "-d", "in_asm,exec,nochain", "-D", str(fifo),
                                  str(exe), kname, *shape], stdout=subprocess.DEVNULL)
            with open(fifo, errors="replace") as f:
                per_fn, back = count_log(f)
            p.wait()
            fifo.unlink()
            result[kname][key] = {
                "loop": per_fn[ukernel], "iterations": back[ukernel],
                "other": per_fn["q8_gemm_drive"] + per_fn["q8_pack_a_s8_neon"] + per_fn["q8_requant_neon"],
                "im2col": per_fn["soundloc_u8_im2col_nhwc"] + per_fn["__memcpy_generic"] + per_fn["__memset_generic"]
                + per_fn[""],
            }
            print(kname, key, result[kname][key], file=sys.stderr)
    Path(out_path).write_text(json.dumps(result, indent=1, sort_keys=True))
    shutil.rmtree(work, ignore_errors=True)
    return result


# ---------------------------------------------------------------------------------------------------------- output


def fmt_range(lo: float, nom: float, hi: float, digits: int = 0) -> str:
    return f"{nom:.{digits}f} ({lo:.{digits}f}–{hi:.{digits}f})"


def print_report(width: int = 64) -> None:
    s = summary(width)
    print(f"frame: {s['frame_macs'] / 1e9:.3f} GMAC int8 (vision {s['vision_macs'] / 1e9:.3f}, audio "
          f"{s['audio_macs'] / 1e9:.3f}) + {s['head_macs'] / 1e6:.1f} M fp32 head MACs; "
          f"ResNet-18 at 224: {s['resnet18_macs'] / 1e9:.3f} GMAC")
    for name, k in s["kernels"].items():
        print(f"  {name}: {k['loop_instructions']} instructions per {k['macs_per_iteration']} MACs "
              f"({k['instructions_per_mac']:.3f}/MAC), tile padding +{100 * k['padding_overhead']:.1f} % MACs, "
              f"packed weights {k['weight_bytes'] / 2**20:.1f} MiB")
    for b, r in s["loop_macs_per_cycle"].items():
        print(f"  {b}: inner loop {r['nominal']:.1f} MACs/cycle nominal, {r['ideal']:.1f} issue-bound")
    print()
    print("| board | threads | frame ms | fps | GEMM loop | GEMM other | im2col | serial | DRAM floor | ncnn-scaled |"
          " target |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in table(width):
        target = TARGETS[r["board"]] if r["threads"] == 4 and width == 64 else None
        ref = ncnn_scaled(r["board"], r["threads"], width)
        ncnn = "" if ref is None else f"{ref:.0f} ms"
        verdict = "" if target is None else (f"≥{target:g} fps: " + (
            "yes" if r["fps_low"] >= target else "no" if r["fps_high"] < target else
            ("likely" if r["fps"] >= target else "unlikely")))
        print(f"| {r['board']} | {r['threads']} | {fmt_range(r['frame_ms_low'], r['frame_ms'], r['frame_ms_high'])}"
              f" | {fmt_range(r['fps_low'], r['fps'], r['fps_high'], 1)} | {r['gemm_loop_ms']:.0f} | "
              f"{r['gemm_other_ms']:.0f} | {r['im2col_ms']:.0f} | {r['serial_ms']:.1f} | {r['dram_floor_ms']:.1f} | "
              f"{ncnn} | {verdict} |")


def print_extras() -> None:
    print()
    for impl in ("avx512vnni", "avx2"):
        f = x86_factor(impl)
        print(f"x86 ({impl}, 1 thread, thread-CPU time): GEMM {f['gemm_ms']:.1f} ms, im2col {f['im2col_ms']:.1f} ms, "
              f"serial ~{f['serial_ms']:.1f} ms: factor {f['factor']:.3f} (im2col alone {f['im2col_factor']:.3f})")
    for b in cores():
        print(f"model's factor, {b}, 1 thread: {arm_factor(b):.3f}")
    for r in what_if_rows():
        print(f"what-if: {r['case']}: {r['frame_ms']:.0f} ms ({r['low']:.0f}–{r['high']:.0f}), "
              f"{1e3 / r['frame_ms']:.1f} fps ({1e3 / r['high']:.1f}–{1e3 / r['low']:.1f})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--width", type=int, default=64, help="ResNet base width (64 = full width)")
    ap.add_argument("--layers", metavar="BOARD", choices=sorted(cores()), help="per-layer 1-thread estimate")
    ap.add_argument("--compare", metavar="JSON", help="a `soundloc bench engine --json` report from a board")
    ap.add_argument("--board", choices=sorted(cores()), default="pi5", help="board for --compare")
    ap.add_argument("--json", metavar="OUT", help="write the summary and the table as JSON")
    ap.add_argument("--recount-loops", action="store_true", help="recount the microkernels' inner loops with clang")
    ap.add_argument("--measure-qemu", metavar="OUT", help="redo the qemu instruction counts into OUT (JSON)")
    args = ap.parse_args(argv)
    if args.recount_loops:
        for fn, mix in recount_loops().items():
            print(fn, sum(mix.values()), dict(mix.most_common()))
        return 0
    if args.measure_qemu:
        measure_qemu(args.measure_qemu)
        return 0
    if args.compare:
        def note(r: dict) -> str:
            return "" if r["kernel"] == r["model_kernel"] else f"  (the model is for {r['model_kernel']})"

        rows = compare(args.compare, args.board)
        if not rows:
            print(f"{args.compare}: no 'full forward int8/..., N thr' stages", file=sys.stderr)
            return 1
        for r in rows:
            print(f"{r['stage']}: measured {r['measured_ms']:.1f} ms, estimate {r['estimate_ms']:.1f} ms "
                  f"({r['low_ms']:.1f}–{r['high_ms']:.1f}), ratio {r['measured/estimate']:.2f}"
                  f"{'' if r['inside_range'] else '  OUTSIDE the range'}"
                  f"{note(r)}")
        return 0
    if args.layers:
        total = 0.0
        for name, ms in layer_rows(args.layers):
            total += ms
            print(f"  {ms:8.3f} ms  {name}")
        print(f"  {total:8.3f} ms  total (convolutions and max-pools, 1 thread, nominal)")
        return 0
    print_report(args.width)
    if args.width == 64:
        print_extras()
    if args.json:
        Path(args.json).write_text(json.dumps({"summary": summary(args.width), "table": table(args.width)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
