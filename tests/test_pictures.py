"""What users see of a run that fails next to one that converges (fast, in-process).

The lesson of the tutorial is a picture: lr 1 blows up, lr 0.01 converges. These tests
read the figures and frames the way a user does (what is drawn, where, in which colour)
and check that every final number describes the same model state.
"""

from __future__ import annotations

import functools
import itertools
import logging
import math

import numpy as np
import pytest
import torch
from helpers.inproc import torch_threads
from PIL import Image

from learnai.pictures.animation import LINE, Canvas, Panel, save_gif
from learnai.pictures.plots import RunCurve, comparison_figure, loss_figure
from learnai.train.data import nonlinear
from learnai.train.loop import History, Trainer, TrainState, evaluate
from learnai.train.models import GeneralFit
from learnai.train.progress import Progress

EPOCHS = 60


def train(
    lr: float,
    sync_every: int = 10,
    after_divergence: int = 0,
    epochs: int = EPOCHS,
    frames: int = 100,
    animate: bool = True,
):
    """History, final evaluation and data of the tutorial network trained at ``lr``."""
    return _train(lr, sync_every, after_divergence, epochs, frames, animate)


@functools.cache  # deterministic: tests that train alike share one result, read-only
def _train(
    lr: float, sync_every: int, after_divergence: int, epochs: int, frames: int, animate: bool
):
    torch.manual_seed(0)
    data = nonlinear(n_samples=300, seed=0)
    model = GeneralFit(n_in=1, depth=2, hidden=32)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    trainer = Trainer(
        epochs,
        sync_every=sync_every,
        after_divergence=after_divergence,
        frames=frames,
        animate=animate,
    )
    with torch_threads(1):
        history = trainer.fit(model, optimizer, data)
        return history, evaluate(model, data), data


# --- one model state ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lr", "sync_every", "after"), [(1.0, 10, 0), (1.0, 1, 0), (1.0, 7, 25), (0.01, 10, 0)]
)
def test_final_values_describe_the_model_after_the_last_recorded_epoch(
    lr: float, sync_every: int, after: int
) -> None:
    """The logged history, the final losses and R^2 and the drawn prediction all come from
    one model: the one after the history's last epoch (whatever the sync rhythm)."""
    history, final, data = train(lr, sync_every, after)
    assert history.val_loss[-1] == pytest.approx(final.val_loss, rel=1e-6)
    residual = ((data.y_val[:, 0].numpy() - final.val_prediction) ** 2).mean()
    assert final.val_loss == pytest.approx(float(residual), rel=1e-5)
    variance = data.y_val[:, 0].numpy().var()
    assert final.val_r2 == pytest.approx(1 - residual / variance, rel=1e-5, abs=1e-6)
    if history.frame_epochs[-1] == history.epochs_run:  # the last frame is that state too
        np.testing.assert_allclose(history.frames[-1], final.grid_prediction, rtol=1e-5)
    if lr == 1.0:
        assert history.stop == "diverged"
        assert history.diverged_at == 1  # the first step already blows the loss up


def test_a_diverged_run_keeps_training_a_bounded_while_with_a_frame_each_epoch() -> None:
    # 200 epochs and 20 frames: a frame every ~10 epochs, until the run blows up
    history, _, _ = train(1.0, sync_every=10, after_divergence=30, epochs=200, frames=20)
    assert history.stop == "diverged"
    assert history.epochs_run == history.diverged_at + 30
    tail = [e for e in history.frame_epochs if e > 10]  # past the first chunk: every epoch
    assert tail == list(range(11, history.epochs_run + 1))
    assert len(history.frame_epochs) >= 20
    # the predictions really change over those frames: the failure is happening
    moves = np.abs(np.diff(history.frames, axis=0)).max(axis=1)
    assert (moves > 1e-3).sum() >= 20


def test_without_time_after_divergence_a_run_stops_at_the_chunk_that_blew_up() -> None:
    history, _, _ = train(1.0, sync_every=10, after_divergence=0)
    assert history.stop == "diverged"
    assert history.epochs_run == 10


# --- loss_curve.png ----------------------------------------------------------------------


def _inside(fig, artist) -> bool:
    fig.canvas.draw()
    box = artist.get_window_extent(fig.canvas.get_renderer())
    figure = fig.bbox
    return (
        box.x0 >= figure.x0 - 1
        and box.y0 >= figure.y0 - 1
        and box.x1 <= figure.x1 + 1
        and box.y1 <= figure.y1 + 1
    )


