"""Baseline: the benchmark's 8 trials as bare tutorial PyTorch, no tracking at all.

lr 0.01 and 1 x depth 1..4, 200 epochs, 1,000 points, Adam: the same models, data and
loop as learnai's runs, without MLflow, plots or animation. ``--single``: the one run
that ``python -m learnai`` makes with its defaults (lr 0.01, depth 2).
"""

from __future__ import annotations

import torch
from torch import nn

from learnai.data import nonlinear
from learnai.models import GeneralFit

TRIALS = [(lr, depth) for lr in (0.01, 1.0) for depth in (1, 2, 3, 4)]


def train(lr: float, depth: int, epochs: int = 200) -> list[float]:
    data = nonlinear(n_samples=1000)
    torch.manual_seed(0)
    model = GeneralFit(1, 1, depth=depth, hidden=64)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    criterion = nn.MSELoss()
    losses = []
    for _ in range(epochs):
        optimizer.zero_grad()
        loss = criterion(model(data.x_train), data.y_train)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


if __name__ == "__main__":
    import sys

    for lr, depth in [(0.01, 2)] if "--single" in sys.argv else TRIALS:
        train(lr, depth)
