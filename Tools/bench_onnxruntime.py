#!/usr/bin/env python3
"""Time ONNX Runtime (CPU, fp32, batch 1) on the backbones written by `dsol.onnx_export`.

    python3 -m dsol.onnx_export MODEL.safetensors --out-dir DIR     (with PYTHONPATH=Tools)
    python3 Tools/bench_onnxruntime.py DIR [--runs 50] [--threads 1,2] [--json out.json]

For each network (vision.onnx, audio.onnx) and intra-op thread count: warm-up runs, then
--runs timed runs of session.run; reports the median and p99 latency in milliseconds.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np


def percentile(sorted_ms: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of an ascending list."""
    rank = max(1, int(np.ceil(q / 100.0 * len(sorted_ms))))
    return sorted_ms[rank - 1]


def bench(path: Path, threads: int, runs: int, warmup: int) -> dict:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in inp.shape]
    feed = {inp.name: np.random.default_rng(0).normal(0, 1, shape).astype(np.float32)}
    for _ in range(warmup):
        sess.run(None, feed)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        sess.run(None, feed)
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return {"network": path.stem, "threads": threads, "runs": runs,
            "median_ms": float(np.median(times)), "p99_ms": percentile(times, 99),
            "min_ms": times[0], "max_ms": times[-1]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("onnx_dir", help="directory with vision.onnx and/or audio.onnx")
    ap.add_argument("--runs", type=int, default=50, help="timed runs per case (default 50)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed runs first (default 5)")
    ap.add_argument("--threads", default="1,2", help="comma-separated intra-op thread counts (default 1,2)")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON ('-' for stdout)")
    args = ap.parse_args(argv)
    try:
        import onnxruntime as ort
    except ImportError:
        print("onnxruntime is not installed (python3 -m pip install onnxruntime)", file=sys.stderr)
        return 2
    nets = [p for p in (Path(args.onnx_dir) / "vision.onnx", Path(args.onnx_dir) / "audio.onnx") if p.exists()]
    if not nets:
        print(f"no vision.onnx or audio.onnx in {args.onnx_dir}", file=sys.stderr)
        return 2
    threads = [int(t) for t in args.threads.split(",") if t.strip()]
    results = [bench(p, t, args.runs, args.warmup) for p in nets for t in threads]

    print(f"ONNX Runtime {ort.__version__} fp32 batch 1, {args.runs} runs after {args.warmup} warm-up")
    print(f"{'network':<8} {'threads':>7} {'median ms':>10} {'p99 ms':>9}")
    for r in results:
        print(f"{r['network']:<8} {r['threads']:>7} {r['median_ms']:>10.2f} {r['p99_ms']:>9.2f}")
    if args.json:
        doc = {"runtime": "onnxruntime", "version": ort.__version__, "machine": platform.machine(),
               "processor": platform.processor(), "results": results}
        text = json.dumps(doc, indent=2)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
