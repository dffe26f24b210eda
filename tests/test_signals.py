"""A run stopped by SIGTERM (a scheduler's cancel, `kill`) is not left RUNNING."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sweep_helpers import learnai_env, tracking_uri

from learnai.tracking import open_store


@pytest.mark.slow
def test_sigterm_ends_the_run_as_killed(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "learnai",
            "trainer.epochs=1000000",
            "trainer.progress=false",
            "tracking.experiment=sigterm",
            "trainer.animation.enabled=false",
        ],
        cwd=tmp_path,
        env=learnai_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        runs = []
        while time.monotonic() < deadline and not runs:
            time.sleep(0.5)
            assert proc.poll() is None, proc.communicate()
            if (tmp_path / "mlruns" / "mlflow.db").exists():
                # open_store waits on the file lock while the job creates the schema
                client = open_store(tracking_uri(tmp_path))
                exp = client.get_experiment_by_name("sigterm")
                runs = client.search_runs([exp.experiment_id]) if exp else []
        assert runs, "the run never started"
        time.sleep(1.0)  # well inside the training loop
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    run = client.get_run(runs[0].info.run_id)
    assert run.info.status == "KILLED"
    assert client.get_metric_history(run.info.run_id, "train_loss"), "metrics so far kept"


@pytest.mark.slow
def test_sigterm_leaves_no_trial_or_parent_running(tmp_path: Path) -> None:
    import optuna

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "learnai",
            "-m",
            "hydra/sweeper=optuna",
            "hydra.sweeper.n_trials=2",
            "optimizer.lr=interval(0.001,0.01)",
            "trainer.epochs=1000000",
            "trainer.progress=false",
            "tracking.experiment=sigterm",
            "trainer.animation.enabled=false",
        ],
        cwd=tmp_path,
        env=learnai_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        children = []
        while time.monotonic() < deadline and not children:
            time.sleep(0.5)
            assert proc.poll() is None, proc.communicate()
            if (tmp_path / "mlruns" / "mlflow.db").exists():
                # open_store waits on the file lock while the job creates the schema
                client = open_store(tracking_uri(tmp_path))
                exp = client.get_experiment_by_name("sigterm")
                runs = client.search_runs([exp.experiment_id]) if exp else []
                children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
        assert children, "no trial started"
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode != 0
    runs = client.search_runs([exp.experiment_id])
    assert {r.info.status for r in runs} <= {"KILLED", "FAILED"}, stderr[-3000:]
    storage = "sqlite:///" + str(tmp_path / "mlruns" / "optuna.db")
    study = optuna.load_study(study_name="sigterm", storage=storage)
    assert study.trials
    assert all(t.state != optuna.trial.TrialState.RUNNING for t in study.trials)
