"""The training animation: predictions evolving over the epochs, as a GIF.

matplotlib draws the static part (axes, data, true function) once; each frame is that
picture plus one polyline and a title, drawn with Pillow on a fixed palette. That is
what makes a 100-frame GIF cost milliseconds instead of a FuncAnimation's seconds.
Several panels side by side (a sweep's runs) use the same path.

Since the axes are fixed, a prediction can leave them (a diverged run's does): those
points are not drawn on the border as if they were data but marked with triangles at
the edge they cross and labelled with their extreme value, in the curve's colour.
"""

from __future__ import annotations

import math
from bisect import bisect_right
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
    frame_epochs: Sequence[int]  # 1-based epoch of each frame
    frame_losses: Sequence[float]  # validation loss of the model each frame draws
    epochs: int
    label: str = ""
    diverged_at: int | None = None  # epoch whose loss blew up, if any


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def fixed_margins(fig, rows: int, cols: int, title_lines: int = 1) -> None:
    """Margins in pixels: tight_layout re-measures every text each figure (timed in
    experiments/README.md) for the same result."""
    w, h = fig.get_size_inches() * fig.dpi
    title = 8 + 14 * title_lines
    fig.subplots_adjust(
        left=42 / w,
        right=1 - 10 / w,
        bottom=24 / h,
        top=1 - title / h,
        wspace=52 / (w / cols),
        hspace=(24 + title) / (h / rows),
    )


def _background(panels: Sequence[Panel], width: int, height: int, cols: int):
    """Draw the static picture; return it and each panel's data->pixel mapping and y range."""
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
    fixed_margins(fig, rows, cols, title_lines=2 if any(p.label for p in panels) else 1)
    fig.canvas.draw()
    image = Image.frombuffer(
        "RGBA", fig.canvas.get_width_height(), fig.canvas.buffer_rgba()
    ).convert("RGB")
    mappings = [(ax.transData.frozen(), ax.get_window_extent(), ax.get_ylim()) for ax in axes.flat]
    plt.close(fig)
    return image, mappings[: len(panels)]


