"""The tutorial's synthetic data sets, generated reproducibly from a seed.

Each generator returns a :class:`Dataset` of float32 tensors shaped
``[samples, features]`` plus what the plots need: the raw 1-D inputs and the noise-free
function. The first feature is always the raw ``x``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

PLOT_POINTS = 200


@dataclass
class Dataset:
    name: str
    feature_names: list[str]
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    grid: np.ndarray  # raw x values where predictions are drawn
    grid_features: torch.Tensor
    true_fn: Callable[[np.ndarray], np.ndarray]

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]

    def to(self, device: torch.device) -> Dataset:
        """Move every tensor to ``device`` once, so training never copies per epoch."""
        move = {
            k: getattr(self, k).to(device)
            for k in ("x_train", "y_train", "x_val", "y_val", "grid_features")
        }
        return Dataset(self.name, self.feature_names, grid=self.grid, true_fn=self.true_fn, **move)


def _build(
    name: str,
    x: np.ndarray,
    noise: np.ndarray,
    true_fn: Callable[[np.ndarray], np.ndarray],
    features: Callable[[np.ndarray], np.ndarray],
    feature_names: list[str],
    val_fraction: float,
    rng: np.random.Generator,
) -> Dataset:
    y = true_fn(x) + noise
    order = rng.permutation(len(x))
    n_val = int(round(len(x) * val_fraction))
    val, train = order[:n_val], order[n_val:]

    def tensor(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))

    feats = features(x)
    grid = np.linspace(x.min(), x.max(), PLOT_POINTS)
    return Dataset(
        name=name,
        feature_names=feature_names,
        x_train=tensor(feats[train]),
        y_train=tensor(y[train, None]),
        x_val=tensor(feats[val]),
        y_val=tensor(y[val, None]),
        grid=grid,
        grid_features=tensor(features(grid)),
        true_fn=true_fn,
    )


def _line(x: np.ndarray) -> np.ndarray:
    return 2.0 * x + 1.0


def _parabola(x: np.ndarray) -> np.ndarray:
    return 3.0 * x**2 + 2.0 * x + 1.0


def _wave(x: np.ndarray) -> np.ndarray:
    return 2.0 * np.sin(1.5 * x) + 0.5 * x


def linear(
    n_samples: int = 10_000, noise: float = 0.2, seed: int = 0, val_fraction: float = 0.2
) -> Dataset:
    """Part 1: ``y = 2x + 1 + noise``, the noise's spread growing with ``x`` (x in [0, 1])."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 1.0, n_samples)
    eps = rng.normal(0.0, 1.0, n_samples) * noise * x
    return _build("linear", x, eps, _line, lambda v: v[:, None], ["x"], val_fraction, rng)


def polynomial(
    n_samples: int = 1_000, noise: float = 0.5, seed: int = 0, val_fraction: float = 0.2
) -> Dataset:
    """Part 2: ``y = 3x^2 + 2x + 1 + noise``, with features ``x`` and ``x^2`` (x in [-2, 2])."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2.0, 2.0, n_samples)
    eps = rng.normal(0.0, noise, n_samples)
    return _build(
        "polynomial",
        x,
        eps,
        _parabola,
        lambda v: np.stack([v, v**2], axis=1),
        ["x", "x^2"],
        val_fraction,
        rng,
    )


def nonlinear(
    n_samples: int = 1_000, noise: float = 0.2, seed: int = 0, val_fraction: float = 0.2
) -> Dataset:
    """Part 3: a scaled sine plus a slope, ``y = 2 sin(1.5x) + 0.5x + noise`` (x in [-3, 3])."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3.0, 3.0, n_samples)
    eps = rng.normal(0.0, noise, n_samples)
    return _build("nonlinear", x, eps, _wave, lambda v: v[:, None], ["x"], val_fraction, rng)
