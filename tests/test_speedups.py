"""The speed-ups change how things are computed, never what comes out (fast, in-process)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.inproc import torch_threads
from PIL import Image

from learnai.pictures.animation import Canvas, Panel, save_gif
from learnai.train.data import nonlinear
from learnai.train.loop import Trainer
from learnai.train.models import GeneralFit


def test_training_loop_matches_the_bare_tutorial_loop() -> None:
    """Chunked host syncs and on-device loss buffers give the very same loss history as
    the tutorial's loop, which reads every epoch's loss back at once."""
    data = nonlinear(n_samples=300)

    def tutorial_network() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
        torch.manual_seed(0)
        model = GeneralFit(1, 1, depth=2, hidden=64)
        return model, torch.optim.Adam(model.parameters(), lr=0.01)

    with torch_threads(1):
        model, optimizer = tutorial_network()
        criterion = torch.nn.MSELoss()
        bare = []
        for _ in range(40):
            optimizer.zero_grad()  # 1. zero the gradients
            loss = criterion(model(data.x_train), data.y_train)  # 2. forward, 3. loss
            loss.backward()  # 4. backward
            optimizer.step()  # 5. step
            bare.append(loss.item())

        model, optimizer = tutorial_network()
        ours = Trainer(epochs=40, sync_every=10).fit(model, optimizer, data).train_loss
    assert len(ours) == 40
    np.testing.assert_allclose(ours, bare, rtol=1e-5)


@pytest.fixture(scope="module")
def frames() -> list[Image.Image]:
    """30 drawn frames, one of them NaN; tests only read them."""
    data = nonlinear(n_samples=300)
    truth = data.true_fn(data.grid)
    n = 30
    curves = np.stack([truth * (i + 1) / n for i in range(n)]).astype(np.float32)
    curves[5] = np.nan  # a diverged frame: drawn clipped, never an error
    panel = Panel(
        data.x_train[:, 0].numpy(),
        data.y_train[:, 0].numpy(),
        data.grid,
        truth,
        curves,
        list(range(n)),
        [1.0 / (i + 1) for i in range(n)],
        n,
    )
    return Canvas([panel], 640, 400).frames()


def test_delta_gif_decodes_to_exactly_the_drawn_frames(frames, tmp_path: Path) -> None:
    """Unchanged pixels become transparent in the file; the animation shown is the same."""
    path = tmp_path / "a.gif"
    save_gif(frames, path)
    with Image.open(path) as gif:
        assert gif.n_frames == len(frames)
        assert gif.size == (640, 400)
        for i, frame in enumerate(frames):
            gif.seek(i)
            shown = np.asarray(gif.convert("RGB"))
            assert np.array_equal(shown, np.asarray(frame.convert("RGB"))), i


# a GIF keeps each frame's duration in centiseconds
@pytest.mark.parametrize(("fps", "ms"), [(20, 50), (10, 100), (4, 250)])
def test_gif_plays_at_the_requested_frame_rate_and_loops(
    frames, tmp_path: Path, fps: int, ms: int
) -> None:
    path = tmp_path / "a.gif"
    save_gif(frames[:3], path, fps=fps)
    with Image.open(path) as gif:
        assert gif.info["loop"] == 0  # forever
        for i in range(gif.n_frames):
            gif.seek(i)
            assert gif.info["duration"] == ms, i
