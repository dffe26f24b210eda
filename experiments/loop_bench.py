"""The training loop against the bare tutorial loop, same model, data and device.

The bare loop is the tutorial's: zero grads, forward, loss, backward, step, and
``loss.item()`` every epoch to keep the history (a host sync per epoch). learnai's
loop adds a validation loss per epoch and animation frames, keeps losses on the
device and reads them back every ``sync_every`` epochs.

    python -m experiments.loop_bench --device cpu --points 100000 --epochs 200
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from learnai.data import nonlinear
from learnai.loop import Trainer
from learnai.models import GeneralFit


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bare_loop(data, epochs: int, seed: int = 0) -> list[float]:
    """The tutorial's loop on the same split as learnai's: train on the train points,
    then the validation loss on the held-out points, read back every epoch."""
    torch.manual_seed(seed)
    model = GeneralFit(1, 1, depth=2, hidden=64).to(data.x_train.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    criterion = nn.MSELoss()
    losses = []
    for _ in range(epochs):
        optimizer.zero_grad()
        loss = criterion(model(data.x_train), data.y_train)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            criterion(model(data.x_val), data.y_val).item()
        losses.append(loss.item())
    return losses


def learnai_loop(data, epochs: int, seed: int = 0) -> list[float]:
    torch.manual_seed(seed)
    model = GeneralFit(1, 1, depth=2, hidden=64).to(data.x_train.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    return Trainer(epochs=epochs, frames=100).fit(model, optimizer, data).train_loss


def measure(device: torch.device, points: int, epochs: int, repeats: int) -> dict:
    data = nonlinear(n_samples=points).to(device)
    # Equal work: both train on the same 80% split and evaluate the other 20% each epoch.
    timings: dict[str, list[float]] = {"bare": [], "learnai": []}
    bare_loop(data, 5)
    learnai_loop(data, 5)  # warm-up: allocator, kernels
    for _ in range(repeats):
        for name, fn in (
            ("bare", lambda: bare_loop(data, epochs)),
            ("learnai", lambda: learnai_loop(data, epochs)),
        ):
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            timings[name].append(time.perf_counter() - start)
    bare, ours = statistics.median(timings["bare"]), statistics.median(timings["learnai"])
    return {
        "device": device.type,
        "points": points,
        "epochs": epochs,
        "bare_s": bare,
        "learnai_s": ours,
        "ratio": ours / bare,
        "runs": timings,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    r = measure(torch.device(args.device), args.points, args.epochs, args.repeats)
    print(
        f"loop on {r['device']}, {r['points']} points, {r['epochs']} epochs, median of "
        f"{args.repeats}: bare {r['bare_s']:.3f}s, learnai {r['learnai_s']:.3f}s, "
        f"ratio {r['ratio']:.2f}x"
    )


if __name__ == "__main__":
    main()
