"""The files every run leaves in MLflow: config, loss curve, fit plot, animation, data."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from learnai.animation import MAX_SCATTER, Canvas, Panel, save_gif
from learnai.plots import loss_curve

if TYPE_CHECKING:  # torch stays out of processes that only read artifacts (sweep reports)
    from learnai.data import Dataset
    from learnai.train import History

CONFIG = "config.yaml"
LOSS_CURVE = "loss_curve.png"
FIT = "fit.png"
ANIMATION = "training.gif"
PREDICTIONS = "predictions.npz"  # frames for sweep-level animations


def panel_from_npz(path: Path, label: str = "") -> Panel:
    """Rebuild a run's animation panel from its ``predictions.npz`` artifact."""
    z = np.load(path)
    return Panel(
        x=z["x"].astype(np.float32),
        y=z["y"].astype(np.float32),
        grid=z["grid"],
        truth=z["truth"],
        frames=z["frames"].astype(np.float32),
        frame_epochs=z["frame_epochs"].tolist(),
        frame_losses=z["frame_losses"].tolist(),
        epochs=int(z["epochs"]),
        label=label,
    )


def write_run_artifacts(
    out: Path,
    config_yaml: str,
    history: History,
    data: Dataset,
    final_prediction: np.ndarray,
    epochs: int,
    fps: int,
    size: tuple[int, int],
    label: str = "",
) -> None:
    (out / CONFIG).write_text(config_yaml)
    loss_curve(
        history.train_loss, history.val_loss, out / LOSS_CURVE, f"{data.name}: loss per epoch"
    )

    x = data.x_train[:, 0].cpu().numpy()
    y = data.y_train[:, 0].cpu().numpy()
    if len(x) > MAX_SCATTER:
        pick = np.random.default_rng(0).choice(len(x), MAX_SCATTER, replace=False)
        x, y = x[pick], y[pick]
    truth = data.true_fn(data.grid)
    epochs_run = len(history.train_loss)
    frames = history.frames if len(history.frame_epochs) else final_prediction[None, :]
    panel = Panel(
        x,
        y,
        data.grid,
        truth,
        frames,
        history.frame_epochs,
        [history.train_loss[e] for e in history.frame_epochs],
        epochs,
        label=label,
    )
    canvas = Canvas([panel], *size)  # one background for the fit plot and the animation
    fit_title = (
        f"{label or 'final fit'}  epoch {epochs_run}/{epochs}  val_loss {history.val_loss[-1]:.4g}"
    )
    canvas.draw([final_prediction], [fit_title]).convert("RGB").save(out / FIT)

    if len(history.frame_epochs):
        losses = panel.frame_losses
        save_gif(canvas.frames(), out / ANIMATION, fps)
        np.savez_compressed(
            out / PREDICTIONS,
            x=x.astype(np.float16),
            y=y.astype(np.float16),
            grid=data.grid,
            truth=truth,
            frames=history.frames.astype(np.float16),
            frame_epochs=np.asarray(history.frame_epochs),
            frame_losses=np.asarray(losses),
            epochs=np.asarray(epochs),
        )
