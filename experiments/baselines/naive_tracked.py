"""Baseline: the same 8 trials tracked the naive way.

One ``mlflow.log_metric`` call per metric per epoch, a matplotlib loss PNG, and a
``FuncAnimation`` + ``PillowWriter`` GIF of 100 frames per run, through MLflow's fluent
API, into a fresh SQLite store in the current directory.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import mlflow
import torch
from matplotlib.animation import FuncAnimation, PillowWriter
from torch import nn

from experiments.baselines.bare import TOY
from learnai.train.data import nonlinear
from learnai.train.models import GeneralFit

FRAMES = 100


def naive_gif(data, frames: list, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    x = data.x_train[:, 0].numpy()
    ax.scatter(x, data.y_train[:, 0].numpy(), s=4, alpha=0.35)
    ax.plot(data.grid, data.true_fn(data.grid), color="green")
    (line,) = ax.plot([], [], color="red", lw=2)

    def update(i):
        line.set_data(data.grid, frames[i])
        ax.set_title(f"epoch {i}")
        return (line,)

    FuncAnimation(fig, update, frames=len(frames)).save(path, writer=PillowWriter(fps=20))
    plt.close(fig)


def run(lr: float, depth: int, epochs: int = 200) -> None:
    data = nonlinear(n_samples=1000)
    torch.manual_seed(0)
    model = GeneralFit(1, 1, depth=depth, hidden=64)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    criterion = nn.MSELoss()
    losses, frames = [], []
    with mlflow.start_run():
        mlflow.log_params({"lr": lr, "depth": depth, "epochs": epochs})
        for epoch in range(epochs):
            model.train()
            optimizer.zero_grad()
            loss = criterion(model(data.x_train), data.y_train)
            loss.backward()
            optimizer.step()
            model.eval()
            with torch.no_grad():
                val = criterion(model(data.x_val), data.y_val).item()
                if epoch % (epochs // FRAMES) == 0:
                    frames.append(model(data.grid_features).squeeze(1).numpy())
            losses.append(loss.item())
            mlflow.log_metric("train_loss", losses[-1], step=epoch)
            mlflow.log_metric("val_loss", val, step=epoch)
        with tempfile.TemporaryDirectory() as tmp:
            fig, ax = plt.subplots()
            ax.plot(losses)
            fig.savefig(Path(tmp) / "loss.png")
            plt.close(fig)
            naive_gif(data, frames, Path(tmp) / "training.gif")
            mlflow.log_artifacts(tmp)


if __name__ == "__main__":
    mlflow.set_tracking_uri("sqlite:///mlruns/mlflow.db")
    mlflow.set_experiment("naive")
    for lr, depth in TOY:
        run(lr, depth)
