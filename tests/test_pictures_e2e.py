"""A search stops a diverged trial at once (``python -m learnai -m`` with the Optuna
sweeper, read back from MLflow and the study; e2e). A single run's recorded numbers and
pictures are checked in-process in test_run.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.cli import run_learnai
from helpers.stores import all_runs, describe_trials, load_study, mlflow_client

pytestmark = pytest.mark.e2e

SMALL = ("trainer.device=cpu", "data.n_samples=300", "model.hidden=32", "trainer.progress=false")


def test_a_search_still_stops_a_diverged_trial_at_once(tmp_path: Path) -> None:
    """Optuna trials get no extra epochs after a blow-up: the trial stops at the first
    sync, is recorded ``diverged`` and the study never sees it as a good value."""
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
        expect=1,
    )
    assert "study 's' has no completed trial (states: PRUNED)" in proc.stderr
    child = [r for r in all_runs(mlflow_client(tmp_path), "s") if "optuna.trial" in r.data.tags]
    assert len(child) == 1
    tags = child[0].data.tags
    assert tags["outcome"] == "diverged"
    assert int(tags["epochs_run"]) == 10  # the first sync_every chunk, no more
    study = load_study(tmp_path, "s")
    (trial,) = study.trials
    assert trial.user_attrs["outcome"] == "diverged", describe_trials(study)
    assert trial.state.name == "PRUNED", describe_trials(study)
