"""The training animation: predictions evolving over the epochs, as a GIF.

matplotlib draws the static part (axes, data, true function) once; each frame is that
picture plus one polyline and a title, drawn with Pillow on a fixed palette. That is
what makes a 100-frame GIF cost milliseconds instead of a FuncAnimation's seconds.
Several panels side by side (a sweep's runs) use the same path.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

MAX_SCATTER = 1500  # points drawn per panel; more only slows the background
CLEAR, LINE, TEXT = 253, 254, 255  # palette slots: unchanged pixel (GIF deltas), curve, titles
LINE_RGB, TEXT_RGB = (214, 39, 40), (20, 20, 20)


@dataclass
class Panel:
    """One plot: the data, the true curve and the predictions frame by frame."""

    x: np.ndarray
    y: np.ndarray
    grid: np.ndarray
    truth: np.ndarray
    frames: np.ndarray  # [n_frames, len(grid)]
    frame_epochs: Sequence[int]
    frame_losses: Sequence[float]
    epochs: int
    label: str = ""


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def fixed_margins(fig, rows: int, cols: int) -> None:
    """Margins in pixels: tight_layout would cost ~100 ms a figure for the same result."""
    w, h = fig.get_size_inches() * fig.dpi
    fig.subplots_adjust(
        left=42 / w,
        right=1 - 10 / w,
        bottom=24 / h,
        top=1 - 22 / h,
        wspace=52 / (w / cols),
        hspace=46 / (h / rows),
    )


def _background(panels: Sequence[Panel], width: int, height: int, cols: int):
    """Draw the static picture; return it and each panel's data->pixel mapping."""
    plt = pyplot()
    rows = math.ceil(len(panels) / cols)
    dpi = 100
    fig, axes = plt.subplots(
        rows, cols, figsize=(width / dpi, height / dpi), dpi=dpi, squeeze=False
    )
    rng = np.random.default_rng(0)
    for ax, panel in zip(axes.flat, panels, strict=False):
        idx = np.arange(len(panel.x))
        if len(idx) > MAX_SCATTER:
            idx = rng.choice(idx, MAX_SCATTER, replace=False)
        ax.scatter(
            panel.x[idx], panel.y[idx], s=4, alpha=0.35, color="#1f77b4", linewidths=0, label="data"
        )
        ax.plot(panel.grid, panel.truth, color="#2ca02c", lw=1.5, label="true function")
        ax.plot([], [], color=np.array(LINE_RGB) / 255, lw=2, label="prediction")
        lo = min(panel.y.min(), panel.truth.min())
        hi = max(panel.y.max(), panel.truth.max())
        pad = 0.1 * (hi - lo or 1.0)
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_xlim(panel.grid.min(), panel.grid.max())
        if ax is axes.flat[0]:  # one legend says it for every panel
            ax.legend(loc="lower right", fontsize=7, markerscale=2)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fixed_margins(fig, rows, cols)
    fig.canvas.draw()
    image = Image.frombuffer(
        "RGBA", fig.canvas.get_width_height(), fig.canvas.buffer_rgba()
    ).convert("RGB")
    mappings = [(ax.transData.frozen(), ax.get_window_extent()) for ax in axes.flat]
    plt.close(fig)
    return image, mappings[: len(panels)]


