#!/usr/bin/env python3
"""Time soundloc's two backbones against peer engines, same weights, same inputs, one run.

    python3 Tools/bench_peers.py --model M.safetensors --calibration DATA/manifest.json \
        [--limit 64] [--runs 30] [--threads 1,2] [--soundloc .build/release/soundloc] \
        [--int8-model M_int8.safetensors] [--accuracy] [--json out.json]

Engines (each per backbone and per intra-op thread count, batch 1, median and p99 over --runs
timed runs after --warmup untimed ones):

  ort-fp32             ONNX Runtime, the backbones exported by dsol.onnx_export (BatchNorm folded).
  ort-int8-<method>    ONNX Runtime, static quantisation of those graphs (quantize_static, QDQ,
                       per-channel int8 weights, activations int8 by default: ORT's recommended
                       "S8S8 with QDQ" first choice; on x86 ORT turns int8 activations into uint8
                       internally to use its u8s8 kernels). Calibrated on real preprocessed inputs
                       from --calibration with each method in --calibrate (percentile, minmax).
  ncnn-fp32            ncnn through pnnx's ONNX converter (optional; skipped with a reason if
                       ncnn or pnnx is not installed). fp16/bf16 storage switched off.
  litert               LiteRT (ai-edge-litert): only an interpreter is on PyPI; converting the
                       backbones to .tflite needs ai-edge-torch or onnx2tf + TensorFlow, so it is
                       reported as skipped unless those import.
  soundloc-fp32/int8   `<--soundloc> bench engine --model M [--int8-model Q] --json tmp.json` (an external
                       process; its own random inputs of the same shapes). Without --int8-model, Q is
                       made first by `<--soundloc> quantize` from M on the same calibration data.

Calibration inputs: a data-set manifest.json (Tools/dataset; scenes with `image` and `audio`
relative to the manifest's folder) or a folder of images (png/ppm/jpg) and WAVs, chosen as
`soundloc quantize` chooses them (--limit samples spread evenly, same pairing rule), and
preprocessed as the engine does (dsol.image.preprocess; dsol.audio log-mel of the first
second, SPEC §3).

The numbers are single readings on a shared, noisy machine: compare the ratios measured side
by side in one run, not absolute times across runs.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TOOLS = Path(__file__).resolve().parent
if str(TOOLS) not in sys.path:
    sys.path.insert(0, str(TOOLS))

NETS = ("vision", "audio")
INPUT_SHAPES = {"vision": (1, 3, 224, 224), "audio": (1, 1, 201, 64)}
IMAGE_SUFFIXES = (".png", ".ppm", ".pgm", ".jpg", ".jpeg")
NOISE_NOTE = ("single noisy readings on a shared machine (batch 1, median of the timed runs); "
              "compare ratios measured side by side in this run, not absolute times across runs")


# ---------------------------------------------------------------- statistics

def percentile(sorted_ms: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of an ascending list."""
    rank = max(1, int(np.ceil(q / 100.0 * len(sorted_ms))))
    return sorted_ms[rank - 1]


def time_runs(fn, runs: int, warmup: int) -> dict:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return {"runs": runs, "warmup": warmup, "median_ms": float(np.median(times)),
            "p99_ms": percentile(times, 99), "min_ms": times[0], "max_ms": times[-1]}


# ---------------------------------------------------------------- calibration inputs

def _read_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def audio_features(path: Path) -> tuple[np.ndarray, str]:
    """WAV -> (201, 64) float32 log-mel of its first second, and which implementation made it."""
    from dsol.audio import load_clip, logmel

    return logmel(load_clip(path, 0.0, 1.0)), "dsol.audio"


