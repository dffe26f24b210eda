"""Baseline: the benchmark's jobs as bare tutorial PyTorch, no tracking at all.

``python -m experiments.baselines.bare``: the toy sweep (lr 0.01 and 1 x depth 1..4, 200
epochs, 1,000 points, Adam), the tutorial's four-step loop and nothing else.
``--marginal EPOCHS``: the 4-job sweep of the tracking-cost benchmark (lr 0.01, 0.003 x
depth 2, 4, 4,000 points) for EPOCHS epochs, with a validation loss every epoch as
learnai computes it, so the two sides do the same training work.
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

from learnai.train.data import nonlinear
from learnai.train.models import GeneralFit

TOY = [(lr, depth) for lr in (0.01, 1.0) for depth in (1, 2, 3, 4)]
MARGINAL = [(lr, depth) for lr in (0.01, 0.003) for depth in (2, 4)]


def train(lr: float, depth: int, epochs: int, n_samples: int, validate: bool) -> list[float]:
    data = nonlinear(n_samples=n_samples)
    torch.manual_seed(0)
    model = GeneralFit(1, 1, depth=depth, hidden=64)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    criterion = nn.MSELoss()
    losses = []
    for _ in range(epochs):
        model.train()
        optimizer.zero_grad()  # 1. zero the gradients
        loss = criterion(model(data.x_train), data.y_train)  # 2-3. forward, loss
        loss.backward()  # 4. backward
        optimizer.step()  # 5. step
        losses.append(loss.item())
        if validate:
            model.eval()
            with torch.no_grad():
                losses.append(criterion(model(data.x_val), data.y_val).item())
    return losses


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--marginal", type=int, metavar="EPOCHS")
    args = parser.parse_args()
    if args.marginal:
        for lr, depth in MARGINAL:
            train(lr, depth, args.marginal, 4000, validate=True)
    else:
        for lr, depth in TOY:
            train(lr, depth, 200, 1000, validate=False)