def test_loss_curve_marks_and_labels_the_blow_up() -> None:
    train_loss = [2.0, 5e4, 3e3, math.inf]
    val_loss = [4e4, 6e5, math.nan, math.nan]
    fig = loss_figure(train_loss, val_loss, "nonlinear", diverged_at=1, limit=2000.0)
    ax = fig.axes[0]
    # the spike point is drawn with a big X at the epoch that blew up
    xs = [line for line in ax.get_lines() if line.get_marker() == "X"]
    assert len(xs) == 1
    assert list(xs[0].get_xdata()) == [1]
    assert xs[0].get_ydata()[0] == pytest.approx(4e4)
    # short series have a marker on every point, so a run of few epochs is never empty
    curves = {line.get_label(): line for line in ax.get_lines()}
    assert curves["val_loss"].get_marker() == "o"
    # NaN/inf validation losses are shown on the top edge
    assert list(curves["loss NaN/inf (off the axis)"].get_xdata()) == [3, 4]
    notes = [t for t in ax.texts if "blew up at epoch 1" in t.get_text()]
    assert len(notes) == 1 and _inside(fig, notes[0])
    assert "DIVERGED" in ax.get_title()
    assert _inside(fig, ax.get_legend())


def test_loss_curve_of_a_single_epoch_shows_a_point() -> None:
    fig = loss_figure([2.0], [1e5], "nonlinear", diverged_at=1, limit=2000.0)
    curves = {line.get_label(): line for line in fig.axes[0].get_lines()}
    assert curves["val_loss"].get_marker() == "o"
    assert list(curves["val_loss"].get_ydata()) == [1e5]


def test_converged_loss_curve_has_no_failure_marks() -> None:
    fig = loss_figure([2.0, 1.0, 0.1], [1.5, 0.5, 0.05], "nonlinear")
    ax = fig.axes[0]
    assert not [line for line in ax.get_lines() if line.get_marker() == "X"]
    assert not ax.texts
    assert "DIVERGED" not in ax.get_title()


# --- comparison.png ----------------------------------------------------------------------


def grid_curves() -> list[RunCurve]:
    """A 9-run grid: lr 1 diverges at depths 2 and 4, one run of a single epoch."""
    curves = []
    for lr in ("0.001", "0.01", "1"):
        for depth in (1, 2, 4):
            label = f"optimizer.lr={lr} model.depth={depth}"
            if lr == "1" and depth > 1:
                values = [4e4 * depth, 6e5, 1e4, 30.0, 9.0]
                curves.append(RunCurve(label, values, "diverged", diverged_at=1))
            elif lr == "0.001" and depth == 1:
                curves.append(RunCurve(label, [2.0], "stalled"))
            else:
                curves.append(RunCurve(label, [2.0 / (e + 1) for e in range(200)], "converged"))
    return curves


def test_comparison_tells_every_run_apart_and_labels_it_legibly() -> None:
    curves = grid_curves()
    fig = comparison_figure(curves, "9 runs: validation loss")
    ax = fig.axes[0]
    runs = {c.label + f"  [{c.outcome}]" for c in curves}
    lines = [line for line in ax.get_lines() if line.get_label() in runs]
    assert len(lines) == 9
    colours = {tuple(np.round(np.asarray(line.get_color(), dtype=float), 3)) for line in lines}
    assert len(colours) == 9, "every run has its own colour"
    legend = fig.legends[0]
    texts = [t.get_text() for t in legend.get_texts()]
    assert runs <= set(texts), "every run is labelled with its overrides and outcome"
    assert _inside(fig, legend)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in legend.get_texts()]
    for a, b in itertools.pairwise(boxes):  # labels do not pile up
        assert not a.overlaps(b)
    assert min(t.get_fontsize() for t in legend.get_texts()) >= 7


def test_comparison_marks_each_blow_up_and_shows_one_epoch_runs() -> None:
    fig = comparison_figure(grid_curves(), "9 runs")
    ax = fig.axes[0]
    xs = [line for line in ax.get_lines() if line.get_marker() == "X" and len(line.get_xdata())]
    assert sorted(line.get_ydata()[0] for line in xs) == [8e4, 1.6e5]
    red = [t for t in fig.legends[0].get_texts() if t.get_text().endswith("[diverged]")]
    assert len(red) == 2 and all(t.get_color() == "#d62728" for t in red)
    dots = [
        line
        for line in ax.get_lines()
        if line.get_marker() == "o" and list(line.get_xdata()) == [1]
    ]
    assert dots, "a run of one epoch is drawn as a point"


