"""The files every run leaves in MLflow: config, loss curve, fit plot, animation, data."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from learnai.animation import MAX_SCATTER, Canvas, Panel, save_gif
from learnai.plots import loss_curve

if TYPE_CHECKING:  # torch stays out of processes that only read artifacts (sweep reports)
    from learnai.data import Dataset
    from learnai.loop import Evaluation, History

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


def write_run_artifacts(
    out: Path,
    config_yaml: str,
    history: History,
    data: Dataset,
    final: Evaluation,
    epochs: int,
    fps: int,
    size: tuple[int, int],
    label: str = "",
    diverge_factor: float | None = None,
) -> None:
    """Write every file of a run; the final pictures and numbers all show ``final``, the
    model after the history's last epoch."""
    (out / CONFIG).write_text(config_yaml)
    epochs_run = history.epochs_run
    limit = diverge_factor * history.train_loss[0] if diverge_factor and epochs_run else None
    loss_curve(
        history.train_loss,
        history.val_loss,
        out / LOSS_CURVE,
        f"{data.name}: loss per epoch",
        diverged_at=history.diverged_at,
        limit=limit,
    )

    x = data.x_train[:, 0].cpu().numpy()
    y = data.y_train[:, 0].cpu().numpy()
    if len(x) > MAX_SCATTER:
        pick = np.random.default_rng(0).choice(len(x), MAX_SCATTER, replace=False)
        x, y = x[pick], y[pick]
    truth = data.true_fn(data.grid)
    panel = Panel(
        x,
        y,
        data.grid,
        truth,
        history.frames,
        history.frame_epochs,
        [history.val_loss[e - 1] for e in history.frame_epochs],
        epochs,
        label=label,
        diverged_at=history.diverged_at,
    )
    canvas = Canvas([panel], *size)  # one background for the fit plot and the animation
    fit = canvas.draw([final.grid_prediction], [epochs_run], [final.val_loss], "final fit  ")
    fit.convert("RGB").save(out / FIT)

    if len(history.frame_epochs):
        save_gif(canvas.frames(), out / ANIMATION, fps)
    np.savez_compressed(
        out / PREDICTIONS,
        x=x.astype(np.float16),
        y=y.astype(np.float16),
        grid=data.grid,
        truth=truth,
        frames=history.frames.astype(np.float32),  # float16 would turn a blow-up into inf
        frame_epochs=np.asarray(history.frame_epochs, dtype=np.int64),
        frame_losses=np.asarray(panel.frame_losses, dtype=np.float64),
        epochs=np.asarray(epochs),
        diverged_at=np.asarray(history.diverged_at or 0),
        # the final state, as recorded in the run's final metrics (checkable from here)
        final=final.grid_prediction,
        final_epoch=np.asarray(epochs_run),
        final_val_loss=np.asarray(final.val_loss),
        x_val=data.x_val[:, 0].cpu().numpy(),
        y_val=data.y_val[:, 0].cpu().numpy(),
        val_prediction=final.val_prediction,
    )
