"""The training loop: the tutorial's steps, with losses kept on the device.

Nothing in the loop reads a tensor back to the host. Every ``sync_every`` epochs the
buffered losses come back in one transfer; then divergence is checked and the callbacks
(metric logging, progress, pruning) see the new epochs. A callback stops training by
setting ``state.stop``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
from torch import nn

from learnai.data import Dataset


@dataclass
class TrainState:
    """What callbacks see: the per-epoch losses so far, read back in chunks."""

    epochs: int
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    new_from: int = 0  # index of the first epoch added by the latest chunk
    stop: str | None = None  # "diverged", "pruned", ... ends training after this chunk


class Callback(Protocol):
    def on_chunk(self, state: TrainState) -> None: ...


@dataclass
class History:
    train_loss: list[float]
    val_loss: list[float]
    frame_epochs: list[int]  # epoch (0-based) of each animation frame
    frames: np.ndarray  # [n_frames, grid points] float32 predictions
    stop: str | None


def frame_epochs(epochs: int, frames: int) -> list[int]:
    """Epochs that get an animation frame: every epoch, or ``frames`` spread evenly."""
    if epochs <= frames:
        return list(range(epochs))
    return sorted({int(round(e)) for e in np.linspace(0, epochs - 1, frames)})


def find_divergence(losses: Sequence[float], first: float, factor: float) -> int | None:
    """Index of the first loss that is non-finite or above ``factor`` x the first loss."""
    limit = factor * max(first, 1e-12) if math.isfinite(first) else -math.inf
    for i, value in enumerate(losses):
        if not math.isfinite(value) or value > limit:
            return i
    return None


class Trainer:
    """Full-batch training as in the tutorial; see the module docstring for the rhythm."""

    def __init__(
        self,
        epochs: int,
        sync_every: int = 10,
        diverge_factor: float = 1000.0,
        frames: int = 100,
        animate: bool = True,
        callbacks: Sequence[Callback] = (),
    ) -> None:
        self.epochs = epochs
        self.sync_every = sync_every
        self.diverge_factor = diverge_factor
        self.frame_at = frame_epochs(epochs, frames) if animate else []
        self.callbacks = list(callbacks)

    def fit(self, model: nn.Module, optimizer: torch.optim.Optimizer, data: Dataset) -> History:
        device = data.x_train.device
        criterion = nn.MSELoss()
        state = TrainState(self.epochs)
        frame_index = {e: i for i, e in enumerate(self.frame_at)}
        snapshots = torch.empty(len(self.frame_at), len(data.grid), device=device)
        chunk = torch.empty(2, self.sync_every, device=device)  # rows: train, val
        filled = 0

        for epoch in range(self.epochs):
            model.train()
            optimizer.zero_grad(set_to_none=True)  # 1. zero the gradients
            prediction = model(data.x_train)  # 2. forward pass
            loss = criterion(prediction, data.y_train)  # 3. loss (the criterion)
            loss.backward()  # 4. backward pass
            overflow = _step(optimizer)  # 5. optimizer step
            if overflow:  # the update itself is beyond float32: record the loss as inf
                loss = torch.full_like(loss, math.inf)

            model.eval()  # record: validation loss and a frame, still on the device
            with torch.no_grad():
                chunk[0, filled] = loss.detach()
                chunk[1, filled] = criterion(model(data.x_val), data.y_val)
                if epoch in frame_index:
                    snapshots[frame_index[epoch]] = model(data.grid_features).squeeze(1)
            filled += 1

            if filled == self.sync_every or epoch == self.epochs - 1 or overflow:
                self._sync(state, chunk[:, :filled].tolist())
                filled = 0
                if state.stop:
                    break

        done = len(state.train_loss)
        kept = [i for i, e in enumerate(self.frame_at) if e < done]
        return History(
            train_loss=state.train_loss,
            val_loss=state.val_loss,
            frame_epochs=[self.frame_at[i] for i in kept],
            frames=snapshots[: len(kept)].float().cpu().numpy(),
            stop=state.stop,
        )

    def _sync(self, state: TrainState, chunk: list[list[float]]) -> None:
        train, val = chunk
        state.new_from = len(state.train_loss)
        first = state.train_loss[0] if state.train_loss else train[0]
        # A validation loss can blow up before the training loss does: check both.
        bad = [find_divergence(series, first, self.diverge_factor) for series in (train, val)]
        bad = [b for b in bad if b is not None]
        if bad:
            cut = min(bad) + 1  # keep the epoch that diverged, drop the rest
            train, val = train[:cut], val[:cut]
            state.stop = "diverged"
        state.train_loss.extend(train)
        state.val_loss.extend(val)
        for callback in self.callbacks:
            callback.on_chunk(state)


def _step(optimizer: torch.optim.Optimizer) -> bool:
    """``optimizer.step()``; True when the step overflowed float32 (e.g. ``lr=1e38``).

    Torch refuses a scalar (lr times the update) that does not fit the parameters'
    dtype; for training that is divergence, not a crash.
    """
    try:
        optimizer.step()
    except RuntimeError as exc:
        if "without overflow" not in str(exc):
            raise
        return True
    return False


def r2_score(prediction: torch.Tensor, target: torch.Tensor) -> float:
    """Coefficient of determination; NaN when the prediction is not finite."""
    residual = torch.sum((target - prediction) ** 2)
    total = torch.sum((target - target.mean()) ** 2)
    return float(1.0 - residual / total)
