"""Static figures: a run's loss curve and a sweep's comparison of loss curves.

Both are built by a function that returns the figure (tests read what is drawn from
it) and written by a thin wrapper. Epochs run 1..N, as in the metrics' steps. A failure
must show without reading numbers: the epoch a loss blew up is marked and labelled,
losses a log axis cannot show (NaN, inf) are drawn as markers on the top edge, and a
run of a single epoch still shows as a point.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from learnai.pictures.animation import pyplot

OUTCOME_COLORS = {  # the Optuna stability map colours trials by outcome
    "converged": "#2ca02c",
    "stalled": "#ff7f0e",
    "diverged": "#d62728",
    "pruned": "#7f7f7f",
    "failed": "#9467bd",
}
OUTCOME_STYLES = {  # line style per outcome; colour tells the runs apart
    "converged": "-",
    "stalled": "--",
    "diverged": "-",
    "pruned": ":",
    "failed": "-.",
}
BLOWUP = "#d62728"  # the colour of everything that says "this failed"
MARKERS_BELOW = 30  # series this short get a marker on every point


@dataclass
class RunCurve:
    """One run in a sweep's comparison."""

    label: str
    values: Sequence[float]  # val_loss per epoch, epoch 1 first
    outcome: str
    diverged_at: int | None = None  # epoch whose loss blew up, if known


def _finite_positive(values: Sequence[float]) -> list[float]:
    """Log axes cannot show NaN, inf or <= 0: mark those points as gaps."""
    return [v if v == v and 0 < v < float("inf") else float("nan") for v in values]


def _mark_unplottable(ax, values: Sequence[float], color: str) -> None:
    """NaN/inf losses as triangles on the top edge, so a gap is never silent."""
    bad = [i + 1 for i, v in enumerate(values) if not (math.isfinite(v) and v > 0)]
    if bad:
        ax.plot(
            bad,
            [1.0] * len(bad),
            linestyle="none",
            marker="^",
            color=color,
            transform=ax.get_xaxis_transform(),
            clip_on=False,
            label="loss NaN/inf (off the axis)",
        )


def _style(n: int) -> dict:
    return {"marker": "o", "markersize": 3} if n <= MARKERS_BELOW else {}


