#!/usr/bin/env python3
"""Load test of the socket server: `soundloc run` on the bundled clip in real time, one normal client, and around it
clients that churn (connect and close at once), never read, or read slowly; every SAMPLE seconds a table row with
the server's RSS, CPU and descriptors and the normal client's frame rate and latency, then a summary.

    swift build -c release --scratch-path .build-release --product soundloc      # once (or use a debug build)
    python3 Tools/stress.py --minutes 10 --binary .build-release/release/soundloc
    python3 Tools/stress.py --minutes 120 --sample 60 --binary .build-release/release/soundloc   # the 2-hour run

The soundtrack is Models/demo/clip.wav repeated to cover the run (the server holds it in memory, 4 bytes a sample:
230 MB an hour, the same from start to end), the picture Models/demo/scene.png, the model the shipped int8 one.
Latency is the normal client's receive time minus the FRAME's publish_ns (both CLOCK_MONOTONIC on this machine),
so it covers the server's queue, the kernel's socket buffer and the client waking up; capture_ns to receive is
reported too. Everything stays on this machine (a UNIX socket); every loop ends with the run. Standard library only.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


def looped_clip(clip: Path, seconds: float, out: Path) -> Path:
    """The demo clip repeated to last at least `seconds` (kept between runs when long enough)."""
    with wave.open(str(clip), "rb") as w:
        params, frames = w.getparams(), w.readframes(w.getnframes())
    repeats = max(1, int(seconds * params.framerate // params.nframes) + 1)
    path = out / "clip-loop.wav"
    if path.exists():
        with wave.open(str(path), "rb") as w:
            if w.getnframes() >= repeats * params.nframes and w.getparams()[:3] == params[:3]:
                return path
    with wave.open(str(path), "wb") as w:
        w.setparams(params)
        for _ in range(repeats):
            w.writeframes(frames)
    return path


def connect(path: str, timeout: float = 5.0) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    return s


def send(s: socket.socket, message: dict) -> None:
    s.sendall((json.dumps(message) + "\n").encode())


# ---------------------------------------------------------------- the clients around the normal one (processes)

def churner(path: str, deadline: float, index: int, counts) -> None:
    """Connects and closes as fast as it can; in turn: close at once, after the banner, after a command, after junk."""
    n = 0
    while time.monotonic() < deadline:
        try:
            s = connect(path, 2.0)
            kind = n % 4
            if kind >= 1:
                s.recv(4096)  # the banner (or the "too many clients" ERROR)
            if kind == 2:
                send(s, {"class": "WATCH", "maps": True})
            elif kind == 3:
                s.sendall(b"not json\n" + b"x" * 5000 + b"\n")  # an ERROR, then an over-long line: hang-up
            s.close()
            with counts.get_lock():
                counts[index] += 1
        except OSError:
            with counts.get_lock():
                counts[index + 1] += 1
            time.sleep(0.05)
        n += 1


def stuck(path: str, deadline: float, maps: bool) -> None:
    """Connects, asks for maps (bigger frames), and never reads."""
    try:
        s = connect(path)
        if maps:
            send(s, {"class": "WATCH", "maps": True})
    except OSError:
        return
    while time.monotonic() < deadline:
        time.sleep(0.5)
    s.close()


def slow_reader(path: str, deadline: float, index: int, drops) -> None:
    """Reads 4 KB every half second with maps on: about 8 KB/s against ~350 KB/s of frames, so frames are dropped."""
    try:
        s = connect(path)
        send(s, {"class": "WATCH", "maps": True})
    except OSError:
        return
    pending = b""
    while time.monotonic() < deadline:
        try:
            data = s.recv(4096)
        except socket.timeout:
            continue
        except OSError:
            return
        if not data:
            return
        pending += data
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if line.startswith(b'{"class":"FRAME"'):
                at = line.rfind(b'"dropped_messages":')  # near the end, after the maps
                if at >= 0:
                    value = line[at + 19:].split(b",")[0].split(b"}")[0]
                    with drops.get_lock():
                        drops[index] = int(value)
        time.sleep(0.5)
    s.close()


# ---------------------------------------------------------------- the normal client (a thread of this process)

class NormalClient(threading.Thread):
    """Reads every line promptly, keeps per-frame receive times; maps off, as most clients run."""

    def __init__(self, path: str, deadline: float):
        super().__init__(daemon=True)
        self.path, self.deadline = path, deadline
        self.lock = threading.Lock()
        self.samples: list[tuple[float, float]] = []  # (publish→receive ms, capture→receive ms) since last take()
        self.frames = self.gaps = self.missed_reported = 0
        self.last_seq = None
        self.stopped_status = False
        self.error: str | None = None

    def run(self) -> None:
        try:
            s = connect(self.path, 1.0)
        except OSError as e:
            self.error = f"cannot connect: {e}"
            return
        buffer = b""
        while True:
            try:
                data = s.recv(1 << 16)
            except socket.timeout:
                if time.monotonic() > self.deadline + 60:
                    break
                continue
            if not data:
                break
            now = time.monotonic_ns()
            buffer += data
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                message = json.loads(line)
                kind = message.get("class")
                if kind == "FRAME":
                    self.frame(message, now)
                elif kind == "STATUS" and message.get("device") == "server" and message.get("state") == "stopped":
                    self.stopped_status = True
        s.close()

    def frame(self, f: dict, now: int) -> None:
        with self.lock:
            self.samples.append(((now - f["publish_ns"]) / 1e6, (now - f["capture_ns"]) / 1e6))
            self.frames += 1
            if self.last_seq is not None and f["seq"] > self.last_seq + 1:
                self.gaps += f["seq"] - self.last_seq - 1
            self.last_seq = f["seq"]
            self.missed_reported = f["dropped_messages"]

    def take(self) -> list[tuple[float, float]]:
        with self.lock:
            samples, self.samples = self.samples, []
        return samples


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def process_stats(pid: int) -> tuple[int, float, int]:
    """RSS in KiB, CPU seconds so far, open descriptors."""
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return rss, cpu, len(os.listdir(f"/proc/{pid}/fd"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=10, help="length of the run (default 10)")
    ap.add_argument("--sample", type=float, default=30, help="seconds between table rows (default 30)")
    ap.add_argument("--binary", default=str(ROOT / ".build/debug/soundloc"), help="soundloc to run")
    ap.add_argument("--model", default=str(ROOT / "Models/dsol-music-int8.safetensors"))
    ap.add_argument("--churners", type=int, default=4, help="processes connecting and closing (default 4)")
    ap.add_argument("--stuck", type=int, default=8, help="clients that never read (default 8, half with maps)")
    ap.add_argument("--slow", type=int, default=4, help="clients reading 8 KB/s with maps (default 4)")
    ap.add_argument("--threads", type=int, default=1, help="inference threads of the server (default 1)")
    ap.add_argument("--out", default=str(ROOT / "out/stress"), help="work folder (clip, socket, logs)")
    args = ap.parse_args(argv)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    seconds = args.minutes * 60
    clip = looped_clip(ROOT / "Models/demo/clip.wav", seconds + 60, out)
    sock = out / "soundloc.sock"
    log = open(out / "run.log", "w")
    command = [args.binary, "run", "--model", args.model, "--audio", str(clip), "--video",
               str(ROOT / "Models/demo/scene.png"), "--socket", str(sock), "--threads", str(args.threads)]
    print("stress: " + " ".join(command), flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that the cleanup below runs
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    for _ in range(600):
        if sock.exists() or server.poll() is not None:
            break
        time.sleep(0.1)
    if not sock.exists():
        server.kill()
        print(f"stress: the server did not open {sock}; see {out / 'run.log'}", file=sys.stderr)
        return 1

    try:
        return measure(args, server, sock, seconds, out)
    finally:
        if server.poll() is None:
            server.kill()
        for child in mp.active_children():
            child.terminate()


def measure(args, server: subprocess.Popen, sock: Path, seconds: float, out: Path) -> int:
    """Starts the clients, prints a row every args.sample seconds, stops the server, prints the summary."""
    start = time.monotonic()
    deadline = start + seconds
    normal = NormalClient(str(sock), deadline)
    normal.start()
    counts = mp.Array("q", 2 * args.churners)  # per churner: connections, failed connects
    drops = mp.Array("q", max(1, args.slow))
    others = [mp.Process(target=churner, args=(str(sock), deadline, 2 * i, counts), daemon=True) for i in range(args.churners)]
    others += [mp.Process(target=stuck, args=(str(sock), deadline, i % 2 == 0), daemon=True) for i in range(args.stuck)]
    others += [mp.Process(target=slow_reader, args=(str(sock), deadline, i, drops), daemon=True) for i in range(args.slow)]
    for p in others:
        p.start()

    header = (f"{'time':>6} {'rss_MiB':>8} {'cpu_%':>6} {'fds':>5} {'fps':>6} {'lat_p50':>8} {'lat_p99':>8} "
              f"{'e2e_p99':>8} {'churn/s':>8} {'slow_drops':>10}")
    print(header, flush=True)
    rows, all_samples = [], []
    last_time, last_cpu, last_frames, last_churn = start, process_stats(server.pid)[1], 0, 0
    while time.monotonic() < deadline and server.poll() is None:
        time.sleep(max(0.0, min(args.sample, deadline - time.monotonic())))
        if server.poll() is not None:
            break
        now = time.monotonic()
        rss, cpu, fds = process_stats(server.pid)
        samples = normal.take()
        all_samples += samples
        frames, churn = normal.frames, sum(counts[0::2])
        elapsed = now - last_time
        row = {"t": now - start, "rss": rss / 1024, "cpu": 100 * (cpu - last_cpu) / elapsed, "fds": fds,
               "fps": (frames - last_frames) / elapsed, "p50": percentile([s[0] for s in samples], 50),
               "p99": percentile([s[0] for s in samples], 99), "e2e99": percentile([s[1] for s in samples], 99),
               "churn": (churn - last_churn) / elapsed, "drops": sum(drops)}
        rows.append(row)
        print(f"{row['t']:6.0f} {row['rss']:8.1f} {row['cpu']:6.1f} {row['fds']:5d} {row['fps']:6.2f} {row['p50']:8.2f} "
              f"{row['p99']:8.2f} {row['e2e99']:8.2f} {row['churn']:8.0f} {row['drops']:10d}", flush=True)
        last_time, last_cpu, last_frames, last_churn = now, cpu, frames, churn

    crashed = server.poll() is not None
    for p in others:
        p.join(timeout=10)
        if p.is_alive():
            p.terminate()
    if not crashed:
        server.send_signal(signal.SIGTERM)
    try:
        status = server.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.kill()
        status = "killed after 60 s"
    normal.join(timeout=10)
    all_samples += normal.take()

    total = rows[-1]["t"] if rows else 0.0
    print("\nstress: summary")
    if rows:
        steady = rows[1:] or rows
        print(f"  RSS: {rows[0]['rss']:.1f} MiB at {rows[0]['t']:.0f} s, {rows[-1]['rss']:.1f} MiB at {rows[-1]['t']:.0f} s "
              f"(max {max(r['rss'] for r in rows):.1f}; from the second sample on "
              f"{min(r['rss'] for r in steady):.1f}-{max(r['rss'] for r in steady):.1f})")
        print(f"  normal client: {normal.frames} frames, {normal.frames / max(total, 1e-9):.2f} fps "
              f"(per sample {min(r['fps'] for r in rows):.2f}-{max(r['fps'] for r in rows):.2f}); "
              f"publish→receive p50 {percentile([s[0] for s in all_samples], 50):.2f} ms, "
              f"p99 {percentile([s[0] for s in all_samples], 99):.2f} ms, max {max((s[0] for s in all_samples), default=0):.2f} ms; "
              f"capture→receive p99 {percentile([s[1] for s in all_samples], 99):.2f} ms")
        print(f"  normal client missed: {normal.gaps} seq gaps, {normal.missed_reported} reported dropped for it; "
              f"STATUS stopped {'received' if normal.stopped_status else 'NOT received'}")
        print(f"  churn: {sum(counts[0::2])} connections ({sum(counts[0::2]) / max(total, 1e-9):.0f}/s), "
              f"{sum(counts[1::2])} failed connects; slow readers: {sum(drops)} frames dropped for them; "
              f"server CPU {sum(r['cpu'] for r in rows) / len(rows):.1f} % of a core on average")
    print(f"  server: {'CRASHED or ended early' if crashed else 'stopped by SIGTERM'}, exit status {status}; "
          f"socket file {'left behind' if sock.exists() else 'removed'}; log {out / 'run.log'}")
    if normal.error:
        print(f"  normal client: {normal.error}")
    ok = not crashed and status == 0 and normal.frames > 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