# --- training.gif / fit.png / side_by_side.gif -------------------------------------------


def panel_of(history: History, data, label: str = "") -> Panel:
    return Panel(
        data.x_train[:, 0].numpy(),
        data.y_train[:, 0].numpy(),
        data.grid,
        data.true_fn(data.grid),
        history.frames,
        history.frame_epochs,
        [history.val_loss[e - 1] for e in history.frame_epochs],
        EPOCHS,
        label=label,
        diverged_at=history.diverged_at,
    )


def line_pixels(frame: Image.Image, box) -> np.ndarray:
    """Pixels in the curve's palette slot inside an axes box (top row first)."""
    pixels = np.asarray(frame)
    top = frame.height - int(box.y1)
    return pixels[top : frame.height - int(box.y0), int(box.x0) : int(box.x1)] == LINE


def test_failing_run_animation_shows_the_failure_over_many_frames(tmp_path) -> None:
    history, _, data = train(1.0, after_divergence=40)
    canvas = Canvas([panel_of(history, data)], 640, 400)
    frames = canvas.frames()
    save_gif(frames, tmp_path / "training.gif")
    gif = Image.open(tmp_path / "training.gif")
    assert gif.n_frames == len(history.frame_epochs) >= 40
    decoded = []
    for i in range(gif.n_frames):
        gif.seek(i)
        decoded.append(np.asarray(gif.convert("RGB")))
    changed = sum(not np.array_equal(a, b) for a, b in itertools.pairwise(decoded))
    assert changed >= 35, "the picture changes from frame to frame while it fails"


def test_off_scale_predictions_are_marked_and_labelled_with_their_value() -> None:
    data = nonlinear(n_samples=300, seed=0)
    truth = data.true_fn(data.grid)
    wild = truth * 0 + 409.0  # the whole prediction far above the axes
    panel = Panel(
        data.x_train[:, 0].numpy(),
        data.y_train[:, 0].numpy(),
        data.grid,
        truth,
        np.stack([truth, wild]).astype(np.float32),
        [1, 2],
        [0.04, 4.99e4],
        EPOCHS,
        diverged_at=2,
    )
    canvas = Canvas([panel], 640, 400)
    assert canvas._notes(0, wild, 2) == [
        "diverged: loss blew up at epoch 2",
        "off scale above: up to 409",
    ]
    assert canvas._notes(0, truth, 1) == []
    good, bad = canvas.frames()
    _, box, _ = canvas.mappings[0]
    good_px, bad_px = line_pixels(good, box), line_pixels(bad, box)
    # in range: a curve across the plot; off scale: only marks along the top edge, not
    # a line passed off as data on the border
    assert good_px[10:-10].sum() > 200
    assert bad_px[60:].sum() == 0, "below the edge marks and the notes nothing is drawn"
    assert bad_px[:6].sum() > 100, "triangles mark the edge the prediction crosses"
    # the notes are drawn in the curve's colour inside the plot, below the marks
    assert bad_px[10:45, :250].sum() > good_px[10:45, :250].sum() + 50


def test_side_by_side_frames_show_every_panel_at_the_same_epoch() -> None:
    converged, _, data = train(0.01)
    diverged, _, _ = train(1.0, after_divergence=20)
    panels = [panel_of(converged, data, "lr=0.01"), panel_of(diverged, data, "lr=1")]
    canvas = Canvas(panels, 680, 270, cols=2)
    timeline = [1, 15, 30, 60]
    frames = canvas.frames(timeline)
    assert len(frames) == 4
    boxes = [box for _, box, _ in canvas.mappings]
    # the failing panel stops changing once its run stopped (epoch 21); the other goes on
    last_two = [line_pixels(f, boxes[1]) for f in frames[2:]]
    assert np.array_equal(*last_two)
    assert not np.array_equal(line_pixels(frames[2], boxes[0]), line_pixels(frames[3], boxes[0]))


# --- progress ----------------------------------------------------------------------------


