"""Headless Chromium screenshots and a stdlib PNG decoder (8-bit RGB/RGBA, not interlaced) for tests."""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")


def chromium() -> str | None:
    for candidate in CHROMIUM_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def screenshot(html_file: Path, png: Path, *, width: int = 1200, height: int = 1600) -> Path:
    """Render ``html_file`` in headless Chromium with no network and save a PNG screenshot."""
    binary = chromium()
    if binary is None:
        raise RuntimeError("chromium is not installed (make test installs it: apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="assay-chromium-") as profile:
        subprocess.run(
            [
                binary,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                f"--screenshot={png}",
                f"--window-size={width},{height}",
                "--hide-scrollbars",
                html_file.resolve().as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
    return png


def decode_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB bytes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    assert header is not None
    width, height, depth, colour_type, _, _, interlace = header
    assert depth == 8 and colour_type in (2, 6) and interlace == 0, header
    bpp = 3 if colour_type == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up = previous[i]
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + ((left + up) >> 1)) & 0xFF
            elif kind == 4:
                upper_left = previous[i - bpp] if i >= bpp else 0
                p = left + up - upper_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - upper_left)
                predictor = left if pa <= pb and pa <= pc else (up if pb <= pc else upper_left)
                line[i] = (line[i] + predictor) & 0xFF
        previous = line
        rows.append(
            bytes(line) if bpp == 3 else bytes(b for j in range(0, stride, 4) for b in line[j : j + 3])
        )
    return width, height, rows


def hex_rgb(colour: str) -> tuple[int, int, int]:
    colour = colour.lstrip("#")
    return int(colour[0:2], 16), int(colour[2:4], 16), int(colour[4:6], 16)


def count_colour(
    rows: list[bytes], rgb: tuple[int, int, int], *, tolerance: int = 6, y_range: range | None = None
) -> int:
    """Pixels within ``tolerance`` of ``rgb`` (per channel) in the given rows."""
    r0, g0, b0 = rgb
    total = 0
    for y in y_range or range(len(rows)):
        row = rows[y]
        for x in range(0, len(row), 3):
            if (
                abs(row[x] - r0) <= tolerance
                and abs(row[x + 1] - g0) <= tolerance
                and abs(row[x + 2] - b0) <= tolerance
            ):
                total += 1
    return total
