#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora, Tests/Fuzz/<target>/ (see Tests/Fuzz/README.md).

Each corpus holds small valid inputs (ok-*: the parser must accept them) and the crafted cases of the parsers'
own tests (bad-*: it must refuse them), so that libFuzzer and the corpus test in `make test` start from inputs
that reach deep into each parser. Everything is deterministic; run from the repository root:

    python3 Tools/fuzz_seeds.py                  # every corpus but the model files, which it reuses
    python3 Tools/fuzz_seeds.py --models --soundloc .build/debug/soundloc   # also remake the two model files

--models needs PyTorch (Tools/setup.sh --train) for the fp32 model and a built soundloc for `soundloc quantize`.
Inputs a campaign found crashing (crash-*) are not written here: they are kept as found.
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class Corpus:
    """One target's folder: removes the ok-/bad- files it owns, then writes them again."""

    def __init__(self, out: Path, target: str):
        self.dir = out / target
        self.dir.mkdir(parents=True, exist_ok=True)
        self.written: set[str] = set()

    def put(self, name: str, data: bytes | str) -> None:
        assert name.startswith(("ok-", "bad-")), name
        assert name not in self.written, name
        self.written.add(name)
        (self.dir / name).write_bytes(data.encode() if isinstance(data, str) else data)

    def prune(self, keep_prefix: str) -> None:
        """Deletes ok-/bad- files this run did not write (renamed or dropped cases), but not those kept as found."""
        for path in self.dir.iterdir():
            if path.name.startswith(("ok-", "bad-")) and path.name not in self.written and not path.name.startswith(keep_prefix):
                path.unlink()


# ---------------------------------------------------------------- WAV

def wav(fmt: int = 1, channels: int = 1, rate: int = 16000, bits: int = 16, data: bytes = b"",
        declared: int | None = None, extensible: bool = False, extra: bytes = b"") -> bytes:
    block = channels * bits // 8
    fmt_size = 40 if extensible else 16
    body = struct.pack("<HHIIHH", 0xFFFE if extensible else fmt, channels, rate, rate * block, block, bits)
    if extensible:
        body += struct.pack("<HHI", 22, bits, 0) + struct.pack("<H", fmt) + bytes(
            [0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xAA, 0, 0x38, 0x9B, 0x71])
    chunks = b"fmt " + struct.pack("<I", fmt_size) + body + extra
    chunks += b"data" + struct.pack("<I", len(data) if declared is None else declared) + data
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def pcm16(values) -> bytes:
    return b"".join(struct.pack("<h", max(-32768, min(32767, int(v)))) for v in values)


def f32(values) -> bytes:
    return b"".join(struct.pack("<f", v) for v in values)


def f64(values) -> bytes:
    return b"".join(struct.pack("<d", v) for v in values)


