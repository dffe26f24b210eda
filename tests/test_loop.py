"""The training loop and the tracking helpers, in-process on tiny data (fast)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from learnai.secrets import mask_secrets
from learnai.tracking.recorder import flatten
from learnai.tracking.uris import resolve_uri
from learnai.train.data import PLOT_POINTS, linear, nonlinear
from learnai.train.loop import Trainer, TrainState, find_divergence, frame_epochs
from learnai.train.models import GeneralFit, LinearRegression

# --- animation frames --------------------------------------------------------------------


def test_frame_epochs_spreads_frames_over_long_runs() -> None:
    epochs = frame_epochs(200, 100)
    assert len(epochs) == 100
    assert epochs[0] == 1  # epochs count from 1, as the metrics' steps do
    assert epochs[-1] == 200
    assert epochs == sorted(set(epochs))


def test_frame_epochs_keeps_every_epoch_of_short_runs() -> None:
    assert frame_epochs(30, 100) == list(range(1, 31))
    assert frame_epochs(100, 100) == list(range(1, 101))


@pytest.mark.parametrize(("epochs", "frames"), [(101, 100), (150, 100), (1000, 7), (5, 1)])
def test_frame_epochs_gives_the_requested_count(epochs: int, frames: int) -> None:
    got = frame_epochs(epochs, frames)
    assert len(got) == frames
    assert got[0] == 1
    assert all(1 <= e <= epochs for e in got)
    if frames > 1:
        assert got[-1] == epochs


# --- divergence --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("losses", "first", "expected"),
    [
        ([2.0, 1.0, 0.5], 2.0, None),  # falling: fine
        ([2.0, 1999.0], 2.0, None),  # below 1000 x the first loss
        ([2.0, 2001.0, 1.0], 2.0, 1),  # above 1000 x the first loss
        ([2.0, 1.0, math.nan], 2.0, 2),
        ([2.0, math.inf], 2.0, 1),
        ([math.inf, 1.0], math.inf, 0),  # a non-finite first loss is divergence at once
        ([0.0, 1e-10], 0.0, None),  # a zero first loss does not make every loss "huge"
    ],
)
def test_find_divergence(losses: list[float], first: float, expected: int | None) -> None:
    assert find_divergence(losses, first, 1000.0) == expected


def test_find_divergence_uses_the_factor() -> None:
    assert find_divergence([1.0, 11.0], 1.0, 10.0) == 1
    assert find_divergence([1.0, 9.0], 1.0, 10.0) is None


# --- Trainer -----------------------------------------------------------------------------


class Recorder:
    """A callback that keeps what each chunk showed it."""

    def __init__(self) -> None:
        self.chunks: list[tuple[int, int]] = []

    def on_chunk(self, state: TrainState) -> None:
        self.chunks.append((state.new_from, len(state.train_loss)))


def test_trainer_returns_one_loss_per_epoch_and_learns() -> None:
    torch.manual_seed(0)
    data = nonlinear(n_samples=60, seed=1)
    model = GeneralFit(n_in=data.n_features, depth=1, hidden=16)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    recorder = Recorder()
    history = Trainer(epochs=25, sync_every=10, callbacks=[recorder]).fit(model, optimizer, data)

    assert len(history.train_loss) == 25
    assert len(history.val_loss) == 25
    assert all(math.isfinite(v) for v in history.train_loss + history.val_loss)
    assert history.stop is None
    assert history.train_loss[-1] < history.train_loss[0]
    # callbacks see every epoch once, in sync_every chunks plus the remainder
    assert recorder.chunks == [(0, 10), (10, 20), (20, 25)]
    # 25 epochs <= 100 frames: one animation frame per epoch, over the whole plot grid
    assert history.frame_epochs == list(range(1, 26))
    assert history.frames.shape == (25, PLOT_POINTS)


def test_trainer_without_animation_keeps_no_frames() -> None:
    data = nonlinear(n_samples=20, seed=0)
    model = LinearRegression(data.n_features)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    history = Trainer(epochs=3, animate=False).fit(model, optimizer, data)
    assert len(history.train_loss) == 3
    assert history.frame_epochs == []
    assert history.frames.shape[0] == 0


def test_trainer_spreads_frames_over_long_runs() -> None:
    data = nonlinear(n_samples=20, seed=0)
    model = LinearRegression(data.n_features)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    history = Trainer(epochs=50, frames=10).fit(model, optimizer, data)
    assert len(history.train_loss) == 50
    assert history.frame_epochs == frame_epochs(50, 10)
    assert history.frames.shape == (10, PLOT_POINTS)


def test_trainer_stops_when_training_diverges() -> None:
    torch.manual_seed(0)
    data = linear(n_samples=200, seed=0)
    model = LinearRegression(data.n_features)
    optimizer = torch.optim.SGD(model.parameters(), lr=1000.0)
    recorder = Recorder()
    history = Trainer(epochs=100, sync_every=10, callbacks=[recorder]).fit(model, optimizer, data)

    assert history.stop == "diverged"
    assert len(history.train_loss) == len(history.val_loss) < 100
    # training stops at the end of the chunk that diverged and keeps all of it: the
    # history ends where the model is
    assert len(history.train_loss) == 10
    worst = (
        max(history.train_loss[d - 1], history.val_loss[d - 1]) if (d := history.diverged_at) else 0
    )
    assert not math.isfinite(worst) or worst > 1000.0 * history.train_loss[0]
    assert recorder.chunks[-1][1] == len(history.train_loss)
    assert all(e <= len(history.train_loss) for e in history.frame_epochs)
    assert history.frames.shape[0] == len(history.frame_epochs)


# --- tracking helpers --------------------------------------------------------------------


def test_mask_secrets_hides_passwords() -> None:
    masked = mask_secrets("postgresql://u:secret@h/db")
    assert "secret" not in masked
    assert masked.startswith("postgresql://u:")
    assert masked.endswith("@h/db")


def test_mask_secrets_inside_text_and_leaves_plain_uris() -> None:
    text = "tracking:\n  uri: http://alice:pa55@mlflow.example:5000\n"
    assert "pa55" not in mask_secrets(text)
    assert "alice" in mask_secrets(text)
    for plain in ("sqlite:///mlruns/mlflow.db", "http://mlflow.example:5000", "file:///a:b"):
        assert mask_secrets(plain) == plain


def test_mask_secrets_hides_passwords_with_a_slash() -> None:
    assert "p/ss" not in mask_secrets("postgresql://u:p/ss@h/db")


def test_flatten_gives_dotted_string_params_with_secrets_masked() -> None:
    params = flatten(
        {"optimizer": {"lr": 0.01}, "model": {"depth": 2}, "tracking": {"uri": "mysql://u:pw@h/d"}}
    )
    assert params["optimizer.lr"] == "0.01"
    assert params["model.depth"] == "2"
    assert "pw" not in params["tracking.uri"]


def test_resolve_uri_makes_relative_sqlite_paths_absolute(tmp_path: Path) -> None:
    uri = resolve_uri("sqlite:///mlruns/mlflow.db", tmp_path)
    assert uri == f"sqlite:///{(tmp_path / 'mlruns' / 'mlflow.db').resolve()}"
    assert uri.startswith("sqlite:////")


@pytest.mark.parametrize(
    "uri",
    [
        "sqlite:////abs/path/mlflow.db",
        "sqlite:///:memory:",
        "http://localhost:5000",
        "postgresql://u:pw@h/db",
    ],
)
def test_resolve_uri_leaves_other_uris_alone(tmp_path: Path, uri: str) -> None:
    assert resolve_uri(uri, tmp_path) == uri
