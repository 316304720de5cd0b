"""Reader for Qt binary resource bundles (.rcc), as shipped by gcompris-qt-data.

Layout (Qt rcc format versions 1-3): a 20/24-byte header ("qres", version,
tree/data/names offsets, flags in v3), a tree of fixed-size nodes, a name
table (u16 length, u32 hash, UTF-16BE) and a data table (u32 size + bytes;
zlib entries carry a 4-byte big-endian uncompressed length first).
"""
from __future__ import annotations

import struct
import zlib

_COMPRESSED = 0x01
_DIRECTORY = 0x02
_ZSTD = 0x04


class RccError(ValueError):
    pass


def read_rcc(path: str) -> dict[str, bytes]:
    """Return {resource path: file bytes} for every file in the bundle."""
    with open(path, "rb") as f:
        blob = f.read()
    if blob[:4] != b"qres":
        raise RccError(f"{path}: not a Qt resource bundle")
    version, tree_off, data_off, names_off = struct.unpack_from(">IIII", blob, 4)
    if version not in (1, 2, 3):
        raise RccError(f"{path}: unsupported rcc version {version}")
    node_size = 14 if version == 1 else 22

    def name_at(off: int) -> str:
        (length,) = struct.unpack_from(">H", blob, names_off + off)
        start = names_off + off + 6  # skip length and hash
        return blob[start:start + 2 * length].decode("utf-16-be")

    out: dict[str, bytes] = {}

    def walk(index: int, prefix: str, depth: int) -> None:
        if depth > 64:
            raise RccError(f"{path}: resource tree too deep")
        base = tree_off + index * node_size
        name_off, flags = struct.unpack_from(">IH", blob, base)
        name = name_at(name_off) if index else ""
        full = f"{prefix}/{name}" if name else prefix
        if flags & _DIRECTORY:
            count, first = struct.unpack_from(">II", blob, base + 6)
            for child in range(first, first + count):
                walk(child, full, depth + 1)
            return
        (doff,) = struct.unpack_from(">I", blob, base + 10)
        (size,) = struct.unpack_from(">I", blob, data_off + doff)
        raw = blob[data_off + doff + 4:data_off + doff + 4 + size]
        if flags & _ZSTD:
            raise RccError(f"{path}: zstd-compressed entry {full} not supported")
        if flags & _COMPRESSED:
            raw = zlib.decompress(raw[4:])
        out[full] = raw

    walk(0, "", 0)
    return out
