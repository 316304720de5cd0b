"""Videos -> the authors' MUSIC layout that dsol.train and the evaluators read.

    cd Tools && python3 -m dsol.prepare_music --videos DIR --out ROOT [--json MUSIC_solo_videos.json]
        [--fps 4] [--workers N]

For each video (any container Debian's ffmpeg reads; DIR/<class>/<id>.<ext> as MUSIC's downloads are
laid out, or any tree with --json naming each id's class):
  ROOT/frames/<id>/frame_SSS/NNNNN.jpg   --fps pictures per second (4, the authors'), NNNNN the frame's
                                         time counted in frames of 30 per second whatever the video's
                                         own rate (so NNNNN // 30 == SSS, as the official annotations
                                         have it; a 25-fps video is numbered at 30 too);
  ROOT/audio/<id>.wav                    the sound track, 16 kHz mono 16-bit (the authors cut it into
                                         1-s windows at training time, as dsol.data does);
  ROOT/classes.json                      {"videos": {"<class>": ["<id>", ...]}}, the MUSIC form.
A video is refused (and listed in the summary) when ffprobe cannot read it, it has no video or no sound
stream, it is shorter than 1 s, or its sound is silent (peak under -60 dBFS). A video already done
(ROOT/frames/<id>/.done) is skipped, so a stopped run resumes; --force redoes everything.
ROOT/prepare.json records the options, what was made and what was skipped and why.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np

from .model import MUSIC_CLASSES
from .progress import Progress

VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".flv", ".mpg", ".mpeg", ".ogv")
NUMBERING_FPS = 30  # the official annotations number frames at 30 per second
SAMPLE_RATE = 16000
SILENT_DBFS = -60.0


class Refused(Exception):
    """A video that cannot give frames and sound; the message says why."""


def probe(path: Path) -> dict:
    """Duration (s) and whether a video and a sound stream exist, from ffprobe."""
    r = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_type",
                        "-of", "json", str(path)], capture_output=True, text=True)
    if r.returncode != 0:
        raise Refused(f"unreadable ({r.stderr.strip().splitlines()[-1] if r.stderr.strip() else 'ffprobe failed'})")
    info = json.loads(r.stdout or "{}")
    kinds = {s.get("codec_type") for s in info.get("streams", [])}
    try:
        duration = float(info.get("format", {}).get("duration", "nan"))
    except ValueError:
        duration = float("nan")
    if "video" not in kinds:
        raise Refused("no video stream")
    if "audio" not in kinds:
        raise Refused("no sound stream")
    if not duration >= 1.0:
        raise Refused(f"shorter than 1 s ({duration:.2f} s)")
    return {"duration": duration}


def frame_times(duration: float, fps: int) -> list[tuple[int, int, float]]:
    """(second SSS, frame number NNNNN at 30/s, time in s) of the pictures kept in the whole seconds
    of a video: fps per second at s + k / fps, the times of ffmpeg's fps filter's output frames."""
    out = []
    for s in range(int(duration)):
        for k in range(fps):
            t = s + k / fps
            out.append((s, int(t * NUMBERING_FPS + 1e-9), t))
    return out


def extract(video: Path, vid: str, root: Path, fps: int) -> dict:
    """One video into root's layout; returns what was made."""
    info = probe(video)
    tmp = root / "frames" / f".{vid}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    wav = root / "audio" / f"{vid}.wav"
    wav.parent.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(video), "-vn", "-ac", "1", "-ar", str(SAMPLE_RATE),
                        "-c:a", "pcm_s16le", str(wav.with_suffix(".tmp.wav"))], capture_output=True, text=True)
    if r.returncode != 0:
        raise Refused(f"sound could not be decoded ({r.stderr.strip()[-200:]})")
    with wave.open(str(wav.with_suffix(".tmp.wav")), "rb") as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    peak = 20 * np.log10(max(int(np.abs(pcm.astype(np.int32)).max()) if pcm.size else 0, 1) / 32768.0)
    if peak < SILENT_DBFS:
        wav.with_suffix(".tmp.wav").unlink()
        raise Refused(f"silent (peak {peak:.0f} dBFS)")
    # every kept picture in one decoding pass: output frame j is the input frame nearest j / fps
    times = frame_times(info["duration"], fps)
    pattern = tmp / "%06d.jpg"
    r = subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(video), "-vf", f"fps={fps}", "-q:v", "2",
                        str(pattern)], capture_output=True, text=True)
    if r.returncode != 0:
        raise Refused(f"pictures could not be decoded ({r.stderr.strip()[-200:]})")
    made = sorted(tmp.glob("*.jpg"))
    kept = 0
    for j, (s, n, _) in enumerate(times):
        if j >= len(made):
            break
        dst = tmp / f"frame_{s:03d}" / f"{n:05d}.jpg"
        dst.parent.mkdir(exist_ok=True)
        made[j].rename(dst)
        kept += 1
    for f in tmp.glob("*.jpg"):
        f.unlink()
    final = root / "frames" / vid
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    wav.with_suffix(".tmp.wav").replace(wav)
    (final / ".done").write_text(json.dumps({"pictures": kept, "seconds": info["duration"]}))
    return {"pictures": kept, "seconds": round(info["duration"], 3)}


