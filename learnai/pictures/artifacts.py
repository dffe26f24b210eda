"""The files every run leaves in MLflow: config, loss curve, fit plot, animation, data."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from learnai.pictures.animation import MAX_SCATTER, Canvas, Panel, save_gif
from learnai.pictures.plots import loss_curve

CONFIG = "config.yaml"
LOSS_CURVE = "loss_curve.png"
FIT = "fit.png"
ANIMATION = "training.gif"
PREDICTIONS = "predictions.npz"  # frames for sweep-level animations


def panel_from_npz(path: Path, label: str = "") -> Panel:
    """Rebuild a run's animation panel from its ``predictions.npz`` artifact; a run
    recorded without animation frames gets its final prediction as its one frame."""
    z = np.load(path)
    frames, frame_epochs = z["frames"].astype(np.float32), z["frame_epochs"].tolist()
    losses = z["frame_losses"].tolist()
    if not frame_epochs:
        frames, frame_epochs = z["final"][None, :].astype(np.float32), [int(z["final_epoch"])]
        losses = [float(z["final_val_loss"])]
    diverged_at = int(z["diverged_at"]) if "diverged_at" in z else 0  # older runs: unknown
    return Panel(
        x=z["x"].astype(np.float32),
        y=z["y"].astype(np.float32),
        grid=z["grid"],
        truth=z["truth"],
        frames=frames,
        frame_epochs=frame_epochs,
        frame_losses=losses,
        epochs=int(z["epochs"]),
        label=label,
        diverged_at=diverged_at if diverged_at > 0 else None,
    )


@dataclass
class RunFiles:
    """What a run's files are drawn from, as plain arrays and numbers.

    It holds no tensors and no model: drawing needs no torch. The final pictures and
    numbers all show one model state, the one after the history's last epoch
    (``final_*``).
    """

    config_yaml: str
    data_name: str
    train_loss: list[float]
    val_loss: list[float]
    frame_epochs: list[int]
    frames: np.ndarray  # [n_frames, grid points]
    diverged_at: int | None
    x: np.ndarray  # the training points drawn (at most MAX_SCATTER)
    y: np.ndarray
    grid: np.ndarray
    truth: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    final_grid_prediction: np.ndarray
    final_val_prediction: np.ndarray
    final_val_loss: float
    epochs: int
    fps: int
    size: tuple[int, int]
    label: str = ""
    diverge_factor: float | None = None

    @classmethod
    def of(
        cls,
        config_yaml: str,
        history: Any,
        data: Any,
        final: Any,
        epochs: int,
        fps: int,
        size: tuple[int, int],
        label: str = "",
        diverge_factor: float | None = None,
    ) -> RunFiles:
        """From a run's training ``history`` (learnai.train.loop.History), its ``data``
        (learnai.train.data.Dataset) and ``final`` evaluation (loop.Evaluation): typed
        loosely so that pictures never import the training package."""
        x = data.x_train[:, 0].cpu().numpy()
        y = data.y_train[:, 0].cpu().numpy()
        if len(x) > MAX_SCATTER:
            pick = np.random.default_rng(0).choice(len(x), MAX_SCATTER, replace=False)
            x, y = x[pick], y[pick]
        return cls(
            config_yaml=config_yaml,
            data_name=data.name,
            train_loss=list(history.train_loss),
            val_loss=list(history.val_loss),
            frame_epochs=list(history.frame_epochs),
            frames=history.frames,
            diverged_at=history.diverged_at,
            x=x,
            y=y,
            grid=data.grid,
            truth=data.true_fn(data.grid),
            x_val=data.x_val[:, 0].cpu().numpy(),
            y_val=data.y_val[:, 0].cpu().numpy(),
            final_grid_prediction=final.grid_prediction,
            final_val_prediction=final.val_prediction,
            final_val_loss=final.val_loss,
            epochs=epochs,
            fps=fps,
            size=size,
            label=label,
            diverge_factor=diverge_factor,
        )

    def write(self, out: Path) -> None:
        """Write every file of the run into ``out``."""
        (out / CONFIG).write_text(self.config_yaml)
        epochs_run = len(self.train_loss)
        limit = None
        if self.diverge_factor and epochs_run:
            limit = self.diverge_factor * self.train_loss[0]
        loss_curve(
            self.train_loss,
            self.val_loss,
            out / LOSS_CURVE,
            f"{self.data_name}: loss per epoch",
            diverged_at=self.diverged_at,
            limit=limit,
        )
        panel = Panel(
            self.x,
            self.y,
            self.grid,
            self.truth,
            self.frames,
            self.frame_epochs,
            [self.val_loss[e - 1] for e in self.frame_epochs],
            self.epochs,
            label=self.label,
            diverged_at=self.diverged_at,
        )
        canvas = Canvas([panel], *self.size)  # one background for the fit plot and the GIF
        fit = canvas.draw(
            [self.final_grid_prediction], [epochs_run], [self.final_val_loss], "final fit  "
        )
        fit.convert("RGB").save(out / FIT)

        if len(self.frame_epochs):
            save_gif(canvas.frames(), out / ANIMATION, self.fps)
        np.savez_compressed(
            out / PREDICTIONS,
            x=self.x.astype(np.float16),
            y=self.y.astype(np.float16),
            grid=self.grid,
            truth=self.truth,
            frames=self.frames.astype(np.float32),  # float16 would turn a blow-up into inf
            frame_epochs=np.asarray(self.frame_epochs, dtype=np.int64),
            frame_losses=np.asarray(panel.frame_losses, dtype=np.float64),
            epochs=np.asarray(self.epochs),
            diverged_at=np.asarray(self.diverged_at or 0),
            # the final state, as recorded in the run's final metrics (checkable from here)
            final=self.final_grid_prediction,
            final_epoch=np.asarray(epochs_run),
            final_val_loss=np.asarray(self.final_val_loss),
            x_val=self.x_val,
            y_val=self.y_val,
            val_prediction=self.final_val_prediction,
        )