def _spread(items: list, limit: int) -> list:
    """`limit` items spread evenly: item i * n // limit (soundloc quantize's choice, so both
    calibrate on the same samples)."""
    n = len(items)
    count = min(max(limit, 1), n)
    return [items[i * n // count] for i in range(count)]


def calibration_pairs(source: str | Path, limit: int) -> tuple[list[tuple[str, Path, Path]], str]:
    """[(id, image path, wav path)] and a description of where they came from.

    Mirrors `soundloc quantize --calibration`: a manifest's scenes (or a folder's manifest.json);
    else a folder's images and WAVs (names sorted), paired in order when their counts match, else
    every image with every WAV."""
    source = Path(source)
    if source.is_dir() and (source / "manifest.json").is_file():
        source = source / "manifest.json"
    if source.is_file():
        m = json.loads(source.read_text())
        scenes = m["scenes"] if isinstance(m, dict) else m
        root = source.parent
        pairs = [(str(s.get("id", i)), root / s["image"], root / s["audio"]) for i, s in enumerate(scenes)]
        return _spread(pairs, limit), f"manifest {source} ({len(scenes)} scenes)"
    if not source.is_dir():
        raise FileNotFoundError(f"{source}: no such manifest or folder")
    names = sorted(p for p in source.iterdir() if p.is_file())
    images = [p for p in names if p.suffix.lower() in IMAGE_SUFFIXES]
    wavs = [p for p in names if p.suffix.lower() == ".wav"]
    if not images or not wavs:
        raise ValueError(f"{source}: needs image files ({', '.join(IMAGE_SUFFIXES)}) and WAV files")
    if len(images) == len(wavs):
        pairs = [(p.stem, p, w) for p, w in zip(images, wavs)]
        how = "paired in order"
    else:
        n = len(images) * len(wavs)
        pairs = [(f"{images[j % len(images)].stem}+{wavs[(j % len(images) + j // len(images)) % len(wavs)].stem}",
                  images[j % len(images)], wavs[(j % len(images) + j // len(images)) % len(wavs)]) for j in range(n)]
        how = "every image with every WAV"
    return _spread(pairs, limit), f"folder {source} ({len(pairs)} image/WAV pairs, {how})"


def load_calibration(source: str | Path, limit: int) -> dict:
    from dsol.image import preprocess

    pairs, where = calibration_pairs(source, limit)
    images, audios, how = [], [], ""
    for _, img, wav in pairs:
        images.append(preprocess(_read_rgb(img))[None])
        mel, how = audio_features(wav)
        audios.append(mel[None, None].astype(np.float32))
    return {"source": where, "count": len(pairs), "ids": [p[0] for p in pairs], "audio_frontend": how,
            "vision": images, "audio": audios}


# ---------------------------------------------------------------- ONNX Runtime

def ort_session(path: Path, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def ort_runner(path: Path, threads: int, x: np.ndarray):
    sess = ort_session(path, threads)
    feed = {sess.get_inputs()[0].name: x}
    return lambda: sess.run(None, feed)


def make_reader(name: str, arrays: list[np.ndarray]):
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        """Feeds the preprocessed calibration inputs; set_range lets ORT calibrate in strides."""

        def __init__(self):
            self.start, self.end, self.i = 0, len(arrays), 0

        def get_next(self):
            if self.i >= self.end:
                return None
            self.i += 1
            return {name: arrays[self.i - 1]}

        def __len__(self):
            return len(arrays)

        def set_range(self, start_index: int, end_index: int):
            self.start, self.end, self.i = start_index, min(end_index, len(arrays)), start_index

        def rewind(self):
            self.i = self.start

    return Reader()


def _stride(n: int, most: int = 16) -> int:
    return max(d for d in range(1, min(n, most) + 1) if n % d == 0)


def quantize(fp32: Path, out: Path, input_name: str, arrays: list[np.ndarray], method: str,
             activation: str, reduce_range: bool, percentile_value: float) -> dict:
    """Static QDQ quantisation of one backbone; returns the settings actually used."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    src, pre = fp32, "none"
    try:  # ORT's recommended pre-processing: shape inference plus graph optimisation
        from onnxruntime.quantization.shape_inference import quant_pre_process

        prep = out.with_name(out.stem + "_prep.onnx")
        quant_pre_process(str(fp32), str(prep), skip_symbolic_shape=True)
        src, pre = prep, "quant_pre_process(skip_symbolic_shape)"
    except Exception as e:  # noqa: BLE001 - optional step
        pre = f"skipped ({type(e).__name__}: {e})"
    cal = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
           "entropy": CalibrationMethod.Entropy}[method]
    act = {"int8": QuantType.QInt8, "uint8": QuantType.QUInt8}[activation]
    extra = {"CalibStridedMinMax": _stride(len(arrays))}  # bounded memory: collect in strides
    if method == "percentile":
        extra["CalibPercentile"] = percentile_value
    t0 = time.perf_counter()
    log = logging.getLogger()
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the histogram calibrators print
            quantize_static(str(src), str(out), make_reader(input_name, arrays), quant_format=QuantFormat.QDQ,
                            per_channel=True, activation_type=act, weight_type=QuantType.QInt8,
                            reduce_range=reduce_range, calibrate_method=cal, extra_options=extra)
    finally:
        log.setLevel(level)
    settings = {"format": "QDQ", "per_channel": True, "weight_type": "int8 (symmetric per output channel)",
                "activation_type": activation, "reduce_range": reduce_range, "calibrate_method": method,
                "calibration_samples": len(arrays), "stride": extra["CalibStridedMinMax"], "preprocess": pre,
                "seconds": round(time.perf_counter() - t0, 2)}
    if method == "percentile":
        settings["percentile"] = percentile_value
        settings["symmetric_ranges"] = True  # ORT's default for the percentile calibrator
    return settings


# ---------------------------------------------------------------- ncnn (optional)

def _pnnx_exe() -> str | None:
    try:
        from pnnx.utils.convert import EXEC_PATH  # type: ignore

        if EXEC_PATH and Path(EXEC_PATH).exists():
            return str(EXEC_PATH)
    except Exception:  # noqa: BLE001
        pass
    return shutil.which("pnnx")


def ncnn_convert(onnx_path: Path, net: str, work: Path) -> tuple[Path, Path]:
    """ONNX -> ncnn param/bin through pnnx, fp32 weights."""
    exe = _pnnx_exe()
    if exe is None:
        raise RuntimeError("pnnx converter not installed (pip install pnnx)")
    d = work / f"ncnn_{net}"
    d.mkdir(parents=True, exist_ok=True)
    shape = ",".join(str(s) for s in INPUT_SHAPES[net])
    files = {k: d / f"{net}.{k}" for k in ("pnnx.param", "pnnx.bin", "pnnx.onnx", "ncnn.param", "ncnn.bin")}
    cmd = [exe, str(onnx_path), f"inputshape=[{shape}]f32", "fp16=0",
           f"pnnxparam={files['pnnx.param']}", f"pnnxbin={files['pnnx.bin']}", f"pnnxpy={d / 'pnnx_model.py'}",
           f"pnnxonnx={files['pnnx.onnx']}", f"ncnnparam={files['ncnn.param']}", f"ncnnbin={files['ncnn.bin']}",
           f"ncnnpy={d / 'ncnn_model.py'}"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=d)
    if run.returncode != 0 or not files["ncnn.param"].exists():
        raise RuntimeError(f"pnnx failed (rc {run.returncode}): {(run.stderr or run.stdout)[-300:]}")
    # pnnx leaves ONNX ReduceMax (the audio net's global max pool) unconverted: ncnn's global
    # max Pooling is the same operation.
    lines = files["ncnn.param"].read_text().splitlines()
    for i, line in enumerate(lines):
        parts = line.split()
        if parts and parts[0] == "ReduceMax" and parts[2:4] == ["1", "1"]:
            lines[i] = f"Pooling {parts[1]} 1 1 {parts[4]} {parts[5]} 0=0 4=1"
    files["ncnn.param"].write_text("\n".join(lines) + "\n")
    return files["ncnn.param"], files["ncnn.bin"]


def ncnn_net(param: Path, binf: Path, threads: int):
    import ncnn

    net = ncnn.Net()
    net.opt.num_threads = threads
    for flag in ("use_fp16_storage", "use_fp16_packed", "use_fp16_arithmetic", "use_bf16_storage"):
        if hasattr(net.opt, flag):
            setattr(net.opt, flag, False)
    if net.load_param(str(param)) != 0 or net.load_model(str(binf)) != 0:
        raise RuntimeError(f"ncnn could not load {param}")
    return net


def ncnn_forward(net, x: np.ndarray) -> np.ndarray:
    import ncnn

    ex = net.create_extractor()
    ex.input("in0", ncnn.Mat(np.ascontiguousarray(x[0])))
    rc, out = ex.extract("out0")
    if rc != 0:
        raise RuntimeError(f"ncnn extract failed ({rc})")
    return np.array(out)


# ---------------------------------------------------------------- soundloc

def _num(d: dict, keys_us: tuple[str, ...], keys_ms: tuple[str, ...]) -> float | None:
    for k in keys_us:
        if isinstance(d.get(k), (int, float)):
            return float(d[k]) / 1000.0
    for k in keys_ms:
        if isinstance(d.get(k), (int, float)):
            return float(d[k])
    return None


def parse_soundloc(doc: dict, default_precision: str) -> tuple[list[dict], list[str]]:
    """`soundloc bench engine --json` -> rows {engine, network, threads, median_ms, p99_ms}.

    Tolerant of changes: stages may carry explicit network/threads/precision fields, or only the
    name ("vision trunk fp32, 2 thread(s)", "audio trunk int8/avx2, 1 thr", "heads int8, 2 thr",
    "full forward fp32, 1 thr"); times in µs (…Microseconds) or ms."""
    warnings: list[str] = []
    stages = doc.get("stages") or doc.get("results") or doc.get("measurements") or []
    if isinstance(stages, dict):
        stages = [dict(v, name=v.get("name", k)) for k, v in stages.items() if isinstance(v, dict)]
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    top_precision = doc.get("precision") or meta.get("precision")
    rows = []
    for s in stages:
        if not isinstance(s, dict):
            continue
        name = str(s.get("name") or s.get("stage") or "")
        low = name.lower()
        net = str(s.get("network") or s.get("trunk") or s.get("net") or "").lower()
        if not net:
            net = ("vision" if "vision" in low else "audio" if "audio" in low else "heads" if "head" in low
                   else "full" if ("full" in low or "forward" in low) else "")
        if net.startswith("full") or net == "forward":
            net = "full"
        if net.startswith("head"):
            net = "heads"
        if net not in ("vision", "audio", "heads", "full"):
            continue
        threads = s.get("threads")
        if not isinstance(threads, int):
            m = re.search(r"(\d+)\s*thr", low)
            threads = int(m.group(1)) if m else None
        prec = s.get("precision")
        if not prec:
            prec = "int8" if "int8" in low else "fp32" if "fp32" in low else None
        if not prec:
            prec = top_precision or default_precision
        median = _num(s, ("medianMicroseconds", "median_us", "medianUs"), ("medianMilliseconds", "median_ms", "medianMs"))
        p99 = _num(s, ("p99Microseconds", "p99_us", "p99Us"), ("p99Milliseconds", "p99_ms", "p99Ms"))
        if median is None:
            warnings.append(f"stage {name!r}: no median")
            continue
        row = {"engine": f"soundloc-{str(prec).lower()}", "network": net, "threads": threads,
               "median_ms": median, "p99_ms": p99, "runs": s.get("iterations"), "stage": name}
        k = re.search(r"int8/([^,\s]+)", name)
        if k or s.get("kernel"):
            row["kernel"] = s.get("kernel") or k.group(1)
        rows.append(row)
    # An int8 model whose stages are all named "fp32" (a binary that predates int8 naming):
    # label them by the model that was asked for, and say so.
    if default_precision == "int8" and rows and all(r["engine"] == "soundloc-fp32" for r in rows) \
            and not top_precision:
        warnings.append("int8 model's stages are labelled fp32 by the binary; reported as soundloc-int8")
        for r in rows:
            r["engine"] = "soundloc-int8"
    return rows, warnings


def _soundloc_bench(binary: str, model_args: list[str], default_precision: str, threads: list[int], runs: int,
                    warmup: int, out: Path) -> dict:
    """One `bench engine` process; retried without --iterations/--warmup if the binary rejects them."""
    base = [binary, "bench", "engine", *model_args, "--threads", ",".join(map(str, threads)), "--json", str(out)]
    for extra in (["--iterations", str(runs), "--warmup", str(warmup)], []):
        cmd = base + extra
        if out.exists():
            out.unlink()
        t0 = time.perf_counter()
        try:
            run = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
        except (OSError, subprocess.TimeoutExpired) as e:
            return {"command": cmd, "error": f"{type(e).__name__}: {e}"}
        if run.returncode == 0 and out.exists():
            doc = json.loads(out.read_text())
            rows, warnings = parse_soundloc(doc, default_precision)
            return {"command": cmd, "seconds": round(time.perf_counter() - t0, 1), "report": doc,
                    "rows": rows, "warnings": warnings}
        text = (run.stderr + run.stdout).strip()
        if "nknown option" not in text or not extra:
            return {"command": cmd, "error": f"rc {run.returncode}: {text[-400:]}"}
    raise AssertionError("unreachable")


def run_soundloc(binary: str, model: str, int8_model: str | None, threads: list[int], runs: int, warmup: int,
                 work: Path) -> list[dict]:
    """fp32 (and int8) engine numbers: one process measuring both side by side where the binary
    takes --int8-model, else one process per model."""
    if int8_model:
        both = _soundloc_bench(binary, ["--model", model, "--int8-model", int8_model], "fp32", threads, runs,
                               warmup, work / "soundloc_fp32_int8.json")
        if "error" not in both and any(r["engine"] == "soundloc-int8" for r in both["rows"]):
            return [both]
    out = [_soundloc_bench(binary, ["--model", model], "fp32", threads, runs, warmup, work / "soundloc_fp32.json")]
    if int8_model:
        out.append(_soundloc_bench(binary, ["--model", int8_model], "int8", threads, runs, warmup,
                                   work / "soundloc_int8.json"))
    return out


def soundloc_quantize(binary: str, model: str, calibration: str, limit: int, method: str, out: Path) -> dict:
    """`soundloc quantize` on the same calibration data, for an int8 model when none is given."""
    cmd = [binary, "quantize", "--model", model, "--calibration", calibration, "--out", str(out),
           "--limit", str(limit), "--method", method]
    t0 = time.perf_counter()
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    except (OSError, subprocess.TimeoutExpired) as e:
        return {"command": cmd, "error": f"{type(e).__name__}: {e}"}
    if run.returncode != 0 or not out.exists():
        return {"command": cmd, "error": f"rc {run.returncode}: {(run.stderr + run.stdout).strip()[-400:]}"}
    return {"command": cmd, "seconds": round(time.perf_counter() - t0, 1), "model": str(out),
            "output_tail": run.stdout.strip()[-600:]}


# ---------------------------------------------------------------- report

def machine_info() -> dict:
    info = {"machine": platform.machine(), "system": platform.system(), "python": platform.python_version(),
            "cpus": os.cpu_count()}
    try:
        text = Path("/proc/cpuinfo").read_text()
        m = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
        if m:
            info["cpu"] = m.group(1).strip()
        fm = re.search(r"^flags\s*:\s*(.+)$", text, re.M)
        if fm:
            flags = set(fm.group(1).split())
            info["isa"] = [f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8") if f in flags]
    except OSError:
        pass
    return info


def versions() -> dict:
    out = {}
    for mod in ("onnxruntime", "onnx", "torch", "numpy", "ncnn", "ai_edge_litert"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001
            pass
    return out


def frame_rows(results: list[dict]) -> list[dict]:
    """vision + audio per engine and thread count (sum of the two medians / p99s)."""
    by = {(r["engine"], r["threads"], r["network"]): r for r in results}
    rows = []
    for (engine, threads, net), v in by.items():
        a = by.get((engine, threads, "audio"))
        if net != "vision" or a is None:
            continue
        p99 = v.get("p99_ms") + a.get("p99_ms") if v.get("p99_ms") is not None and a.get("p99_ms") is not None else None
        rows.append({"engine": engine, "network": "frame", "threads": threads,
                     "median_ms": v["median_ms"] + a["median_ms"], "p99_ms": p99,
                     "definition": "vision median + audio median"})
    return rows


def ratio_rows(table: dict, threads: list[int], primary_int8: str | None) -> list[dict]:
    pairs = [("soundloc-int8", primary_int8)] if primary_int8 else []
    pairs.append(("soundloc-int8", "soundloc-fp32"))
    if primary_int8:
        pairs.append((primary_int8, "ort-fp32"))
    pairs.append(("soundloc-fp32", "ort-fp32"))
    out = []
    for num, den in pairs:
        for net in ("vision", "audio", "frame"):
            for t in threads:
                a, b = table.get((num, net, t)), table.get((den, net, t))
                if a is not None and b is not None and b > 0:
                    out.append({"ratio": f"{num} / {den}", "network": net, "threads": t, "value": a / b})
    return out


def short_name(engine: str) -> str:
    """Column label: ort-int8-percentile -> ORT-i8-pct, soundloc-fp32 -> SL-fp32."""
    e = engine.replace("soundloc-", "SL-").replace("ort-", "ORT-").replace("ncnn-", "ncnn-")
    return e.replace("-int8", "-i8").replace("-percentile", "-pct").replace("-minmax", "-mm").replace("-entropy", "-ent")


ROW_NAMES = {"vision": "vision", "audio": "audio", "frame": "frame (vision+audio)", "heads": "heads",
             "full": "full forward"}


def _grid(title: str, groups: list[str], threads: list[int], rows: list[tuple[str, list]], fmt: str) -> None:
    """Rows x (group x threads) grid with a two-line header: group names, then thread counts."""
    cw = 8
    gw = max([cw * len(threads)] + [len(g) + 2 for g in groups])
    cw = gw // len(threads)
    gw = cw * len(threads)
    print(title)
    print(f"{'':<22}" + "".join(f"{g:>{gw}}" for g in groups))
    print(f"{'threads':<22}" + "".join(f"{t:>{cw}}" for _ in groups for t in threads))
    for label, cells in rows:
        print(f"{label:<22}" + "".join(f"{'-':>{cw}}" if v is None else f"{v:>{cw}{fmt}}" for v in cells))


def print_tables(results: list[dict], ratios: list[dict], engines: list[str], threads: list[int]) -> None:
    table = {(r["engine"], r["network"], r["threads"]): r["median_ms"] for r in results}
    shown = [e for e in engines if any((e, n, t) in table for n in ("vision", "audio") for t in threads)]
    rows = [(ROW_NAMES[net], [table.get((e, net, t)) for e in shown for t in threads])
            for net in ("vision", "audio", "frame", "heads", "full") if any((e, net, t) in table for e in shown for t in threads)]
    print()
    _grid("median latency, ms (batch 1; frame = vision median + audio median)",
          [short_name(e) for e in shown], threads, rows, ".2f")
    if ratios:
        keys = list(dict.fromkeys(r["ratio"] for r in ratios))
        by = {(r["ratio"], r["network"], r["threads"]): r["value"] for r in ratios}
        labels = ["/".join(short_name(x.strip()) for x in k.split("/")) for k in keys]
        rrows = [(ROW_NAMES[net], [by.get((k, net, t)) for k in keys for t in threads])
                 for net in ("vision", "audio", "frame")]
        print()
        _grid("ratios of medians (< 1: the numerator is faster)", labels, threads, rrows, ".2f")
    legend = ", ".join(f"{short_name(e)} = {e}" for e in shown)
    print(f"\n{legend}\nnote: {NOISE_NOTE}")


# ---------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 2)[2])
    ap.add_argument("--model", required=True, help="fp32 soundloc model (.safetensors)")
    ap.add_argument("--calibration", required=True, help="data-set manifest.json, or a folder of png/jpg + wav")
    ap.add_argument("--limit", type=int, default=64, help="calibration samples (default 64)")
    ap.add_argument("--runs", type=int, default=30, help="timed runs per case (default 30)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed runs first (default 3)")
    ap.add_argument("--threads", default="1,2", help="comma-separated intra-op thread counts (default 1,2)")
    ap.add_argument("--calibrate", default="percentile,minmax",
                    help="ORT calibration methods, comma-separated, first one is the reference "
                         "for the ratios (percentile, minmax, entropy; default percentile,minmax)")
    ap.add_argument("--percentile", type=float, default=99.999, help="percentile calibration (default ORT's 99.999)")
    ap.add_argument("--activation-type", choices=("int8", "uint8"), default="int8",
                    help="ORT int8 activation type (default int8: ORT's recommended S8S8 QDQ)")
    ap.add_argument("--reduce-range", action="store_true", help="ORT reduce_range (7-bit weights; for u8s8 saturation)")
    ap.add_argument("--peers", default="ncnn,litert", help="optional peers to try (ncnn, litert; '' or none: none)")
    ap.add_argument("--soundloc", metavar="BINARY", help="soundloc executable: adds `bench engine` numbers")
    ap.add_argument("--int8-model", metavar="FILE",
                    help="soundloc int8 model (with --soundloc; default: made by `soundloc quantize` from --model "
                         "on the same calibration data)")
    ap.add_argument("--soundloc-quantize", default="percentile",
                    help="method for that `soundloc quantize` (percentile, mse, entropy, minmax; none: skip)")
    ap.add_argument("--accuracy", action="store_true",
                    help="also report ORT int8 vs ORT fp32 mean |Δ| of the features on the calibration inputs")
    ap.add_argument("--work-dir", help="keep the ONNX / ncnn files here (default: a temporary folder)")
    ap.add_argument("--json", metavar="FILE", help="write everything as JSON ('-' for stdout)")
    args = ap.parse_args(argv)

    try:
        threads = [int(t) for t in args.threads.split(",") if t.strip()]
    except ValueError:
        ap.error("--threads must be comma-separated integers")
    if not threads or any(t < 1 for t in threads):
        ap.error("--threads must be positive")
    methods = [m.strip().lower() for m in args.calibrate.split(",") if m.strip()]
    if not methods or any(m not in ("percentile", "minmax", "entropy") for m in methods):
        ap.error("--calibrate takes percentile, minmax, entropy")
    peers = {p.strip().lower() for p in args.peers.split(",") if p.strip() and p.strip().lower() != "none"}
    if args.runs < 1 or args.warmup < 0 or args.limit < 1:
        ap.error("--runs and --limit must be >= 1, --warmup >= 0")
    try:
        import onnxruntime  # noqa: F401
        from onnxruntime import quantization  # noqa: F401
    except ImportError:
        print("onnxruntime is not installed (python3 -m pip install onnxruntime)", file=sys.stderr)
        return 2
    from dsol.onnx_export import export_backbones

    tmp = None
    if args.work_dir:
        work = Path(args.work_dir)
        work.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="bench_peers.")
        work = Path(tmp.name)

    doc: dict = {"note": NOISE_NOTE, "model": str(args.model), "int8_model": args.int8_model,
                 "threads": threads, "runs": args.runs, "warmup": args.warmup,
                 "machine": machine_info(), "versions": versions(), "skipped": {}, "results": [],
                 "load_average_1min": {"start": _loadavg()}}

    t0 = time.perf_counter()
    cal = load_calibration(args.calibration, args.limit)
    doc["calibration"] = {k: cal[k] for k in ("source", "count", "ids", "audio_frontend")}
    doc["calibration"]["seconds"] = round(time.perf_counter() - t0, 1)
    print(f"calibration: {cal['count']} samples from {cal['source']} (audio via {cal['audio_frontend']}), "
          f"{doc['calibration']['seconds']} s")

    t0 = time.perf_counter()
    paths = {"ort-fp32": export_backbones(args.model, work / "fp32", check=True)}
    print(f"exported ONNX fp32 backbones in {time.perf_counter() - t0:.1f} s")
    input_names = {"vision": "image", "audio": "audio"}
    doc["quantization"] = {}
    for method in methods:
        engine = f"ort-int8-{method}"
        paths[engine] = {}
        doc["quantization"][engine] = {}
        for net in NETS:
            out = work / "int8" / method / f"{net}.onnx"
            out.parent.mkdir(parents=True, exist_ok=True)
            try:
                s = quantize(paths["ort-fp32"][net], out, input_names[net], cal[net], method,
                             args.activation_type, args.reduce_range, args.percentile)
            except Exception as e:  # noqa: BLE001 - report and carry on with the other engines
                doc["skipped"][f"{engine}/{net}"] = f"quantisation failed: {type(e).__name__}: {e}"
                print(f"{engine} {net}: quantisation failed: {e}")
                continue
            paths[engine][net] = out
            doc["quantization"][engine][net] = s
            print(f"quantised {net} ({method}, QDQ, per-channel int8 weights, {args.activation_type} activations"
                  f"{', reduce_range' if args.reduce_range else ''}) in {s['seconds']} s")
    int8_engines = [f"ort-int8-{m}" for m in methods if paths.get(f"ort-int8-{m}")]
    primary = int8_engines[0] if int8_engines else None
    doc["ort_int8_primary"] = primary

    # one real preprocessed sample is the timing input for every engine
    x = {net: cal[net][0] for net in NETS}

    runners: dict[str, dict] = {e: {} for e in ["ort-fp32", *int8_engines]}
    for e in runners:
        for net, p in paths[e].items():
            runners[e][net] = lambda t, p=p, net=net: ort_runner(p, t, x[net])

    if "ncnn" in peers:
        try:
            import ncnn  # noqa: F401

            ncnn_files = {net: ncnn_convert(paths["ort-fp32"][net], net, work) for net in NETS}
            check = {}
            for net in NETS:
                want = ort_session(paths["ort-fp32"][net], 1).run(None, {input_names[net]: x[net]})[0]
                got = ncnn_forward(ncnn_net(*ncnn_files[net], 1), x[net])
                check[net] = float(np.abs(got.reshape(-1) - want.reshape(-1)).max() / max(np.abs(want).max(), 1e-30))
            doc["ncnn"] = {"max_rel_error_vs_ort_fp32": check, "converter": "pnnx (ONNX input), fp16=0",
                           "options": "fp16/bf16 storage and arithmetic off"}
            runners["ncnn-fp32"] = {}
            for net in NETS:
                def make(t, net=net):
                    n = ncnn_net(*ncnn_files[net], t)
                    return lambda: ncnn_forward(n, x[net])
                runners["ncnn-fp32"][net] = make
            print("ncnn: converted with pnnx; max rel error vs ORT fp32 "
                  + ", ".join(f"{k} {v:.1e}" for k, v in check.items()))
            doc["skipped"]["ncnn-int8"] = ("ncnn int8 needs the ncnn2table/ncnn2int8 tools, which the PyPI "
                                           "ncnn and pnnx wheels do not ship")
        except Exception as e:  # noqa: BLE001
            doc["skipped"]["ncnn"] = f"{type(e).__name__}: {e}"
            print(f"ncnn skipped: {type(e).__name__}: {e}")
    if "litert" in peers:
        reason = None
        try:
            import ai_edge_litert  # noqa: F401
        except Exception as e:  # noqa: BLE001
            reason = f"ai-edge-litert not importable ({type(e).__name__}: {e}); pip install ai-edge-litert"
        if reason is None:
            have = [m for m in ("ai_edge_torch", "onnx2tf", "tensorflow") if _importable(m)]
            reason = ("ai-edge-litert is only the interpreter; converting the backbones to .tflite needs "
                      "ai-edge-torch or onnx2tf + TensorFlow" + (f" (found {have}, not wired up)" if have else
                                                                  " (none installed)"))
        doc["skipped"]["litert"] = reason
        print(f"LiteRT skipped: {reason}")

    engines = list(runners)
    for net in NETS:
        for t in threads:
            for e in engines:
                if net not in runners[e]:
                    continue
                fn = runners[e][net](t)
                r = time_runs(fn, args.runs, args.warmup)
                del fn
                r.update(engine=e, network=net, threads=t)
                doc["results"].append(r)
                print(f"  {e:<22} {net:<7} {t} thread(s): median {r['median_ms']:8.2f} ms  p99 {r['p99_ms']:8.2f} ms")

    if args.soundloc:
        doc["soundloc"] = {}
        int8_model = args.int8_model
        if not int8_model and args.soundloc_quantize != "none":
            q = soundloc_quantize(args.soundloc, args.model, args.calibration, args.limit, args.soundloc_quantize,
                                  work / "soundloc-int8.safetensors")
            doc["soundloc"]["quantize"] = q
            if "error" in q:
                print(f"soundloc quantize failed (no soundloc int8 numbers): {q['error']}")
            else:
                int8_model = q["model"]
                doc["int8_model"] = f"{int8_model} (soundloc quantize --method {args.soundloc_quantize}, "\
                                    f"--limit {args.limit}, same calibration data)"
                print(f"soundloc quantize: {q['seconds']} s ({args.soundloc_quantize})")
        doc["soundloc"]["runs"] = run_soundloc(args.soundloc, args.model, int8_model, threads, args.runs,
                                               args.warmup, work)
        for res in doc["soundloc"]["runs"]:
            if "error" in res:
                print(f"soundloc bench engine failed: {' '.join(res['command'])}: {res['error']}")
                continue
            for w in res["warnings"]:
                print(f"soundloc: note: {w}")
            doc["results"].extend(res["rows"])
            for r in res["rows"]:
                if r["engine"] not in engines:
                    engines.append(r["engine"])
                if r["network"] in NETS:
                    print(f"  {r['engine']:<22} {r['network']:<7} {r['threads']} thread(s): median "
                          f"{r['median_ms']:8.2f} ms  p99 {(r['p99_ms'] or float('nan')):8.2f} ms")
    elif args.int8_model:
        print("--int8-model is only used with --soundloc")

    measured = [r for r in doc["results"] if r["network"] in NETS]
    doc["results"].extend(frame_rows(measured))
    table = {(r["engine"], r["network"], r["threads"]): r["median_ms"] for r in doc["results"]}
    doc["ratios"] = ratio_rows(table, threads, primary)

    if args.accuracy:
        doc["accuracy"] = {"inputs": f"the {cal['count']} calibration inputs (in-sample: sanity only)"}
        tmax = max(threads)
        for e in int8_engines:
            acc = {}
            for net in NETS:
                if net not in paths[e]:
                    continue
                f32, q8 = ort_session(paths["ort-fp32"][net], tmax), ort_session(paths[e][net], tmax)
                diffs, mags, worst = [], [], 0.0
                for xi in cal[net]:
                    a = f32.run(None, {input_names[net]: xi})[0]
                    b = q8.run(None, {input_names[net]: xi})[0]
                    diffs.append(float(np.abs(a - b).mean()))
                    mags.append(float(np.abs(a).mean()))
                    worst = max(worst, float(np.abs(a - b).max()))
                acc[net] = {"mean_abs_diff": float(np.mean(diffs)), "mean_abs_fp32": float(np.mean(mags)),
                            "relative": float(np.mean(diffs) / max(np.mean(mags), 1e-30)), "max_abs_diff": worst}
            doc["accuracy"][e] = acc
            print(f"accuracy {e}: " + "; ".join(
                f"{n} mean|Δ| {v['mean_abs_diff']:.4g} (mean|fp32| {v['mean_abs_fp32']:.4g}, rel {v['relative']:.2%})"
                for n, v in acc.items()))

    doc["load_average_1min"]["end"] = _loadavg()
    print_tables(doc["results"], doc["ratios"], engines, threads)
    la = doc["load_average_1min"]
    if la["start"] is not None:
        print(f"load average (1 min) {la['start']:.2f} at start, {la['end']:.2f} at end, on {os.cpu_count()} CPUs")
    q = doc["quantization"].get(primary, {}).get("vision") if primary else None
    if q:
        print(f"\nORT int8: QDQ, per-channel int8 weights, {q['activation_type']} activations, reduce_range "
              f"{q['reduce_range']}, calibration {', '.join(methods)} on {cal['count']} samples"
              + (f" (percentile {args.percentile}, symmetric)" if "percentile" in methods else ""))
    for k, v in doc["skipped"].items():
        print(f"skipped {k}: {v}")

    if args.json:
        text = json.dumps(doc, indent=2, default=str)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
            print(f"wrote {args.json}")
    if tmp is not None:
        tmp.cleanup()
    return 0


def _loadavg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _importable(mod: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(mod) is not None
    except (ImportError, ValueError):
        return False


if __name__ == "__main__":
    sys.exit(main())