def _to_palette(image: Image.Image) -> Image.Image:
    """Quantize once to a fixed palette, keeping slots for GIF deltas, line and text."""
    quantized = image.quantize(colors=CLEAR, method=Image.Quantize.MEDIANCUT)
    palette = quantized.getpalette()[: 3 * CLEAR]
    palette += [0, 0, 0] * (CLEAR + 1 - len(palette) // 3)
    quantized.putpalette(palette + list(LINE_RGB) + list(TEXT_RGB))
    return quantized


class Canvas:
    """The static picture of some panels, ready to have curves drawn on it."""

    def __init__(
        self, panels: Sequence[Panel], width: int = 640, height: int = 400, cols: int | None = None
    ) -> None:
        self.panels = list(panels)
        cols = cols or min(len(panels), 4)
        background, self.mappings = _background(panels, width, height, cols)
        self.base = _to_palette(background)
        rows = math.ceil(len(panels) / cols)
        self.font = ImageFont.load_default(size=max(11, min(14, height // (28 * rows))))

    def _pixels(self, panel_index: int, curves: np.ndarray) -> np.ndarray:
        """Data coordinates of ``curves`` [n, grid] -> clipped pixel coordinates."""
        transform, box = self.mappings[panel_index]
        grid = self.panels[panel_index].grid
        pts = np.stack([np.broadcast_to(grid, curves.shape), curves], axis=-1).reshape(-1, 2)
        with np.errstate(invalid="ignore", over="ignore"):
            xy = transform.transform(np.nan_to_num(pts, nan=0.0, posinf=1e9, neginf=-1e9))
        xy[:, 0] = np.clip(xy[:, 0], box.x0, box.x1)
        xy[:, 1] = self.base.height - np.clip(xy[:, 1], box.y0, box.y1)
        return xy.reshape(*curves.shape, 2)

    def _paint(self, curves: Sequence[np.ndarray | None], titles: Sequence[str]) -> Image.Image:
        """The background plus, per panel, a curve in pixels (None: none) and a title."""
        frame = self.base.copy()
        pen = ImageDraw.Draw(frame)
        for (_, box), xy, title in zip(self.mappings, curves, titles, strict=True):
            if xy is not None:
                pen.line([tuple(p) for p in xy.tolist()], fill=LINE, width=2)
            corner = (box.x0, self.base.height - box.y1 - 4)
            pen.text(corner, title, fill=TEXT, font=self.font, anchor="lb")
        return frame

    def draw(self, curves: Sequence[np.ndarray | None], titles: Sequence[str]) -> Image.Image:
        """One image: each panel's curve in data coordinates (None: none) and title."""
        pixels = [
            None if c is None else self._pixels(i, np.asarray(c)[None, :])[0]
            for i, c in enumerate(curves)
        ]
        return self._paint(pixels, titles)

    def frames(self) -> list[Image.Image]:
        """The animation; panels with fewer frames hold their last one."""
        pixels = [self._pixels(i, p.frames) for i, p in enumerate(self.panels)]
        out = []
        for f in range(max(len(p.frame_epochs) for p in self.panels)):
            curves, titles = [], []
            for panel, xy in zip(self.panels, pixels, strict=True):
                k = min(f, len(panel.frame_epochs) - 1)
                curves.append(xy[k] if k >= 0 else None)
                titles.append(
                    (f"{panel.label}  " if panel.label else "")
                    + (
                        f"epoch {panel.frame_epochs[k] + 1}/{panel.epochs}  "
                        f"loss {panel.frame_losses[k]:.4g}"
                        if k >= 0
                        else ""
                    )
                )
            out.append(self._paint(curves, titles))
        return out


def render(
    panels: Sequence[Panel], width: int = 640, height: int = 400, cols: int | None = None
) -> list[Image.Image]:
    """All frames of the panels' animation as palette images."""
    return Canvas(panels, width, height, cols).frames()


def save_gif(frames: Sequence[Image.Image], path: Path, fps: int = 20) -> None:
    """Write palette frames as a GIF of deltas: pixels unchanged since the previous frame
    become transparent. Same file size as Pillow's ``optimize``, at half the time, since
    Pillow no longer rescans every frame's palette."""
    palette = frames[0].getpalette()
    previous = np.asarray(frames[0])
    deltas = [frames[0]]
    for frame in frames[1:]:
        pixels = np.asarray(frame)
        delta = Image.fromarray(np.where(pixels == previous, np.uint8(CLEAR), pixels), "P")
        delta.putpalette(palette)
        deltas.append(delta)
        previous = pixels
    deltas[0].save(
        path,
        save_all=True,
        append_images=deltas[1:],
        duration=max(1, round(1000 / fps)),
        loop=0,
        optimize=False,
        transparency=CLEAR,
        disposal=1,
    )