def _to_palette(image: Image.Image) -> Image.Image:
    """Quantize once to a fixed palette, keeping slots for GIF deltas, line and text."""
    quantized = image.quantize(colors=CLEAR, method=Image.Quantize.MEDIANCUT)
    palette = quantized.getpalette()[: 3 * CLEAR]
    palette += [0, 0, 0] * (CLEAR + 1 - len(palette) // 3)
    quantized.putpalette(palette + list(LINE_RGB) + list(TEXT_RGB))
    return quantized


def _fmt(value: float) -> str:
    return f"{value:.3g}" if math.isfinite(value) else str(value)


class Canvas:
    """The static picture of some panels, ready to have curves drawn on it."""

    def __init__(
        self, panels: Sequence[Panel], width: int = 640, height: int = 400, cols: int | None = None
    ) -> None:
        self.panels = list(panels)
        cols = cols or min(len(panels), 4)
        background, self.mappings = _background(self.panels, width, height, cols)
        self.base = _to_palette(background)
        rows = math.ceil(len(panels) / cols)
        size = max(11, min(14, height // (28 * rows)))
        self.font = ImageFont.load_default(size=size)
        self.line_height = size + 3
        rgb = np.asarray(self.base.getpalette()[: 3 * CLEAR]).reshape(-1, 3)
        self.paper = int(np.argmin(((rgb - 255) ** 2).sum(axis=1)))  # white behind notes

    def _project(self, panel_index: int, curves: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Data coordinates of ``curves`` [n, grid] -> pixel coordinates clipped to the
        axes, and where each point is: 0 inside, 1 above, -1 below, 2 not finite."""
        transform, box, (lo, hi) = self.mappings[panel_index]
        grid = self.panels[panel_index].grid
        pts = np.stack([np.broadcast_to(grid, curves.shape), curves], axis=-1).reshape(-1, 2)
        with np.errstate(invalid="ignore", over="ignore"):
            xy = transform.transform(np.nan_to_num(pts, nan=0.0, posinf=1e9, neginf=-1e9))
            where = np.where(curves > hi, 1, np.where(curves < lo, -1, 0))
        where[~np.isfinite(curves)] = 2
        xy[:, 0] = np.clip(xy[:, 0], box.x0, box.x1)
        xy[:, 1] = self.base.height - np.clip(xy[:, 1], box.y0, box.y1)
        return xy.reshape(*curves.shape, 2), where

    def _curve(self, pen: ImageDraw.ImageDraw, xy: np.ndarray, where: np.ndarray) -> None:
        """The in-range stretches as lines; off-scale stretches as triangles at the edge."""
        inside = where == 0
        if inside.all():  # the usual case: one polyline
            pen.line([tuple(p) for p in xy.tolist()], fill=LINE, width=2)
            return
        cuts = np.flatnonzero(np.diff(inside.astype(np.int8))) + 1
        for part, ok in zip(np.split(xy, cuts), np.split(inside, cuts), strict=True):
            if ok[0]:
                pen.line([tuple(p) for p in part.tolist()], fill=LINE, width=2)
        last = -99.0
        for (x, y), w in zip(xy.tolist(), where.tolist(), strict=True):
            if w in (1, -1) and x - last >= 10:  # one triangle every 10 px along the edge
                tip, back = (y - 5, y + 3) if w == 1 else (y + 5, y - 3)
                pen.polygon([(x, tip), (x - 4, back), (x + 4, back)], fill=LINE)
                last = x

    def _notes(self, i: int, values: np.ndarray, epoch: int | None) -> list[str]:
        """Red lines in the panel's corner: what a newcomer should not miss."""
        notes = []
        panel = self.panels[i]
        _, _, (lo, hi) = self.mappings[i]
        if panel.diverged_at is not None and epoch is not None and epoch >= panel.diverged_at:
            notes.append(f"diverged: loss blew up at epoch {panel.diverged_at}")
        finite = values[np.isfinite(values)]
        if len(finite) < len(values):
            notes.append("prediction not finite (NaN/inf)")
        if len(finite) and finite.max() > hi:
            notes.append(f"off scale above: up to {_fmt(float(finite.max()))}")
        if len(finite) and finite.min() < lo:
            notes.append(f"off scale below: down to {_fmt(float(finite.min()))}")
        return notes

    def _paint(
        self, panels: Sequence[tuple[np.ndarray, np.ndarray, list[str], list[str]] | None]
    ) -> Image.Image:
        """The background plus, per panel, a curve (pixels and where, or None), title lines
        above the axes and notes inside them."""
        frame = self.base.copy()
        pen = ImageDraw.Draw(frame)
        for (_, box, _), painted in zip(self.mappings, panels, strict=True):
            if painted is None:
                continue
            xy, where, titles, notes = painted
            if xy is not None:
                self._curve(pen, xy, where)
            top = self.base.height - box.y1
            for i, title in enumerate(reversed(titles)):
                at = (box.x0, top - 4 - i * self.line_height)
                pen.text(at, title, fill=TEXT, font=self.font, anchor="lb")
            for i, note in enumerate(notes):
                at = (box.x0 + 4, top + 10 + i * self.line_height)
                pen.rectangle(pen.textbbox(at, note, font=self.font, anchor="lt"), fill=self.paper)
                pen.text(at, note, fill=LINE, font=self.font, anchor="lt")
        return frame

    def _state(
        self, i: int, xy, where, values, epoch: int | None, loss: float | None, prefix: str = ""
    ):
        panel = self.panels[i]
        status = f"{prefix}epoch {epoch}/{panel.epochs}  val_loss {_fmt(loss)}" if epoch else prefix
        titles = [panel.label, status] if panel.label else [status]
        notes = self._notes(i, values, epoch) if values is not None else []
        return xy, where, titles, notes

    def draw(
        self,
        curves: Sequence[np.ndarray],
        epochs: Sequence[int],
        losses: Sequence[float],
        prefix: str = "",
    ) -> Image.Image:
        """One image: each panel's curve in data coordinates at ``epochs`` with ``losses``."""
        states = []
        for i, (c, e, loss) in enumerate(zip(curves, epochs, losses, strict=True)):
            values = np.asarray(c, dtype=np.float64)
            xy, where = self._project(i, values[None, :])
            states.append(self._state(i, xy[0], where[0], values, e, loss, prefix))
        return self._paint(states)

    def frames(self, timeline: Sequence[int] | None = None) -> list[Image.Image]:
        """The animation, one image per epoch of ``timeline`` (default: every epoch that
        has a frame in some panel); each panel shows its latest frame up to that epoch."""
        if timeline is None:
            timeline = sorted({e for p in self.panels for e in p.frame_epochs})
        projected = [self._project(i, np.asarray(p.frames)) for i, p in enumerate(self.panels)]
        out = []
        for epoch in timeline:
            states = []
            for i, (panel, (xy, where)) in enumerate(zip(self.panels, projected, strict=True)):
                k = bisect_right(panel.frame_epochs, epoch) - 1
                if k < 0:
                    states.append(self._state(i, None, None, None, None, None))
                    continue
                values = np.asarray(panel.frames[k], dtype=np.float64)
                states.append(
                    self._state(
                        i, xy[k], where[k], values, panel.frame_epochs[k], panel.frame_losses[k]
                    )
                )
            out.append(self._paint(states))
        return out


def render(
    panels: Sequence[Panel],
    width: int = 640,
    height: int = 400,
    cols: int | None = None,
    timeline: Sequence[int] | None = None,
) -> list[Image.Image]:
    """All frames of the panels' animation as palette images."""
    return Canvas(panels, width, height, cols).frames(timeline)


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
