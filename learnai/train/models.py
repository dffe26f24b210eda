"""The tutorial's models, kept as small ``nn.Module`` classes so they can grow."""

from __future__ import annotations

import torch
from torch import nn


class LinearRegression(nn.Module):
    """``y = x W^T + b``: one ``nn.Linear``; with features ``[x, x^2]`` it fits a parabola."""

    def __init__(self, n_in: int = 1, n_out: int = 1) -> None:
        super().__init__()
        self.linear = nn.Linear(n_in, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)

    def coefficients(self) -> dict[str, float]:
        """Learned weights in feature order and the bias, as MLflow metric names."""
        w = self.linear.weight.detach().cpu().flatten().tolist()
        b = self.linear.bias.detach().cpu().flatten().tolist()
        out = {f"weight.{i}": v for i, v in enumerate(w)}
        out["bias"] = b[0] if len(b) == 1 else b
        return out


class GeneralFit(nn.Module):
    """A ReLU regressor: ``depth`` hidden layers of ``hidden`` units, then a linear head.

    ``depth=2`` is the tutorial's network (three linear layers, ReLU after the first two);
    ``depth=0`` degenerates to a linear model.
    """

    def __init__(self, n_in: int = 1, n_out: int = 1, depth: int = 2, hidden: int = 64) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = n_in
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        layers.append(nn.Linear(width, n_out))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
