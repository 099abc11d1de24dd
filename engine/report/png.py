"""A dependency-free PNG fallback for the report's two charts (no text, just the shapes).

Used only when matplotlib is not installed, so a fresh install still gets both images; with
matplotlib the charts carry axes and labels.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

RGB = tuple[int, int, int]
WHITE: RGB = (255, 255, 255)
GREY: RGB = (200, 200, 200)
BLACK: RGB = (40, 40, 40)
BLUE: RGB = (31, 119, 180)
ORANGE: RGB = (255, 127, 14)
RED: RGB = (214, 39, 40)
PALETTE: tuple[RGB, ...] = (BLUE, ORANGE, (44, 160, 44), RED, (148, 103, 189))


class Canvas:
    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.pixels = [bytearray(bytes(WHITE) * width) for _ in range(height)]

    def dot(self, x: int, y: int, color: RGB) -> None:
        if 0 <= x < self.width and 0 <= y < self.height:
            self.pixels[y][3 * x : 3 * x + 3] = bytes(color)

    def rect(self, x0: int, y0: int, x1: int, y1: int, color: RGB) -> None:
        for y in range(max(0, min(y0, y1)), min(self.height, max(y0, y1) + 1)):
            for x in range(max(0, min(x0, x1)), min(self.width, max(x0, x1) + 1)):
                self.dot(x, y, color)

    def line(self, x0: int, y0: int, x1: int, y1: int, color: RGB) -> None:
        steps = max(abs(x1 - x0), abs(y1 - y0), 1)
        for i in range(steps + 1):
            x = round(x0 + (x1 - x0) * i / steps)
            y = round(y0 + (y1 - y0) * i / steps)
            self.rect(x, y, x + 1, y + 1, color)

    def png(self) -> bytes:
        raw = b"".join(b"\x00" + bytes(row) for row in self.pixels)

        def chunk(kind: bytes, data: bytes) -> bytes:
            return (
                struct.pack(">I", len(data))
                + kind
                + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
            )

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b"")
        )


MARGIN = 30


def line_chart(series: Sequence[Sequence[float]], width: int = 640, height: int = 320) -> bytes:
    """One polyline per series over a shared y range, with the zero line in grey."""
    canvas = Canvas(width, height)
    values = [v for s in series for v in s] or [0.0]
    low, high = min(*values, 0.0), max(*values, 0.0)
    spread = (high - low) or 1.0
    longest = max((len(s) for s in series), default=1)

    def y_of(v: float) -> int:
        return round(height - MARGIN - (v - low) / spread * (height - 2 * MARGIN))

    def x_of(i: int) -> int:
        return round(MARGIN + i / max(longest - 1, 1) * (width - 2 * MARGIN))

    canvas.line(MARGIN, y_of(0), width - MARGIN, y_of(0), GREY)
    canvas.line(MARGIN, MARGIN, MARGIN, height - MARGIN, BLACK)
    for n, points in enumerate(series):
        color = PALETTE[n % len(PALETTE)]
        for i in range(1, len(points)):
            canvas.line(x_of(i - 1), y_of(points[i - 1]), x_of(i), y_of(points[i]), color)
        if len(points) == 1:
            canvas.rect(x_of(0) - 2, y_of(points[0]) - 2, x_of(0) + 2, y_of(points[0]) + 2, color)
    return canvas.png()


def bar_chart(groups: Sequence[Sequence[int]], width: int = 640, height: int = 320) -> bytes:
    """Stacked bars: one bar per bucket, one colour per stacked series."""
    canvas = Canvas(width, height)
    totals = [sum(g) for g in groups] or [0]
    top = max(max(totals), 1)
    slot = (width - 2 * MARGIN) / max(len(groups), 1)
    canvas.line(MARGIN, height - MARGIN, width - MARGIN, height - MARGIN, BLACK)
    for i, group in enumerate(groups):
        x0 = round(MARGIN + i * slot + slot * 0.1)
        x1 = round(MARGIN + (i + 1) * slot - slot * 0.1)
        base = height - MARGIN
        for n, count in enumerate(group):
            if count <= 0:
                continue
            bar_h = round(count / top * (height - 2 * MARGIN))
            canvas.rect(x0, base - bar_h, x1, base - 1, PALETTE[n % len(PALETTE)])
            base -= bar_h
    return canvas.png()