def progress_lines(caplog, every_s: float, chunks: int = 8) -> list[str]:
    progress = Progress(epochs=1000, every_s=every_s)
    progress.tty = False  # as in a log file
    state = TrainState(1000)
    with caplog.at_level(logging.INFO, logger="learnai"):
        for _ in range(chunks):
            state.new_from = len(state.train_loss)
            state.train_loss += [1.0] * 10
            state.val_loss += [1.0] * 10
            progress.on_chunk(state)
    return [r.getMessage() for r in caplog.records if r.name == "learnai"]


def test_progress_in_a_log_writes_a_line_every_few_seconds(caplog) -> None:
    """80 of 1,000 epochs is short of the first quarter: only the clock makes it print."""
    assert progress_lines(caplog, every_s=3600) == []
    caplog.clear()
    lines = progress_lines(caplog, every_s=0.0)
    assert len(lines) == 8
    assert lines[-1].startswith("epoch 80/1000")


# --- the files of a run ------------------------------------------------------------------


def write_files(tmp_path, lr: float, animate: bool, after: int = 0):
    from learnai.pictures.artifacts import RunFiles

    history, final, data = train(lr, after_divergence=after, animate=animate)
    RunFiles.of("x: 1\n", history, data, final, EPOCHS, 20, (640, 400), "", 1e3).write(tmp_path)
    return history, final


def test_run_files_of_a_failing_run_hold_its_animation_and_final_state(tmp_path) -> None:
    from learnai.pictures.artifacts import panel_from_npz

    history, final = write_files(tmp_path, 1.0, animate=True, after=30)
    names = {p.name for p in tmp_path.iterdir()}
    assert {"config.yaml", "loss_curve.png", "fit.png", "training.gif", "predictions.npz"} <= names
    with Image.open(tmp_path / "training.gif") as gif:
        assert gif.n_frames == len(history.frame_epochs) >= 30
    panel = panel_from_npz(tmp_path / "predictions.npz", "lr=1")
    assert panel.diverged_at == history.diverged_at == 1
    assert panel.frame_epochs[-1] == history.epochs_run
    assert panel.frame_losses[-1] == pytest.approx(final.val_loss, rel=1e-6)


def test_huge_predictions_keep_their_value_in_the_file(tmp_path) -> None:
    """A blow-up's predictions (1e6) stay finite numbers in predictions.npz (float16
    would store inf), so the off-scale note can give their value."""
    from learnai.pictures.artifacts import RunFiles, panel_from_npz
    from learnai.train.loop import Evaluation

    data = nonlinear(n_samples=100, seed=0)
    huge = np.full((2, len(data.grid)), 1e6, dtype=np.float32)
    history = History([2.0, 5e4], [4e4, 6e5], [1, 2], huge, "diverged", diverged_at=1)
    n_val = len(data.y_val)
    final = Evaluation(5e4, 6e5, -1e5, np.zeros(n_val, np.float32), huge[-1])
    RunFiles.of("", history, data, final, 200, 20, (640, 400), "", 1e3).write(tmp_path)
    panel = panel_from_npz(tmp_path / "predictions.npz")
    assert np.isfinite(panel.frames).all()
    assert panel.frames.max() == pytest.approx(1e6)


def test_a_run_without_animation_still_gives_the_sweep_a_panel(tmp_path) -> None:
    from learnai.pictures.artifacts import panel_from_npz

    _, final = write_files(tmp_path, 0.01, animate=False)
    assert not (tmp_path / "training.gif").exists()
    panel = panel_from_npz(tmp_path / "predictions.npz")
    assert panel.frame_epochs == [EPOCHS]
    np.testing.assert_allclose(panel.frames[0], final.grid_prediction)
    assert len(Canvas([panel], 340, 260).frames()) == 1


def test_progress_names_its_run_and_says_why_a_diverged_run_trains_on(caplog) -> None:
    progress = Progress(epochs=200, every_s=0.0, name="lr=1", after_divergence=50)
    progress.tty = False
    state = TrainState(200)
    state.train_loss, state.val_loss, state.diverged_at = [1.0] * 10, [1e9] * 10, 2
    with caplog.at_level(logging.INFO, logger="learnai"):
        progress.on_chunk(state)
    assert caplog.messages == [
        "lr=1: loss blew up at epoch 2: the run has diverged; 50 more epochs so its "
        "animation shows the blow-up (trainer.animation.after_divergence)",
        "lr=1: epoch 10/200  train_loss 1  val_loss 1e+09",
    ]
