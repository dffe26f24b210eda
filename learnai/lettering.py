"""Text on animation frames: Pillow's own pixels, each repeated text rendered once.

A panel's title and its notes ("diverged: loss blew up at epoch 51") stand at the same
place on frame after frame. FreeType renders a line in about 0.3 ms, and a sweep's
side-by-side GIF draws some 1,200 of them: a third of its painting. From the second
time a text is asked for at the same place, it is rendered once into a stamp and pasted:
the same glyph bitmap ``ImageDraw.text`` would draw (same font, same fractional start,
the bilevel text mode Pillow uses on palette images), so every frame stays identical to
the pixel (``tests/test_pictures.py`` compares them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

_MARGIN = 2  # pixels around the text's box: a fractional start can shift a glyph by one


@dataclass(frozen=True)
class _Stamp:
    mask: Image.Image  # "L": 255 where the text is
    origin: tuple[int, int]  # where the text's anchor point lies on the mask


class Lettering:
    """Draws text with one font onto palette frames, as ``ImageDraw.text`` would."""

    def __init__(self, font: ImageFont.FreeTypeFont) -> None:
        self.font = font
        self._seen: set[tuple] = set()
        self._stamps: dict[tuple, _Stamp | None] = {}
        self._boxes: dict[tuple, tuple[float, float, float, float]] = {}

    def text(self, pen: ImageDraw.ImageDraw, xy, text: str, fill: int, anchor: str) -> None:
        """``pen.text(xy, text, fill=fill, font=font, anchor=anchor)``."""
        key = (text, xy, anchor)
        if key not in self._stamps:
            if key not in self._seen:  # most texts that change show up once: draw directly
                self._seen.add(key)
                pen.text(xy, text, fill=fill, font=self.font, anchor=anchor)
                return
            self._stamps[key] = self._stamp(xy, text, anchor)
        stamp = self._stamps[key]
        if stamp is None:
            pen.text(xy, text, fill=fill, font=self.font, anchor=anchor)
            return
        at = (int(xy[0]) - stamp.origin[0], int(xy[1]) - stamp.origin[1])
        pen.bitmap(at, stamp.mask, fill=fill)  # the same draw_bitmap that pen.text ends in

    def textbbox(self, pen: ImageDraw.ImageDraw, xy, text: str, anchor: str):
        """``pen.textbbox(xy, text, font, anchor)``, measured once per text and place."""
        key = (text, xy, anchor)
        box = self._boxes.get(key)
        if box is None:
            box = self._boxes[key] = pen.textbbox(xy, text, font=self.font, anchor=anchor)
        return box

    def _stamp(self, xy, text: str, anchor: str) -> _Stamp | None:
        """The text rendered alone, or None when its ink reaches the stamp's edge (a glyph
        can overhang the box Pillow measures; such text is always drawn directly)."""
        left, top, right, bottom = self.font.getbbox(text, anchor=anchor)
        pad = _MARGIN + round(self.font.size)  # room for overhanging glyphs
        origin = (pad - math.floor(left), pad - math.floor(top))
        size = (
            math.ceil(right) - math.floor(left) + 2 * pad,
            math.ceil(bottom) - math.floor(top) + 2 * pad,
        )
        mask = Image.new("L", size, 0)
        pen = ImageDraw.Draw(mask)
        pen.fontmode = "1"  # bilevel, as on palette frames
        start = (origin[0] + math.modf(xy[0])[0], origin[1] + math.modf(xy[1])[0])
        pen.text(start, text, fill=255, font=self.font, anchor=anchor)
        ink = mask.getbbox()
        if ink is not None and (
            ink[0] == 0 or ink[1] == 0 or ink[2] == size[0] or ink[3] == size[1]
        ):
            return None
        return _Stamp(mask, origin)
