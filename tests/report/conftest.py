"""A two-run sweep summary (plus a refused run), headless Chromium, and a small PNG reader."""

from __future__ import annotations

import json
import shutil
import struct
import zlib
from pathlib import Path

import pytest

RUNS = [
    {"target": "support", "overrides": ["backend=local-cpu"], "backend": "local-cpu", "gates": "default",
     "status": "ok", "duration_s": 412.5, "cost_usd": 0.0, "k_score": 0.81,
     "artifact": "artifacts/support-0.1.0.kolm", "message": ""},
    {"target": "support", "overrides": ["backend=runpod"], "backend": "runpod", "gates": "default",
     "status": "ok", "duration_s": 96.2, "cost_usd": 0.37, "k_score": 0.86,
     "artifact": "artifacts/support-0.1.0+runpod.kolm", "message": ""},
]  # fmt: skip
REFUSED = {"target": "support", "overrides": ["backend=modal"], "backend": "modal", "gates": "default",
           "status": "refused", "duration_s": 0.0, "cost_usd": 0.0, "k_score": None, "artifact": None,
           "message": "refused: estimate $2.10 exceeds budget $1.00 <b>"}  # fmt: skip


def write_sweep(root: Path, stamp: str, runs: list[dict]) -> Path:
    d = root / "sweeps" / stamp
    d.mkdir(parents=True)
    (d / "summary.json").write_text(
        json.dumps({"kind": "kolm-sweep", "version": 1, "created": "2026-11-24T10:15:00Z", "runs": runs})
    )
    return d


@pytest.fixture
def sweep_dir(tmp_path: Path) -> Path:
    return write_sweep(tmp_path, "20261124T101500Z", [*RUNS, REFUSED])


@pytest.fixture
def make_sweep():
    return write_sweep


@pytest.fixture
def two_runs() -> list[dict]:
    return [dict(r) for r in RUNS]


@pytest.fixture
def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if exe is None:  # under CI=true a skip is a failure (tests/conftest.py)
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    return exe


def read_png(path: Path) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB(A) bytes) of an 8-bit RGB or RGBA, non-interlaced PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    width = height = channels = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and color in (2, 6) and interlace == 0, (depth, color, interlace)
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    prev = bytearray(stride)
    i = 0
    for _ in range(height):
        ftype, line = raw[i], bytearray(raw[i + 1 : i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - channels] if x >= channels else 0
            b = prev[x]
            c = prev[x - channels] if x >= channels else 0
            if ftype == 1:
                line[x] = (line[x] + a) & 0xFF
            elif ftype == 2:
                line[x] = (line[x] + b) & 0xFF
            elif ftype == 3:
                line[x] = (line[x] + (a + b) // 2) & 0xFF
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[x] = (line[x] + pred) & 0xFF
        rows.append(bytes(line) if channels == 3 else bytes(v for k, v in enumerate(line) if k % 4 != 3))
        prev = line
    return width, height, rows


@pytest.fixture
def png_reader():
    return read_png
