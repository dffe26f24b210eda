"""The training loop: the tutorial's steps, with losses kept on the device.

Nothing in the loop reads a tensor back to the host. Every ``sync_every`` epochs the
buffered losses come back in one transfer; then divergence is checked and the callbacks
(metric logging, progress, pruning) see the new epochs. A callback stops training by
setting ``state.stop``.

Training stops between chunks, so the model has always run every epoch of the last
chunk: the history keeps all of them, and whatever is computed from the model after
:meth:`Trainer.fit` describes the state after the history's last epoch. A diverged run
may keep training ``after_divergence`` more epochs (with a frame each), so its animation
shows the blow-up happening instead of a single frame.

Epochs are counted 1..N everywhere users see them: epoch ``e`` is the state after ``e``
optimizer steps. ``val_loss[e - 1]`` and the frame of epoch ``e`` describe that state;
``train_loss[e - 1]`` is the tutorial's loss of epoch ``e``, measured in its forward
pass, before its step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
from torch import nn

from learnai.train.data import Dataset


@dataclass
class TrainState:
    """What callbacks see: the per-epoch losses so far, read back in chunks."""

    epochs: int
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    new_from: int = 0  # index of the first epoch added by the latest chunk
    stop: str | None = None  # "diverged", "pruned", ... ends training after this chunk
    diverged_at: int | None = None  # epoch (1-based) whose loss first blew up


class Callback(Protocol):
    def on_chunk(self, state: TrainState) -> None: ...


@dataclass
class History:
    train_loss: list[float]
    val_loss: list[float]
    frame_epochs: list[int]  # epoch (1-based) of each animation frame
    frames: np.ndarray  # [n_frames, grid points] float32 predictions
    stop: str | None
    diverged_at: int | None = None  # epoch (1-based) whose loss first blew up

    @property
    def epochs_run(self) -> int:
        return len(self.train_loss)


def frame_epochs(epochs: int, frames: int) -> list[int]:
    """Epochs (1-based) that get an animation frame: every one, or ``frames`` spread evenly."""
    if epochs <= frames:
        return list(range(1, epochs + 1))
    return sorted({int(round(e)) for e in np.linspace(1, epochs, frames)})


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
        after_divergence: int = 0,
    ) -> None:
        self.epochs = epochs
        self.sync_every = sync_every
        self.diverge_factor = diverge_factor
        self.frame_at = frame_epochs(epochs, frames) if animate else []
        self.animate = animate
        self.after_divergence = after_divergence
        self.callbacks = list(callbacks)

    def fit(self, model: nn.Module, optimizer: torch.optim.Optimizer, data: Dataset) -> History:
        device = data.x_train.device
        criterion = nn.MSELoss()
        state = TrainState(self.epochs)
        frame_at = set(self.frame_at)
        # After a divergence every epoch gets a frame: room for those and one chunk more.
        room = len(self.frame_at) + (self.after_divergence + self.sync_every) * self.animate
        snapshots = torch.empty(room, len(data.grid), device=device)
        shot_epochs: list[int] = []
        chunk = torch.empty(2, self.sync_every, device=device)  # rows: train, val
        filled = 0

        for epoch in range(1, self.epochs + 1):
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
                blown = state.diverged_at is not None and self.animate
                if (epoch in frame_at or blown) and len(shot_epochs) < room:
                    snapshots[len(shot_epochs)] = model(data.grid_features).squeeze(1)
                    shot_epochs.append(epoch)
            filled += 1

            if filled == self.sync_every or epoch == self.last_epoch(state) or overflow:
                self.take_chunk(state, chunk[:, :filled].tolist())
                filled = 0
                if state.stop:
                    break

        stop = "diverged" if state.diverged_at is not None else state.stop
        return History(
            train_loss=state.train_loss,
            val_loss=state.val_loss,
            frame_epochs=shot_epochs,
            frames=snapshots[: len(shot_epochs)].float().cpu().numpy(),
            stop=stop,
            diverged_at=state.diverged_at,
        )

    def last_epoch(self, state: TrainState) -> int:
        """The epoch training ends at: the last, or ``after_divergence`` past a blow-up."""
        if state.diverged_at is None:
            return self.epochs
        return min(self.epochs, state.diverged_at + self.after_divergence)

    def take_chunk(self, state: TrainState, chunk: list[list[float]]) -> None:
        """Add a chunk of read-back losses (rows: train, val) to ``state``: check them for
        divergence, then let the callbacks see them. Public for loops that train many
        models at once (:mod:`learnai.train.stacked`): each member's losses follow the
        rules a single run's do."""
        train, val = chunk
        state.new_from = len(state.train_loss)
        if state.diverged_at is None:
            first = state.train_loss[0] if state.train_loss else train[0]
            # A validation loss can blow up before the training loss does: check both.
            bad = [find_divergence(s, first, self.diverge_factor) for s in (train, val)]
            bad = [b for b in bad if b is not None]
            if bad:
                state.diverged_at = state.new_from + min(bad) + 1
                if self.after_divergence == 0:
                    state.stop = "diverged"
        state.train_loss.extend(train)
        state.val_loss.extend(val)
        if state.diverged_at is not None and (
            len(state.train_loss) >= self.last_epoch(state)
            or not all(map(math.isfinite, train + val))  # NaN weights stay NaN
        ):
            state.stop = "diverged"
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


@dataclass
class Evaluation:
    """The trained model's state, measured once: every final number and picture uses it."""

    train_loss: float
    val_loss: float
    val_r2: float
    val_prediction: np.ndarray  # [n_val] the model on data.x_val
    grid_prediction: np.ndarray  # [grid points] the model on data.grid_features


def evaluate(model: nn.Module, data: Dataset) -> Evaluation:
    """MSE on both splits, R^2 and predictions of the model as it is now (eval mode)."""
    criterion = nn.MSELoss()
    model.eval()
    with torch.no_grad():
        val_prediction = model(data.x_val)
        return Evaluation(
            train_loss=float(criterion(model(data.x_train), data.y_train)),
            val_loss=float(criterion(val_prediction, data.y_val)),
            val_r2=r2_score(val_prediction, data.y_val),
            val_prediction=val_prediction.squeeze(1).float().cpu().numpy(),
            grid_prediction=model(data.grid_features).squeeze(1).float().cpu().numpy(),
        )


def r2_score(prediction: torch.Tensor, target: torch.Tensor) -> float:
    """Coefficient of determination; NaN when the prediction is not finite."""
    residual = torch.sum((target - prediction) ** 2)
    total = torch.sum((target - target.mean()) ** 2)
    return float(1.0 - residual / total)
