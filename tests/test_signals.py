"""A run stopped by SIGTERM (a scheduler's cancel, `kill`) is not left RUNNING."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sweep_helpers import learnai_env, tracking_uri

from learnai.tracking import open_store

LONG_RUN = (
    "trainer.epochs=1000000",
    "trainer.progress=false",
    "tracking.experiment=sigterm",
    "trainer.animation.enabled=false",
)


def terminate_mid_run(cwd: Path, *args: str, child: bool) -> tuple[int, str, Any, str]:
    """Start learnai, wait until a run (a sweep's child run, with ``child``) is training,
    send SIGTERM; return (exit code, stderr, MLflow client, experiment id)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "learnai", *args, *LONG_RUN],
        cwd=cwd,
        env=learnai_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        runs: list[Any] = []
        while time.monotonic() < deadline and not runs:
            time.sleep(0.5)
            assert proc.poll() is None, proc.communicate()
            if (cwd / "mlruns" / "mlflow.db").exists():
                # open_store waits on the file lock while the job creates the schema
                client = open_store(tracking_uri(cwd))
                exp = client.get_experiment_by_name("sigterm")
                runs = client.search_runs([exp.experiment_id]) if exp else []
                runs = [r for r in runs if not child or "mlflow.parentRunId" in r.data.tags]
        assert runs, "no run started"
        time.sleep(1.0)  # well inside the training loop
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
        stderr = stdout + stderr  # the job's log lines go to stdout
    finally:
        proc.kill()
    return proc.returncode, stderr, client, exp.experiment_id


@pytest.mark.slow
def test_sigterm_ends_the_run_as_killed(tmp_path: Path) -> None:
    code, stderr, client, experiment_id = terminate_mid_run(tmp_path, child=False)
    assert code == 128 + signal.SIGTERM, stderr
    (run,) = client.search_runs([experiment_id])
    assert run.info.status == "KILLED"
    assert "ended KILLED, with its params and the metrics logged so far" in stderr
    assert client.get_metric_history(run.info.run_id, "train_loss"), "metrics so far kept"


@pytest.mark.slow
def test_sigterm_leaves_no_trial_or_parent_running(tmp_path: Path) -> None:
    import optuna

    code, stderr, client, experiment_id = terminate_mid_run(
        tmp_path,
        "-m",
        "hydra/sweeper=optuna",
        "hydra.sweeper.storage=sqlite:///mlruns/optuna.db",
        "hydra.sweeper.study_name=${tracking.experiment}",
        "hydra.sweeper.n_trials=2",
        "optimizer.lr=interval(0.001,0.01)",
        child=True,
    )
    assert code != 0
    runs = client.search_runs([experiment_id])
    assert {r.info.status for r in runs} <= {"KILLED", "FAILED"}, stderr[-3000:]
    storage = "sqlite:///" + str(tmp_path / "mlruns" / "optuna.db")
    study = optuna.load_study(study_name="sigterm", storage=storage)
    assert study.trials
    assert all(t.state != optuna.trial.TrialState.RUNNING for t in study.trials)