def wav_corpus(c: Corpus) -> None:
    tone = [8000 * math.sin(2 * math.pi * 440 * i / 16000) for i in range(160)]
    c.put("ok-pcm16-mono.wav", wav(data=pcm16(tone)))
    c.put("ok-pcm16-stereo.wav", wav(channels=2, data=pcm16(v for t in tone[:80] for v in (t, -t))))
    c.put("ok-float32.wav", wav(fmt=3, bits=32, data=f32([0.5, 1.5, -4] + [t / 32768 for t in tone[:40]])))
    c.put("ok-float64-44k.wav", wav(fmt=3, bits=64, rate=44100, data=f64([t / 32768 for t in tone[:40]])))
    c.put("ok-extensible.wav", wav(extensible=True, data=pcm16(tone[:40])))
    c.put("ok-extensible-float.wav", wav(fmt=3, bits=32, extensible=True, data=f32([0.25, -0.25])))
    c.put("ok-odd-list-chunk.wav", wav(data=pcm16([100]), extra=b"LIST" + struct.pack("<I", 3) + b"\x01\x02\x03\x00"))
    # The bundled clip's own header with its first 200 samples (a real file, as sox wrote it).
    clip = (ROOT / "Models/demo/clip.wav").read_bytes()
    at = clip.index(b"data")
    head = clip[:at] + b"data" + struct.pack("<I", 400) + clip[at + 8:at + 8 + 400]
    c.put("ok-demo-clip-head.wav", head[:4] + struct.pack("<I", len(head) - 8) + head[8:])

    two = pcm16([1, 2])
    c.put("bad-too-short.wav", wav(data=two)[:8])
    c.put("bad-fmt-truncated.wav", wav(data=two)[:30])
    c.put("bad-no-data-chunk.wav", wav(data=two)[:36])
    c.put("bad-data-past-end.wav", wav(data=pcm16([1, 2, 3]), declared=64000))
    c.put("bad-pcm8.wav", wav(bits=8, data=b"\x01\x02\x03\x04"))
    c.put("bad-pcm24.wav", wav(bits=24, data=bytes(range(1, 7))))
    c.put("bad-format-0x55.wav", wav(fmt=0x55, data=two))
    c.put("bad-no-samples.wav", wav(data=b""))
    c.put("bad-text.wav", "This is not audio at all, just words.\n")
    c.put("bad-zero-channels.wav", wav(channels=0, data=two))
    c.put("bad-4000-channels.wav", wav(channels=4000, data=two))
    c.put("bad-rate-zero.wav", wav(rate=0, data=two))
    for name, value in [("nan", math.nan), ("inf", math.inf), ("minus-inf", -math.inf), ("1e20", 1e20), ("minus-33", -33.0)]:
        c.put(f"bad-float32-{name}.wav", wav(fmt=3, bits=32, data=f32([0.1, 0.2, 0.3, value, 0.5])))
    c.put("bad-float64-nan.wav", wav(fmt=3, bits=64, data=f64([0.25, math.nan])))
    c.put("bad-stereo-inf.wav", wav(fmt=3, channels=2, bits=32, data=f32([0.1, 0.1, 0.2, math.inf])))
    ok = wav(data=two)
    c.put("bad-escape-chunk-id.wav", ok[:12] + b"\x1b[2J" + b"\xff\xff\x00\x00" + ok[12:])
    c.put("bad-rf64.wav", b"RF64" + ok[4:])
    c.put("bad-block-align.wav", ok[:32] + struct.pack("<H", 3) + ok[34:])


# ---------------------------------------------------------------- PNG, PPM

def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png(width: int, height: int, colour: int, rows: list[bytes], filters=None, depth: int = 8, interlace: int = 0,
        palette: bytes | None = None, extra: list[bytes] = (), idat: bytes | None = None) -> bytes:
    filters = filters or [0] * height
    raw = b"".join(bytes([f]) + r for f, r in zip(filters, rows))
    out = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, interlace))
    if palette is not None:
        out += png_chunk(b"PLTE", palette)
    for chunk in extra:
        out += chunk
    out += png_chunk(b"IDAT", zlib.compress(raw) if idat is None else idat)
    return out + png_chunk(b"IEND", b"")


