"""Progress bars and device monitoring for the long jobs (training, warm start, feature extraction)."""

from __future__ import annotations

import sys

import numpy as np
import torch
from tqdm import tqdm


class Progress(tqdm):
    """A tqdm bar on stderr that clears itself when done; update(k, **postfix) also shows the postfix,
    and enabled=False turns it off."""

    def __init__(self, total: int, desc: str, enabled: bool = True):
        super().__init__(total=total, desc=desc, disable=not enabled, file=sys.stderr, leave=False,
                         dynamic_ncols=True)

    def update(self, k: int = 1, **post):
        if post and not self.disable:
            self.set_postfix({a: (f"{b:.4f}" if isinstance(b, float) else b) for a, b in post.items()},
                             refresh=False)
        return super().update(k)


class GpuUtilisation:
    """Mean GPU utilisation (%) and peak memory (GB) of a CUDA device while a phase runs, sampled
    from NVML (torch.cuda.utilization) or nvidia-smi once a second on a thread; nothing elsewhere."""

    def __init__(self, device: torch.device):
        self.samples: list[float] = []
        self.device = device
        self._stop = None
        if device.type != "cuda":
            return
        import threading
        torch.cuda.reset_peak_memory_stats(device)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _read(self) -> float | None:
        try:
            return float(torch.cuda.utilization(self.device))
        except Exception:  # no pynvml: ask nvidia-smi
            import subprocess
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                                      "-i", str(self.device.index or 0)], capture_output=True, text=True, timeout=5)
                return float(out.stdout.strip().splitlines()[0])
            except (OSError, ValueError, IndexError, subprocess.SubprocessError):
                return None

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            v = self._read()
            if v is not None:
                self.samples.append(v)

    def stop(self) -> dict:
        if self._stop is None:
            return {}
        self._stop.set()
        self._thread.join()
        out = {"gpu_mem_gb": torch.cuda.max_memory_allocated(self.device) / 1e9}
        if self.samples:
            out["gpu_util"] = float(np.mean(self.samples))
        return out
