"""The speed-ups change how things are computed, never what comes out (fast, in-process)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from experiments.loop_bench import bare_loop, learnai_loop
from learnai.animation import Canvas, Panel, save_gif
from learnai.data import nonlinear


def test_training_loop_matches_the_bare_tutorial_loop() -> None:
    """Chunked host syncs and on-device loss buffers give the very same loss history."""
    data = nonlinear(n_samples=300)
    ours = learnai_loop(data, epochs=40)
    bare = bare_loop(data, epochs=40)  # same init, same split
    np.testing.assert_allclose(ours, bare, rtol=1e-5)


@pytest.fixture
def frames() -> list[Image.Image]:
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
    gif = Image.open(path)
    assert gif.n_frames == len(frames)
    assert gif.size == (640, 400)
    for i, frame in enumerate(frames):
        gif.seek(i)
        assert np.array_equal(np.asarray(gif.convert("RGB")), np.asarray(frame.convert("RGB"))), i


def test_delta_gif_is_within_two_percent_of_pillows_own_optimizer(frames, tmp_path: Path) -> None:
    """The delta-frame writer buys speed, not size: the file stays as small as Pillow's."""
    save_gif(frames, tmp_path / "delta.gif")
    frames[0].save(tmp_path / "pillow.gif", save_all=True, append_images=frames[1:], loop=0)
    delta = (tmp_path / "delta.gif").stat().st_size
    pillow = (tmp_path / "pillow.gif").stat().st_size
    assert delta <= 1.02 * pillow, (delta, pillow)