def find_videos(src: Path, classes_json: Path | None, classes: list[str]) -> list[tuple[Path, str, str]]:
    """(path, id, class) of every video under src; the class from --json or the parent folder."""
    lookup: dict[str, str] = {}
    if classes_json is not None:
        data = json.loads(classes_json.read_text())
        for name, ids in data.get("videos", data).items():
            for v in ids:
                lookup[str(v)] = name
    out = []
    for p in sorted(src.rglob("*")):
        if not (p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES):
            continue
        vid = p.stem
        cls = lookup.get(vid) or (p.parent.name if p.parent != src else None)
        if cls not in classes:
            raise SystemExit(f"{p}: no class for video {vid!r} (put it in a folder named after its class, one of "
                             f"{', '.join(classes)}, or give --json)")
        out.append((p, vid, cls))
    ids = [v for _, v, _ in out]
    dup = sorted({v for v in ids if ids.count(v) > 1})
    if dup:
        raise SystemExit(f"{src}: video ids used twice: {dup[:5]}")
    return out


def _work(args) -> tuple[str, dict | str]:
    video, vid, root, fps = args
    try:
        return vid, extract(video, vid, root, fps)
    except Refused as e:
        shutil.rmtree(root / "frames" / f".{vid}.partial", ignore_errors=True)
        return vid, str(e)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m dsol.prepare_music", description=__doc__.split("\n\n")[0])
    ap.add_argument("--videos", required=True, help="folder of videos (DIR/<class>/<id>.<ext>, or any tree with --json)")
    ap.add_argument("--out", required=True, help="the MUSIC-layout root to write")
    ap.add_argument("--json", help="MUSIC's video list ({\"videos\": {class: [id, ...]}}) naming each id's class")
    ap.add_argument("--fps", type=int, default=4, help="pictures kept per second (the authors: 4)")
    ap.add_argument("--workers", type=int, default=max(1, (mp.cpu_count() or 2) - 0))
    ap.add_argument("--force", action="store_true", help="redo videos already done")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    for tool in ("ffmpeg", "ffprobe"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found: install Debian's ffmpeg (apt-get install ffmpeg; Tools/setup.sh --test does)")
    if not 1 <= args.fps <= NUMBERING_FPS:
        raise SystemExit(f"--fps must be 1..{NUMBERING_FPS}")
    src, root = Path(args.videos), Path(args.out)
    if not src.is_dir():
        raise SystemExit(f"--videos {src}: not a folder")
    videos = find_videos(src, Path(args.json) if args.json else None, MUSIC_CLASSES)
    if not videos:
        raise SystemExit(f"{src}: no videos ({', '.join(VIDEO_SUFFIXES)})")
    root.mkdir(parents=True, exist_ok=True)
    todo = [(p, v, root, args.fps) for p, v, _ in videos
            if args.force or not (root / "frames" / v / ".done").exists()]
    bar = Progress(len(todo), "videos", not args.quiet)
    results: dict[str, dict | str] = {}
    with mp.Pool(max(1, args.workers)) as pool:
        for vid, res in pool.imap_unordered(_work, todo):
            results[vid] = res
            bar.update(1)
    bar.close()
    done = {v: json.loads((root / "frames" / v / ".done").read_text()) for _, v, _ in videos
            if (root / "frames" / v / ".done").exists()}
    skipped = {v: r for v, r in results.items() if isinstance(r, str)}
    by_class: dict[str, list[str]] = {}
    for _, v, c in videos:
        if v in done:
            by_class.setdefault(c, []).append(v)
    (root / "classes.json").write_text(json.dumps({"videos": by_class}, indent=1) + "\n")
    (root / "prepare.json").write_text(json.dumps({"fps": args.fps, "numbering_fps": NUMBERING_FPS,
                                                   "sample_rate": SAMPLE_RATE, "videos": done,
                                                   "skipped": skipped}, indent=1) + "\n")
    print(f"prepared {len(done)} of {len(videos)} videos into {root} "
          f"({sum(d['pictures'] for d in done.values())} pictures); skipped {len(skipped)}")
    for v, why in sorted(skipped.items()):
        print(f"  skipped {v}: {why}")
    return 0 if done else 1


if __name__ == "__main__":
    sys.exit(main())
