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
LINE, TEXT = 254, 255  # palette slots reserved for the moving curve and the titles
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


def _background(panels: Sequence[Panel], width: int, height: int, cols: int):
    """Draw the static picture; return it and each panel's data->pixel mapping."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = math.ceil(len(panels) / cols)
    dpi = 100
    fig, axes = plt.subplots(
        rows, cols, figsize=(width / dpi, height / dpi), dpi=dpi, squeeze=False
    )
    mappings = []
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
        ax.set_title(" ")  # room for the per-frame title drawn later
        ax.legend(loc="lower right", fontsize=7, markerscale=2)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.canvas.draw()
    image = Image.frombuffer(
        "RGBA", fig.canvas.get_width_height(), fig.canvas.buffer_rgba()
    ).convert("RGB")
    for ax in list(axes.flat)[: len(panels)]:
        box = ax.get_window_extent()
        mappings.append((ax.transData.frozen(), box))
    plt.close(fig)
    return image, mappings


def _to_palette(image: Image.Image) -> Image.Image:
    """Quantize once to a fixed palette, keeping two slots for the line and the text."""
    quantized = image.quantize(colors=LINE, method=Image.Quantize.MEDIANCUT)
    palette = quantized.getpalette()[: 3 * LINE]
    palette += [0, 0, 0] * (LINE - len(palette) // 3)
    quantized.putpalette(palette + list(LINE_RGB) + list(TEXT_RGB))
    return quantized


def render(
    panels: Sequence[Panel], width: int = 640, height: int = 400, cols: int | None = None
) -> list[Image.Image]:
    """All frames as palette images; panels with fewer frames hold their last one."""
    cols = cols or min(len(panels), 4)
    background, mappings = _background(panels, width, height, cols)
    base = _to_palette(background)
    img_h = base.height
    font = ImageFont.load_default(size=max(11, height // (30 * math.ceil(len(panels) / cols))))
    n_frames = max(len(p.frame_epochs) for p in panels)
    pixels = []
    for panel, (transform, box) in zip(panels, mappings, strict=True):
        pts = np.stack(
            [np.broadcast_to(panel.grid, panel.frames.shape), panel.frames], axis=-1
        ).reshape(-1, 2)
        with np.errstate(invalid="ignore", over="ignore"):
            xy = transform.transform(np.nan_to_num(pts, nan=0.0, posinf=1e9, neginf=-1e9))
        xy[:, 0] = np.clip(xy[:, 0], box.x0, box.x1)
        xy[:, 1] = img_h - np.clip(xy[:, 1], box.y0, box.y1)
        pixels.append(xy.reshape(*panel.frames.shape, 2))

    frames = []
    for f in range(n_frames):
        frame = base.copy()
        draw = ImageDraw.Draw(frame)
        for panel, xy, (_, box) in zip(panels, pixels, mappings, strict=True):
            k = min(f, len(panel.frame_epochs) - 1)
            if k < 0:
                continue
            draw.line([tuple(p) for p in xy[k].tolist()], fill=LINE, width=2)
            title = (f"{panel.label}  " if panel.label else "") + (
                f"epoch {panel.frame_epochs[k] + 1}/{panel.epochs}  "
                f"loss {panel.frame_losses[k]:.4g}"
            )
            draw.text((box.x0, img_h - box.y1 - 4), title, fill=TEXT, font=font, anchor="lb")
        frames.append(frame)
    return frames


def save_gif(frames: Sequence[Image.Image], path: Path, fps: int = 20) -> None:
    frames[0].save(
        path,
        save_all=True,
        append_images=list(frames[1:]),
        duration=max(1, round(1000 / fps)),
        loop=0,
    )