def loss_figure(
    train: Sequence[float],
    val: Sequence[float],
    title: str,
    diverged_at: int | None = None,
    limit: float | None = None,
):
    """A run's train and validation loss per epoch on a log axis; a blow-up is marked."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    epochs = range(1, len(train) + 1)
    ax.plot(epochs, _finite_positive(train), label="train_loss", **_style(len(train)))
    ax.plot(epochs, _finite_positive(val), label="val_loss", **_style(len(val)))
    _mark_unplottable(ax, val, BLOWUP)
    if limit is not None and diverged_at is not None and math.isfinite(limit):
        ax.axhline(limit, color=BLOWUP, lw=0.8, ls="--", label="divergence limit")
    if diverged_at is not None:
        worst = max(train[diverged_at - 1], val[diverged_at - 1])
        ax.axvline(diverged_at, color=BLOWUP, lw=1, ls=":")
        if math.isfinite(worst) and worst > 0:
            ax.plot([diverged_at], [worst], "X", color=BLOWUP, markersize=11, mec="black")
        shown = math.isfinite(worst) and worst > 0
        ax.annotate(
            f"blew up at epoch {diverged_at}\nloss {worst:.3g}",
            xy=(diverged_at, worst) if shown else (diverged_at, 1.0),
            xycoords="data" if shown else ("data", "axes fraction"),
            xytext=(0.5, 0.93),
            textcoords="axes fraction",
            ha="center",
            va="top",
            color=BLOWUP,
            fontsize=10,
            fontweight="bold",
            bbox={"boxstyle": "round", "fc": "white", "ec": BLOWUP},
            arrowprops={"arrowstyle": "->", "color": BLOWUP},
        )
        title = f"{title}: DIVERGED"
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE")
    ax.set_title(title, color=BLOWUP if diverged_at is not None else "black")
    ax.legend(loc="lower left" if diverged_at is not None else "best", fontsize=8)
    fig.subplots_adjust(left=0.11, right=0.97, bottom=0.12, top=0.91)
    return fig


def loss_curve(
    train: Sequence[float],
    val: Sequence[float],
    path: Path,
    title: str,
    diverged_at: int | None = None,
    limit: float | None = None,
) -> None:
    plt = pyplot()
    fig = loss_figure(train, val, title, diverged_at, limit)
    fig.savefig(path)
    plt.close(fig)


def run_colors(n: int) -> list:
    """``n`` colours that tell runs apart: tab10, tab20, then an evenly sampled map."""
    import matplotlib

    if n <= 10:
        return list(matplotlib.colormaps["tab10"].colors[:n])
    if n <= 20:
        cmap = matplotlib.colormaps["tab20"].colors
        return [cmap[(2 * i) % 20 + (2 * i) // 20] for i in range(n)]  # dark shades first
    cmap = matplotlib.colormaps["turbo"]
    return [cmap(0.05 + 0.9 * i / (n - 1)) for i in range(n)]


def comparison_figure(curves: Sequence[RunCurve], title: str):
    """All runs' validation losses on one log axis: one colour per run, its label and
    outcome in a legend beside the axes, each blow-up marked with a red-edged X."""
    plt = pyplot()
    ncol = 1 if len(curves) <= 16 else 2
    height = max(4.5, 1.2 + 0.22 * math.ceil(len(curves) / ncol))
    fig, ax = plt.subplots(figsize=(10.0 if ncol == 1 else 12.0, height), dpi=100)
    fig.set_layout_engine("constrained")  # the legend beside the axes always fits
    blew_up = False
    for curve, color in zip(curves, run_colors(len(curves)), strict=True):
        values = list(curve.values)
        label = f"{curve.label}  [{curve.outcome}]"
        kwargs = {"color": color, "ls": OUTCOME_STYLES.get(curve.outcome, "-"), "lw": 1.6}
        ax.plot(range(1, len(values) + 1), _finite_positive(values), label=label, **kwargs)
        finite = [(i + 1, v) for i, v in enumerate(_finite_positive(values)) if v == v]
        if finite:  # a run's last point, so even a one-epoch run is visible
            ax.plot(*finite[-1], "o", color=color, markersize=4)
        at = curve.diverged_at
        if curve.outcome == "diverged" and at is None and finite:
            at = max(finite, key=lambda p: p[1])[0]
        if curve.outcome == "diverged" and at is not None and 0 < at <= len(values):
            v = values[at - 1]
            y = v if math.isfinite(v) and v > 0 else None
            if y is not None:
                ax.plot([at], [y], "X", color=color, mec=BLOWUP, mew=1.5, markersize=11)
                blew_up = True
        _mark_unplottable(ax, values, color)
    if blew_up:
        ax.plot(
            [], [], "X", color="white", mec=BLOWUP, mew=1.5, markersize=11, label="loss blew up"
        )
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("val_loss (MSE)")
    ax.set_title(title)
    handles, labels = ax.get_legend_handles_labels()
    keep = {}  # NaN/inf markers repeat per run: one legend entry says it
    for h, lab in zip(handles, labels, strict=True):
        keep.setdefault(lab, h)
    legend = fig.legend(
        keep.values(),
        keep.keys(),
        loc="outside right upper",
        fontsize=8,
        ncol=ncol,
        title="run  [outcome]",
        title_fontsize=8,
    )
    for text in legend.get_texts():  # the failures read red before anyone reads them
        if text.get_text().endswith("[diverged]") or text.get_text() == "loss blew up":
            text.set_color(BLOWUP)
    return fig


def compare_losses(curves: Sequence[RunCurve], path: Path, title: str) -> None:
    plt = pyplot()
    fig = comparison_figure(curves, title)
    fig.savefig(path)
    plt.close(fig)