def filtered(rows: list[bytes], bpp: int, kinds: list[int]) -> list[bytes]:
    """Applies PNG filter kinds[y] to row y (the encoder side of ImageFile.unfilter)."""
    out, prev = [], bytes(len(rows[0]))
    for row, kind in zip(rows, kinds):
        enc = bytearray()
        for i, x in enumerate(row):
            a = row[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if kind == 0:
                p = 0
            elif kind == 1:
                p = a
            elif kind == 2:
                p = b
            elif kind == 3:
                p = (a + b) // 2
            else:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            enc.append((x - p) & 0xFF)
        out.append(bytes(enc))
        prev = row
    return out


def image_corpus(c: Corpus) -> None:
    w, h = 5, 5
    for colour, channels, name in [(0, 1, "grey"), (2, 3, "rgb"), (3, 1, "palette"), (4, 2, "grey-alpha"), (6, 4, "rgba")]:
        rows = [bytes(((x * 37 + y * 11 + ch * 5) % 251 if colour != 3 else (x + y) % 4)
                      for x in range(w) for ch in range(channels)) for y in range(h)]
        kinds = [0, 1, 2, 3, 4]
        palette = bytes(range(12)) if colour == 3 else None
        c.put(f"ok-{name}-filters.png", png(w, h, colour, filtered(rows, channels, kinds), kinds, palette=palette))
    # A real picture, as Pillow encodes it: the demo scene scaled down.
    try:
        from PIL import Image
        import io
        buf = io.BytesIO()
        Image.open(ROOT / "Models/demo/scene.png").convert("RGB").resize((24, 18)).save(buf, format="PNG", optimize=True)
        c.put("ok-demo-scene-small.png", buf.getvalue())
    except ImportError:
        print("Pillow missing: ok-demo-scene-small.png kept as it is", file=sys.stderr)
    # Deflate's best case: 512x512 zeros at level 9, about 1000:1 (under the decoder's 1032:1 bound).
    zeros = zlib.compress(bytes(512 * 513), 9)
    c.put("ok-zeros-512-level-9.png", png(512, 512, 0, [], idat=zeros))
    text = png_chunk(b"tEXt", b"Comment\x00made for the fuzz corpus")
    c.put("ok-ancillary-chunk.png", png(2, 1, 2, [bytes(6)], extra=[text]))
    rgb = bytes((i * 13) % 256 for i in range(4 * 3 * 3))
    c.put("ok-p6.ppm", b"P6\n# a comment\n4 3\n255\n" + rgb)
    c.put("ok-p5-maxval-100.pgm", b"P5 4 3 100\n" + bytes(i * 8 for i in range(12)))

    one = [bytes(3)]
    c.put("bad-interlaced.png", png(1, 1, 2, one, interlace=1))
    c.put("bad-depth-16.png", png(1, 1, 2, [bytes(6)], depth=16))
    c.put("bad-colour-type-5.png", png(1, 1, 5, one))
    good = png(1, 1, 2, one)
    c.put("bad-crc.png", good[:29] + bytes([good[29] ^ 1]) + good[30:])
    c.put("bad-no-iend.png", good[:-12])
    c.put("bad-critical-chunk.png", png(1, 1, 2, one, extra=[png_chunk(b"ABCD", b"x")]))
    c.put("bad-huge-size.png", png(100000, 100000, 2, one))
    # 69 bytes claiming 8192x8192 RGBA: refused before 268 MB are allocated.
    c.put("bad-tiny-data-huge-picture.png", png(8192, 8192, 6, [], idat=zlib.compress(bytes(100))))
    c.put("bad-palette-index.png", png(1, 1, 3, [b"\x09"], palette=bytes(6)))
    c.put("bad-no-palette.png", png(1, 1, 3, [b"\x00"]))
    c.put("bad-filter-5.png", png(1, 1, 2, one, filters=[5]))
    c.put("bad-short-idat.png", png(4, 4, 2, [bytes(12)] * 4, idat=zlib.compress(bytes(13))))
    c.put("bad-chunk-past-end.png", good[:33] + struct.pack(">I", 0x7FFFFFF0) + good[37:])
    c.put("bad-ppm-16-bit.ppm", b"P6 1 1 65535\n" + bytes(6))
    c.put("bad-ppm-short-data.ppm", b"P6 4 4 255\n" + bytes(10))
    c.put("bad-ppm-words.ppm", b"P6 four three 255\n")
    c.put("bad-ppm-zero-width.ppm", b"P5 0 3 255\n")
    c.put("bad-unknown-format.bmp", b"BM" + bytes(30))


# ---------------------------------------------------------------- y4m

def y4m(header: str, width: int = 4, height: int = 2, frames: int = 1, mono: bool = False, value: int = 128) -> bytes:
    size = width * height + (0 if mono else 2 * ((width + 1) // 2) * ((height + 1) // 2))
    return (header + "\n").encode() + b"".join(b"FRAME\n" + bytes([(value + 7 * i) % 256]) * size for i in range(frames))


# The crafted headers of Y4MInputTests.testCraftedHeadersAreRefusedWithAMessage.
Y4M_CRAFTED = [
    "W0 H2", "W4 H0", "W-640 H480", "W640 H-1", "W16385 H2", "W99999999999999999999 H2", "W4611686018427387904 H4",
    "W16384 H16384", "Wabc H2", "H2", "W4 H2 F30:0", "W4 H2 F0:1", "W4 H2 F-30:1", "W4 H2 F30:-1", "W4 H2 Fnan:1",
    "W4 H2 Finf:1", "W4 H2 F1e308:1", "W4 H2 F30", "W4 H2 F9223372036854775807:1", "W4 H2 F1:9223372036854775807",
    "W4 H2 C420p10", "W4 H2 C444",
]


def y4m_corpus(c: Corpus) -> None:
    c.put("ok-420jpeg-3-frames.y4m", y4m("YUV4MPEG2 W5 H3 F30000:1001 Ip A1:1 C420jpeg", 5, 3, 3))
    c.put("ok-420-ffmpeg.y4m", y4m("YUV4MPEG2 W8 H6 F25:1 Ip A1:1 C420 XYSCSS=420", 8, 6, 2))
    c.put("ok-mono.y4m", y4m("YUV4MPEG2 W4 H2 Cmono", mono=True, frames=2))
    c.put("ok-no-rate.y4m", y4m("YUV4MPEG2 W2 H2 C420mpeg2", 2, 2))
    c.put("ok-cut-last-frame.y4m", y4m("YUV4MPEG2 W4 H2 C420paldv", frames=2)[:-3])
    c.put("ok-frame-parameters.y4m", b"YUV4MPEG2 W2 H2\nFRAME Ixyz\n" + bytes(6))
    for i, fields in enumerate(Y4M_CRAFTED):
        c.put(f"bad-header-{i:02d}.y4m", y4m("YUV4MPEG2 " + fields))
    c.put("bad-not-y4m.y4m", y4m("NOTY4M W4 H2"))
    c.put("bad-frame-marker.y4m", b"YUV4MPEG2 W2 H2\nFRAMX\n" + bytes(6))
    c.put("bad-header-too-long.y4m", ("YUV4MPEG2 W2 H2 X" + "a" * 1100 + "\n").encode())
    c.put("bad-truncated-header.y4m", b"YUV4MPEG2 W2 H2")


# ---------------------------------------------------------------- safetensors

class SafeTensors:
    """A model file taken apart: header dict (metadata included) and data section."""

    def __init__(self, blob: bytes):
        n = struct.unpack("<Q", blob[:8])[0]
        self.header = json.loads(blob[8:8 + n])
        self.data = bytearray(blob[8 + n:])

    def copy(self) -> "SafeTensors":
        return SafeTensors(self.bytes())

    @property
    def metadata(self) -> dict:
        return self.header["__metadata__"]

    def names_by_offset(self) -> list[str]:
        return sorted((k for k in self.header if k != "__metadata__"), key=lambda k: self.header[k]["data_offsets"][0])

    def set_float(self, name: str, index: int, value: float) -> None:
        begin = self.header[name]["data_offsets"][0] + 4 * index
        self.data[begin:begin + 4] = struct.pack("<f", value)

    def bytes(self, update_checksum: bool = True) -> bytes:
        if update_checksum and "__metadata__" in self.header:
            import hashlib
            self.metadata["checksum"] = "sha256:" + hashlib.sha256(bytes(self.data)).hexdigest()
        head = json.dumps(self.header, separators=(",", ":")).encode()
        head += b" " * (-len(head) % 8)
        return struct.pack("<Q", len(head)) + head + bytes(self.data)


def make_models(c: Corpus, soundloc: str) -> None:
    sys.path.insert(0, str(ROOT / "Tools"))
    from dsol.export import export_model, random_model
    model = random_model(width=1, num_classes=2, seed=1, embed_dim=4)
    fp32 = c.dir / "ok-fp32-width1.safetensors"
    export_model(model, fp32, "random width-1 model for the fuzz corpus (seed 1)")
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(ROOT / "Models/demo/scene.png", tmp)
        shutil.copy(ROOT / "Models/demo/clip.wav", tmp)
        subprocess.run([soundloc, "quantize", "--model", str(fp32), "--calibration", tmp,
                        "--out", str(c.dir / "ok-int8-width1.safetensors")], check=True)


def safetensors_corpus(c: Corpus) -> None:
    for name in ("ok-fp32-width1.safetensors", "ok-int8-width1.safetensors"):
        c.written.add(name)
        if not (c.dir / name).exists():
            sys.exit(f"{c.dir / name} is missing: run with --models")
    base = SafeTensors((c.dir / "ok-fp32-width1.safetensors").read_bytes())
    int8 = SafeTensors((c.dir / "ok-int8-width1.safetensors").read_bytes())
    victim = "vision.layer2.0.conv1.weight"
    blob = base.bytes()
    n = struct.unpack("<Q", blob[:8])[0]

    def length(v: int) -> bytes:
        return struct.pack("<Q", v) + blob[8:]

    def edit(name: str, fn, update: bool = True, of: SafeTensors = base) -> None:
        f = of.copy()
        fn(f)
        c.put(name, f.bytes(update_checksum=update))

    c.put("bad-truncated.safetensors", blob[:-100])
    c.put("bad-cut-in-header.safetensors", blob[:200])
    c.put("bad-five-bytes.safetensors", blob[:5])
    c.put("bad-length-file-size.safetensors", length(len(blob)))
    c.put("bad-length-max.safetensors", length(2 ** 64 - 1))
    c.put("bad-length-2-63.safetensors", length(2 ** 63))
    c.put("bad-length-short.safetensors", length(n - 9))
    c.put("bad-length-long.safetensors", length(n + 16))
    c.put("bad-header-array.safetensors", blob[:8] + b"[" + blob[9:])
    c.put("bad-header-not-json.safetensors", struct.pack("<Q", 8) + b"not json")
    c.put("bad-header-empty-object.safetensors", struct.pack("<Q", 2) + b"{}")
    c.put("bad-header-nested.safetensors", struct.pack("<Q", 2000) + b"[" * 1000 + b"]" * 1000)

    def offsets(f, name, b, e):
        f.header[name]["data_offsets"] = [b, e]

    b0, e0 = base.header[victim]["data_offsets"]
    size = len(base.data)
    edit("bad-offsets-out-of-range.safetensors", lambda f: offsets(f, victim, b0 + size, e0 + size))
    edit("bad-offsets-overlap.safetensors", lambda f: offsets(f, victim, b0 - 4, e0 - 4))
    for i, pair in enumerate([[-8, 0], [0, -1], [10, 5], [0, 1e300], [0, 2 ** 52]]):
        edit(f"bad-offsets-{i}.safetensors", lambda f, p=pair: f.header[victim].__setitem__("data_offsets", p))

    def gap(f):
        last = f.names_by_offset()[-1]
        b, e = f.header[last]["data_offsets"]
        f.data += bytes(8)
        f.data[b + 8:e + 8] = f.data[b:e]
        f.header[last]["data_offsets"] = [b + 8, e + 8]
    edit("bad-gap.safetensors", gap)
    edit("bad-trailing-bytes.safetensors", lambda f: f.data.extend(bytes(4)))
    for dtype in ("I32", "Q4", "F16"):
        edit(f"bad-dtype-{dtype}.safetensors", lambda f, d=dtype: f.header[victim].__setitem__("dtype", d))
    edit("bad-missing-tensor.safetensors", lambda f: f.header.pop(victim))
    edit("bad-unexpected-tensor.safetensors",
         lambda f: (f.header.__setitem__("vision.fc.weight", {"dtype": "F32", "shape": [2], "data_offsets": [size, size + 8]}),
                    f.data.extend(bytes(8))))
    shape = base.header[victim]["shape"]
    edit("bad-shape-transposed.safetensors", lambda f: f.header[victim].__setitem__("shape", [shape[1], shape[0]] + shape[2:]))
    edit("bad-shape-count.safetensors", lambda f: f.header[victim].__setitem__("shape", [1, 2, 3]))
    for i, s in enumerate([[-1, 8, 3, 3], [2 ** 62, 4, 1, 1], [3_000_000_000] * 3 + [1], [1.5, 1, 1, 1], [True, 1, 1, 1]]):
        edit(f"bad-shape-{i}.safetensors", lambda f, s=s: f.header[victim].__setitem__("shape", s))
    for i, (name, value) in enumerate([(victim, math.nan), ("loc.scale", math.inf), ("audio.conv1.bias", -math.inf),
                                       (victim, 1e30), ("loc.scale", -3.4028234663852886e38), ("dsol.affine", 1.5e6)]):
        edit(f"bad-weight-{i}.safetensors", lambda f, n=name, v=value: f.set_float(n, 0, v))

    def audio(change: str) -> str:
        fields = {"sample_rate": "16000", "n_fft": "160", "hop": "80", "n_mels": "64", "fmax": "8000", "top_db": "80",
                  "frames": "201"}
        key, value = change.split(":", 1)
        fields[key] = value
        return "{" + ", ".join(f'"{k}": {v}' for k, v in fields.items()) + "}"

    metadata_cases = [
        ("width", "9223372036854775807"), ("width", "1000000000000"), ("width", "99999999999999999999999"),
        ("width", "0"), ("width", "eight"), ("width", "-8"), ("width", "2"), ("embed_dim", "4611686018427387904"),
        ("num_classes", "1000000"), ("image_size", "100000"), ("image_size", "16"), ("image_mean", "[1e30, 0, 0]"),
        ("image_std", "[3e38, 1, 1]"), ("image_std", "[1, 0, 1]"), ("image_mean", "[0.5]"),
        ("audio_features", audio("frames:1e300")), ("audio_features", audio("hop:9.2e18")),
        ("audio_features", audio("n_fft:-160")), ("audio_features", audio("sample_rate:1e12")),
        ("audio_features", audio("n_mels:100000")), ("audio_features", audio("fmax:1e9")),
        ("audio_features", audio("top_db:1e308")), ("audio_features", audio("frames:true")),
        ("audio_features", '{"n_mels": 64}'), ("cluster_to_class", "[0, 1e300]"), ("cluster_to_class", "[-1]"),
        ("cluster_to_class", "[0, 99]"), ("format", "other"), ("format_version", "2"), ("classes", '["a", "b", "c"]'),
        ("classes", "not json"), ("classes", '["", "b"]'), ("precision", "fp8"), ("precision", "int8"),
        ("precision", "\x1b]0;owned\x07\x1b[2J"),
    ]
    for i, (key, value) in enumerate(metadata_cases):
        edit(f"bad-metadata-{i:02d}-{key}.safetensors", lambda f, k=key, v=value: f.metadata.__setitem__(k, v))
    for key in ("format", "width", "classes", "num_classes", "audio_features", "image_mean", "checksum"):
        edit(f"bad-missing-{key}.safetensors", lambda f, k=key: f.metadata.pop(k), update=key != "checksum")
    edit("bad-metadata-not-string.safetensors", lambda f: f.metadata.__setitem__("width", 8), update=False)
    edit("bad-metadata-not-object.safetensors", lambda f: f.header.__setitem__("__metadata__", ["x"]), update=False)
    edit("bad-checksum-format.safetensors", lambda f: f.metadata.__setitem__("checksum", "md5:abc"), update=False)

    def flip(f):
        f.data[len(f.data) // 2] ^= 1
    # A data section that no longer matches its checksum still loads with verifyChecksum false (what the
    # fuzz entry does after checking the hash), so this one is accepted.
    edit("ok-checksum-mismatch.safetensors", flip, update=False)
    # int8 files: the first quantised weight's scale zero, negative, subnormal and huge.
    scale = next(k for k in int8.header if k.endswith(".weight_scale"))
    for i, value in enumerate([0.0, -1.0, 1e-44, 1e30, math.nan]):
        edit(f"bad-int8-scale-{i}.safetensors", lambda f, v=value: f.set_float(scale, 0, v), of=int8)
    edit("bad-int8-as-fp32.safetensors", lambda f: f.metadata.__setitem__("precision", "fp32"), of=int8)


# ---------------------------------------------------------------- YAML board configs

def config_corpus(c: Corpus) -> None:
    for path in sorted((ROOT / "Firmware-Configs").glob("*.yaml")):
        c.put(f"ok-{path.name}", path.read_bytes())
    c.put("ok-empty.yaml", b"")
    c.put("ok-comment-only.yaml", "# nothing set: every default\n")
    c.put("ok-few-aliases.yaml", "board: &b pi\nmodel:\n  path: *b\n")
    c.put("ok-flow-style.yaml", '{board: flow, audio: {pcm: "plughw:CARD=Device,DEV=0", period_ms: 10}, '
                                'output: {socket_mode: "0o600", max_clients: 1}}\n')
    c.put("bad-deep-flow.yaml", "audio: " + "[" * 4000 + "]" * 4000 + "\n")
    c.put("bad-deep-block.yaml", "- " * 4000 + "x\n")
    c.put("bad-deep-mappings.yaml", "\n".join(" " * i + f"k{i}:" for i in range(40)) + " 1\n")
    c.put("bad-shallow-list.yaml", "audio: " + "[" * 31 + "]" * 31 + "\n")
    bomb = "l0: &l0 [lol, lol]\n" + "".join(f"l{i}: &l{i} [*l{i - 1}, *l{i - 1}]\n" for i in range(1, 21))
    c.put("bad-alias-bomb.yaml", bomb)
    laughs = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
        f"{n}: &{n} [" + ", ".join([f"*{p}"] * 9) + "]\n" for p, n in zip("abcdefgh", "bcdefghi"))
    c.put("bad-laughs.yaml", laughs)
    c.put("bad-65-aliases.yaml", "board: &b pi\nx: [" + ", ".join(["*b"] * 65) + "]\n")
    c.put("bad-many-problems.yaml", "\n".join([
        "board: ''", "log_level: loud", "audio:", "  pcm: [a]", "  period_ms: 1000", "video:", "  width: 10",
        "  height: 1e9", "  fps: -3", "  colour: yes", "engine:", "  threads: 9999999999999999999999",
        "  kernels: avx9", "pipeline:", "  max_fps: .nan", "  silence_dbfs: .inf", "  min_sounding_peak: 2",
        "output:", "  socket: " + "x" * 120, "  socket_mode: \"0999\"", "  max_clients: 0", "bogus: 1", ""]))
    c.put("bad-not-a-mapping.yaml", "- just\n- a list\n")
    c.put("bad-syntax.yaml", "board: [unclosed\n")
    c.put("bad-tabs.yaml", "audio:\n\tpcm: x\n")
    c.put("bad-binary.yaml", bytes(range(256)))
    c.put("bad-undefined-alias.yaml", "board: *nothing\n")
    c.put("bad-tags.yaml", "board: !!binary aGVsbG8=\nvideo: !custom {width: 1}\n")


# ---------------------------------------------------------------- socket protocol lines

def command_corpus(c: Corpus) -> None:
    for name, line in [
        ("ok-watch-maps.jsonl", '{"class":"WATCH","maps":true}'),
        ("ok-watch-both.jsonl", '{"class":"WATCH","enable":false,"maps":false}'),
        ("ok-poll.jsonl", '{"class":"POLL"}'),
        ("ok-watch-extra-field.jsonl", '{"class":"WATCH","enable":true,"future":[1,{"x":null}]}'),
        # null is taken as an absent field (the setting is kept), although docs/PROTOCOL.md promises an ERROR for a
        # non-boolean "maps"; recorded here as it behaves.
        ("ok-maps-null.jsonl", '{"class":"WATCH","maps":null}'),
        ("ok-unicode-field.jsonl", '{"future":"\\u00e9\\ud83c\\udfbb","class":"POLL"}'),
    ]:
        c.put(name, line + "\n")
    c.put("ok-commands-crlf.jsonl", '{"class":"POLL"}\r\n  {"class":"WATCH","maps":false}\t\r\n')
    for name, line in [
        ("bad-not-object.jsonl", "[1,2,3]"), ("bad-text.jsonl", "hello"), ("bad-unknown-class.jsonl", '{"class":"NOPE"}'),
        ("bad-maps-string.jsonl", '{"class":"WATCH","maps":"yes"}'), ("bad-class-number.jsonl", '{"class":7}'), ("bad-no-class.jsonl", '{"maps":true}'),
        ("bad-enable-number.jsonl", '{"class":"WATCH","enable":1}'), ("bad-server-class.jsonl", '{"class":"FRAME"}'),
        ("bad-escape.jsonl", '{"class":"\\u001b[2J\\ud800"}'), ("bad-huge-number.jsonl", '{"class":"WATCH","maps":1e999}'),
        ("bad-deep.jsonl", "[" * 2000 + "]" * 2000), ("bad-deep-object.jsonl", '{"a":' * 500 + "1" + "}" * 500),
        ("bad-truncated.jsonl", '{"class":"WATCH","maps":tr'),
    ]:
        c.put(name, line + "\n")
    # The server hangs up at a line over 4096 bytes: what follows is never parsed.
    c.put("ok-long-line-ends-connection.jsonl", '{"class":"POLL","pad":"' + "x" * 4100 + '"}\nnot json\n')
    c.put("bad-binary.jsonl", bytes(range(256)))


def watch_corpus(c: Corpus) -> None:
    # ok-served-*.jsonl are lines a server really sent (soundloc serve-fake with maps on), kept as captured.
    for name, line in [
        ("ok-unknown-class.jsonl", '{"class":"DEVICES","devices":[]}'),
        ("ok-minimal-watch.jsonl", '{"class":"WATCH","enable":true,"maps":false}'),
    ]:
        c.put(name, line + "\n")
    for name, line in [
        ("bad-frame-fields.jsonl", '{"class":"FRAME","seq":-1,"sounding":{}}'),
        ("bad-version-fields.jsonl", '{"class":"VERSION","protocol":1}'),
        ("bad-status-missing.jsonl", '{"class":"STATUS","device":"audio"}'),
        ("bad-no-class.jsonl", '{"seq":1}'), ("bad-not-object.jsonl", '"FRAME"'),
        ("bad-frame-huge-numbers.jsonl", '{"class":"FRAME","seq":1e300,"capture_ns":-1,"publish_ns":18446744073709551616}'),
        ("bad-deep.jsonl", '{"class":' + "[" * 2000 + "]" * 2000 + "}"),
    ]:
        c.put(name, line + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(ROOT / "Tests/Fuzz"), help="corpus root (default Tests/Fuzz)")
    ap.add_argument("--models", action="store_true", help="also remake the two valid model files (PyTorch, soundloc)")
    ap.add_argument("--soundloc", default=str(ROOT / ".build/debug/soundloc"), help="soundloc binary for --models")
    args = ap.parse_args(argv)
    out = Path(args.out)
    for target, build in [("wav", wav_corpus), ("image", image_corpus), ("y4m", y4m_corpus),
                          ("safetensors", safetensors_corpus), ("config", config_corpus), ("command", command_corpus),
                          ("watch", watch_corpus)]:
        corpus = Corpus(out, target)
        if target == "safetensors" and args.models:
            make_models(corpus, args.soundloc)
        build(corpus)
        corpus.prune(keep_prefix="ok-served-")
        print(f"{target}: {len(corpus.written)} seeds in {corpus.dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
