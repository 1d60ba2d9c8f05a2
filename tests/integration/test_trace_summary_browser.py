# SPDX-License-Identifier: GPL-3.0-or-later
"""The HTML report opens in a real browser: headless Chromium (Debian's ``chromium``) renders it to a
PNG, and the PNG must show the report - not blank, with the pictures' colours on it.

Needs the ``chromium`` Debian package (tools/setup.sh installs it); fails, never skips, without it.
Set VLLM_INFRA_KEEP_SCREENSHOTS=DIR to keep the PNGs for a look.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from ansible_collections.vllm_infra.profiling.plugins.module_utils import _report as R
from ansible_collections.vllm_infra.profiling.plugins.module_utils import _trace as T

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "traces"
WIDTH, HEIGHT = 1100, 2400


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    raise AssertionError("chromium is not installed (apt-get install chromium; tools/setup.sh does it)")


def screenshot(page: Path, png: Path, profile: Path) -> None:
    cmd = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--hide-scrollbars",
        f"--window-size={WIDTH},{HEIGHT}",
        f"--screenshot={png}",
        page.as_uri(),
    ]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and png.is_file(), proc.stdout[-2000:] + proc.stderr[-2000:]


def decode_png(data: bytes) -> tuple[int, int, list[tuple[int, int, int]]]:
    """Width, height and RGB pixels of an 8-bit RGB/RGBA PNG (what Chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and color in (2, 6), (depth, color)
            bpp = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytearray] = []
    prev = bytearray(stride)
    for y in range(height):
        ftype = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 0xFF
            elif ftype == 2:
                line[i] = (line[i] + b) & 0xFF
            elif ftype == 3:
                line[i] = (line[i] + ((a + b) >> 1)) & 0xFF
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(line)
        prev = line
    pixels = [(row[x], row[x + 1], row[x + 2]) for row in rows for x in range(0, stride, bpp)]
    return width, height, pixels


def hex_rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def render(result: dict, tmp_path: Path, name: str) -> list[tuple[int, int, int]]:
    page = tmp_path / f"{name}.html"
    page.write_text(R.render_html(result), encoding="utf-8")
    png = tmp_path / f"{name}.png"
    screenshot(page, png, tmp_path / "chromium-profile")
    keep = os.environ.get("VLLM_INFRA_KEEP_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png, Path(keep) / png.name)
    width, height, pixels = decode_png(png.read_bytes())
    assert (width, height) == (WIDTH, HEIGHT)
    return pixels


def assert_not_blank(pixels: list[tuple[int, int, int]]) -> None:
    non_white = sum(1 for p in pixels if p != (255, 255, 255))
    assert non_white > 0.03 * len(pixels), non_white
    assert len(set(pixels)) > 50  # text anti-aliasing, tables, pictures


def test_cpu_report_renders_with_the_step_pictures(tmp_path: Path) -> None:
    pixels = render(T.analyze(str(FIX / "cpu" / "nostack")), tmp_path, "cpu-nostack")
    assert_not_blank(pixels)
    counts = {phase: pixels.count(hex_rgb(color)) for phase, color in R.PHASE_COLORS.items()}
    # the prefill peak and the decode bars of the SVG pictures are on the screen
    assert counts["prefill"] > 2000 and counts["decode"] > 2000, counts


def test_gpu_report_renders_with_the_kernel_categories(tmp_path: Path) -> None:
    result = T.analyze(str(FIX / "gpu"), step_regex=r"^token_step_\d+$")
    pixels = render(result, tmp_path, "gpu")
    assert_not_blank(pixels)
    for category in ("GEMM", "elementwise"):
        assert pixels.count(hex_rgb(R.CATEGORY_COLORS[category])) > 500, category


def test_fleet_report_renders(tmp_path: Path) -> None:
    root = tmp_path / "captures"
    shutil.copytree(FIX / "cpu" / "nostack", root / "node-a")
    shutil.copytree(FIX / "cpu" / "detailed", root / "node-b")
    pixels = render(T.analyze(str(root)), tmp_path, "fleet")
    assert_not_blank(pixels)
    assert pixels.count(hex_rgb("#1971c2")) > 2000  # fleet bars and decode steps


def test_a_blank_page_is_caught(tmp_path: Path) -> None:
    """The check above can fail: an empty page renders white."""
    page = tmp_path / "blank.html"
    page.write_text("<!DOCTYPE html><html><body></body></html>")
    png = tmp_path / "blank.png"
    screenshot(page, png, tmp_path / "chromium-profile")
    _w, _h, pixels = decode_png(png.read_bytes())
    with pytest.raises(AssertionError):
        assert_not_blank(pixels)


def test_two_rank_report_renders_the_per_rank_chart(tmp_path: Path) -> None:
    result = T.analyze(str(FIX / "gpu-tp2" / "eager"))
    pixels = render(result, tmp_path, "gpu-tp2")
    assert_not_blank(pixels)
    # rank 0's long red bar: waiting in all-reduce for rank 1 (the straggler)
    assert pixels.count(hex_rgb(R.RANK_COLORS["wait"])) > 5000
    assert pixels.count(hex_rgb(R.RANK_COLORS["compute"])) > 100
