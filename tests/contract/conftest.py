"""Labels drawn as a printer would draw them and read back as a scanner would (issue 17).

A ZPL renderer (zpl-renderer-js: IngridHQ's zebrash compiled to WebAssembly, pinned in
.ci/zpl-render and installed by `make deps`) draws our ZPL at 203 dpi; zxing-cpp decodes the
drawn symbols. The renderer runs as one Node process for the whole session (loading it costs about
a second, a label about 0.1 s). A missing Node or renderer fails the tests, never skips them.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import struct
import subprocess
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import barcode
import pytest
import zxingcpp

REPO = Path(__file__).resolve().parents[2]
RENDER_SCRIPT = REPO / ".ci" / "zpl-render" / "render.cjs"
RENDER_DIR = Path(os.environ.get("ZPL_RENDER_DIR", REPO / ".ci-tools" / "zpl-render"))
DOTS_PER_MM = 8  # 203 dpi, what app/services/zpl.py lays labels out for
# Our ZPL names a TrueType font the printer holds (INVENTORY_ZPL_FONT, downloaded once as the
# README says). The renderer has no such file and would stand in a fixed-pitch font drawn twice as
# wide (about 42 dots a character at our 35-dot title: it ran into the QR code), which the real
# font is not: so each document first stores a TrueType font under that name (~DU, which the
# renderer knows; the README's ~DY it does not), as the printer holds one.
# DejaVu Sans Mono ships with python-barcode (a runtime requirement); it has no CJK glyphs, so
# Chinese is drawn as boxes: ink in the right place, not a check of the glyphs.
STAND_IN_FONT = Path(barcode.__file__).parent / "fonts" / "DejaVuSansMono.ttf"


@dataclass(frozen=True)
class Box:
    left: int
    top: int
    right: int
    bottom: int

    def overlaps(self, other: Box) -> bool:
        return not (
            self.right <= other.left or other.right <= self.left or self.bottom <= other.top or other.bottom <= self.top
        )


@dataclass(frozen=True)
class Symbol:
    """One decoded symbol: its format ("DataMatrix", "Code128", "QRCode"), what a scanner sends
    with symbology identifiers on (the AIM identifier, then the data with ASCII 29 for FNC1), the
    data alone (a scanner without identifiers), and where it is drawn."""

    format: str
    scanned: str
    text: str
    box: Box


@dataclass(frozen=True)
class Raster:
    """A drawn label: 8-bit grey, one byte a dot, row by row."""

    width: int
    height: int
    pixels: bytes

    def ink(self, box: Box) -> int:
        """How many dots in `box` are dark."""
        right, bottom = min(box.right, self.width), min(box.bottom, self.height)
        return sum(
            1
            for y in range(max(box.top, 0), bottom)
            for value in self.pixels[y * self.width + max(box.left, 0) : y * self.width + right]
            if value < 128
        )

    def symbols(self) -> list[Symbol]:
        image = memoryview(self.pixels).cast("B", (self.height, self.width))
        found = zxingcpp.read_barcodes(image, text_mode=zxingcpp.TextMode.Plain, try_rotate=False)
        return [
            Symbol(
                format=result.format.name,
                scanned=result.symbology_identifier + result.text,
                text=result.text,
                box=_box(result.position),
            )
            for result in found
        ]


def _box(position: zxingcpp.Position) -> Box:
    corners = [position.top_left, position.top_right, position.bottom_right, position.bottom_left]
    xs, ys = [c.x for c in corners], [c.y for c in corners]
    return Box(min(xs), min(ys), max(xs) + 1, max(ys) + 1)


def grey_png(data: bytes) -> Raster:
    """An 8-bit greyscale, non-interlaced PNG (what the renderer writes) as a Raster."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, header, compressed = 8, b"", b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        header = body if kind == b"IHDR" else header
        compressed += body if kind == b"IDAT" else b""
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert (depth, colour, interlace) == (8, 0, 0), f"PNG depth {depth}, colour type {colour}, interlace {interlace}"
    raw, previous, rows = zlib.decompress(compressed), bytes(width), []
    for y in range(height):
        start = y * (width + 1)
        previous = _unfilter(raw[start], bytearray(raw[start + 1 : start + 1 + width]), previous)
        rows.append(previous)
    return Raster(width, height, b"".join(rows))


def _unfilter(kind: int, line: bytearray, above: bytes) -> bytes:
    for x in range(len(line)):
        left = line[x - 1] if x else 0
        up, corner = above[x], above[x - 1] if x else 0
        if kind == 1:
            line[x] = (line[x] + left) & 0xFF
        elif kind == 2:
            line[x] = (line[x] + up) & 0xFF
        elif kind == 3:
            line[x] = (line[x] + (left + up) // 2) & 0xFF
        elif kind == 4:
            line[x] = (line[x] + _paeth(left, up, corner)) & 0xFF
    return bytes(line)


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


class Renderer:
    """The Node renderer process: render(zpl, width, height) draws each format of a document."""

    def __init__(self, process: subprocess.Popen[str], log: Path) -> None:
        self.process, self.log = process, log

    def render(self, zpl: str, *, width: int, height: int, font: str) -> list[Raster]:
        data = STAND_IN_FONT.read_bytes()
        stored = f"~DU{font},{len(data)},{data.hex().upper()}\n"
        request = {"zpl": stored + zpl, "widthMm": width / DOTS_PER_MM, "heightMm": height / DOTS_PER_MM}
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            pytest.fail(f"the ZPL renderer stopped: {self.log.read_text(encoding='utf-8', errors='replace')[-2000:]}")
        answer = json.loads(line)
        if "error" in answer:
            pytest.fail(f"the ZPL renderer refused the document: {answer['error']}")
        return [grey_png(base64.b64decode(png)) for png in answer["pngs"]]


@pytest.fixture(scope="session")
def zpl_renderer() -> Iterator[Renderer]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed: run `make deps` (.ci/deps zpl)")
    if not (RENDER_DIR / "node_modules" / "zpl-renderer-js" / "package.json").is_file():
        pytest.fail(f"the ZPL renderer is not installed in {RENDER_DIR}: run `make deps` (.ci/deps zpl)")
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "renderer.log"
        with log.open("w", encoding="utf-8") as errors:
            process = subprocess.Popen(
                [node, str(RENDER_SCRIPT)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
                text=True,
                encoding="utf-8",
                env={**os.environ, "NODE_PATH": str(RENDER_DIR / "node_modules")},
            )
            try:
                yield Renderer(process, log)
            finally:
                assert process.stdin is not None
                process.stdin.close()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
