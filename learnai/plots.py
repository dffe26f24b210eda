"""Static figures: a run's loss curve and a sweep's comparison of loss curves."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from learnai.animation import pyplot

OUTCOME_COLORS = {
    "converged": "#2ca02c",
    "stalled": "#ff7f0e",
    "diverged": "#d62728",
    "pruned": "#7f7f7f",
    "failed": "#9467bd",
}


def _save(fig, path: Path) -> None:
    """Fixed margins instead of tight_layout (~100 ms a figure), then write the PNG."""
    fig.subplots_adjust(left=0.11, right=0.97, bottom=0.12, top=0.91)
    fig.savefig(path)


def _finite_positive(values: Sequence[float]) -> list[float]:
    """Log axes cannot show NaN, inf or <= 0: mark those points as gaps."""
    return [v if v == v and 0 < v < float("inf") else float("nan") for v in values]


def loss_curve(train: Sequence[float], val: Sequence[float], path: Path, title: str) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    epochs = range(1, len(train) + 1)
    ax.plot(epochs, _finite_positive(train), label="train_loss")
    ax.plot(epochs, _finite_positive(val), label="val_loss")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE")
    ax.set_title(title)
    ax.legend()
    _save(fig, path)
    plt.close(fig)


def compare_losses(
    curves: Sequence[tuple[str, Sequence[float], str]], path: Path, title: str
) -> None:
    """All runs' validation losses on one log axis, coloured by outcome."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.2, 4.5), dpi=100)
    seen: set[str] = set()
    for label, values, outcome in curves:
        color = OUTCOME_COLORS.get(outcome, "#1f77b4")
        legend = outcome if outcome not in seen else None
        seen.add(outcome)
        ax.plot(
            range(1, len(values) + 1),
            _finite_positive(values),
            color=color,
            alpha=0.8,
            label=legend,
        )
        if values:
            ax.annotate(label, (len(values), _finite_positive(values)[-1]), fontsize=6, color=color)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("val_loss (MSE)")
    ax.set_title(title)
    if seen:
        ax.legend(title="outcome")
    _save(fig, path)
    plt.close(fig)
