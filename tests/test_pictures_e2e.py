"""A recorded run's numbers and pictures describe one model state, as MLflow shows them
(``python -m learnai`` in a subprocess, read back from the store; slow)."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow

SMALL = ("trainer.device=cpu", "data.n_samples=300", "model.hidden=32")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, run_learnai, mlflow_client, only_run):
    def _record(name: str, *overrides: str):
        cwd = tmp_path_factory.mktemp(name)
        run_learnai(cwd, *SMALL, *overrides, f"tracking.experiment={name}")
        client = mlflow_client(cwd)
        run = only_run(client, name)
        local = Path(client.download_artifacts(run.info.run_id, "", str(cwd / "dl")))
        return client, run, local

    return _record


@pytest.mark.parametrize(
    ("name", "overrides", "outcome"),
    [
        ("lr1", ("optimizer.lr=1",), "diverged"),
        ("lr1_sync1", ("optimizer.lr=1", "trainer.sync_every=1"), "diverged"),
        ("lr1_search_like", ("optimizer.lr=1", "trainer.animation.after_divergence=0"), "diverged"),
        ("lr001", ("optimizer.lr=0.01", "trainer.epochs=60"), None),
    ],
)
def test_final_metrics_and_predictions_agree(recorded, name, overrides, outcome) -> None:
    client, run, local = recorded(name, *overrides)
    metrics, tags = run.data.metrics, run.data.tags
    if outcome:
        assert tags["outcome"] == outcome
    epochs_run = int(tags["epochs_run"])
    val_loss = sorted(client.get_metric_history(run.info.run_id, "val_loss"), key=lambda m: m.step)
    # steps count epochs from 1; the last one is the state the final metrics describe
    assert [m.step for m in val_loss] == list(range(1, epochs_run + 1))
    final = client.get_metric_history(run.info.run_id, "final_val_loss")
    assert [m.step for m in final] == [epochs_run]
    assert metrics["final_val_loss"] == pytest.approx(val_loss[-1].value, rel=1e-6)

    z = np.load(local / "predictions.npz")
    assert int(z["final_epoch"]) == epochs_run
    residual = float(((z["y_val"] - z["val_prediction"]) ** 2).mean())
    assert metrics["final_val_loss"] == pytest.approx(residual, rel=1e-5)
    r2 = 1.0 - residual / float(z["y_val"].var())
    assert metrics["val_r2"] == pytest.approx(r2, rel=1e-4, abs=1e-6)
    if int(z["frame_epochs"][-1]) == epochs_run:
        np.testing.assert_allclose(z["frames"][-1], z["final"], rtol=1e-5)
    if outcome == "diverged":
        assert int(tags["diverged_epoch"]) == int(z["diverged_at"]) >= 1
        assert math.isfinite(metrics["final_val_loss"]) or "final_val_loss" not in metrics


def test_failing_run_leaves_an_animation_of_its_failure(recorded) -> None:
    _, run, local = recorded("lr1_anim", "optimizer.lr=1")
    assert run.data.tags["outcome"] == "diverged"
    with Image.open(local / "training.gif") as gif:
        assert gif.n_frames >= 40
        frames = []
        for i in range(gif.n_frames):
            gif.seek(i)
            frames.append(np.asarray(gif.convert("RGB")))
    changed = sum(not np.array_equal(a, b) for a, b in itertools.pairwise(frames))
    assert changed >= 35
    for png in ("loss_curve.png", "fit.png"):
        with Image.open(local / png) as image:
            assert image.width > 300


def test_a_search_still_stops_a_diverged_trial_at_once(tmp_path: Path, run_learnai) -> None:
    """Optuna trials get no extra epochs after a blow-up: the trial stops at the first
    sync, is recorded ``diverged`` and the study never sees it as a good value."""
    from sweep_helpers import all_runs, load_study, mlflow_client

    # Its only trial PRUNED, the study has no best trial: the sweep says so and exits 1.
    proc = run_learnai(
        tmp_path,
        "-m",
        "hydra/sweeper=optuna",
        "hydra/sweeper/pruner=none",
        "hydra.sweeper.n_trials=1",
        "hydra.sweeper.study_name=s",
        "hydra.sweeper.storage=sqlite:///mlruns/optuna.db",  # read back after the command
        "hydra.sweeper.non_finite=prune",  # as lr_depth_search sets it: inf is never best
        "optimizer.lr=choice(1)",
        "tracking.experiment=s",
        *SMALL,
        check=False,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "study 's' has no completed trial (states: PRUNED)" in proc.stderr
    client = mlflow_client(tmp_path)
    child = [r for r in all_runs(client, "s") if "optuna.trial" in r.data.tags]
    assert len(child) == 1
    tags = child[0].data.tags
    assert tags["outcome"] == "diverged"
    assert int(tags["epochs_run"]) == 10  # the first sync_every chunk, no more
    (trial,) = load_study(tmp_path, "s").trials
    assert trial.user_attrs["outcome"] == "diverged"
    assert trial.state.name == "PRUNED"
