"""Fault 4: processes that outlive their command.

SIGKILL of a sweep's launcher (what the OOM killer does) runs no handler: before, joblib's
workers trained on for minutes (still alive 53 minutes later) and ended their runs
FINISHED under a parent already reaped KILLED. Now every job watches its launcher and
stops within seconds of its death: its run ends KILLED and the worker exits. A persistent
Optuna sweep SIGKILLed mid-trial left that trial RUNNING forever when its study had no
heartbeat: the next sweep on the study fails it.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from helpers.cli import TINY, finish, run_learnai, start_learnai
from helpers.polling import wait_for_runs, wait_until
from helpers.processes import children, proc_stat
from helpers.stores import (
    all_runs,
    child_runs,
    describe_trials,
    load_study,
    mlflow_client,
    parent_runs,
    tracking_uri,
)

pytestmark = pytest.mark.e2e

LONG = (
    "trainer.epochs=100000000",  # trains until stopped
    "trainer.progress=false",
    "trainer.animation.enabled=false",
    "trainer.num_threads=1",
    "tracking.flush_every_s=0.5",
)


def _gone(pid: int) -> bool:
    try:
        return proc_stat(pid)[0] in "ZX"
    except OSError:
        return True


def test_sigkill_of_a_joblib_sweeps_launcher_stops_its_workers(tmp_path: Path) -> None:
    proc = start_learnai(
        tmp_path,
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "optimizer.lr=0.01,0.02",
        "tracking.experiment=orphans",
        *LONG,
    )
    try:
        wait_for_runs(tracking_uri(tmp_path), "orphans", 2, running=True, training=True, job=proc)
        workers = children(proc.pid)
        assert workers, "joblib's workers"
    finally:
        proc.send_signal(signal.SIGKILL)  # the launcher alone, as the OOM killer does
        proc.wait()
    try:  # the workers hold the launcher's output pipes: read it once they are gone
        wait_until(lambda: all(map(_gone, workers)), "the workers exit", timeout=30)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # an orphan must not outlive a failed test
    output = finish(proc)
    assert output.count("is gone") == 2, output[-3000:]
    client = mlflow_client(tmp_path)
    (parent,) = parent_runs(client, "orphans")
    jobs = child_runs(client, "orphans", parent.info.run_id)
    assert len(jobs) == 2
    assert {r.info.status for r in jobs} == {"KILLED"}, [r.info.status for r in jobs]
    # The next command on the store ends the parent its dead launcher left RUNNING.
    run_learnai(tmp_path, "tracking.experiment=orphans", *TINY)
    assert client.get_run(parent.info.run_id).info.status == "KILLED"


def test_a_sigkilled_optuna_sweeps_trial_is_failed_by_the_next_sweep(tmp_path: Path) -> None:
    """No heartbeat (the sweeper's default): the next sweep on the study still fails the
    trial whose sweep is provably dead, and the next run reaps the MLflow runs."""
    from optuna.trial import TrialState

    sweep = (
        "-m",
        "hydra/sweeper=optuna",
        "hydra.sweeper.storage=sqlite:///mlruns/optuna.db",
        "hydra.sweeper.study_name=dead",
        "hydra.sweeper.n_jobs=1",
        "optimizer.lr=interval(0.001,0.01)",
        "tracking.experiment=dead",
    )
    proc = start_learnai(tmp_path, *sweep, "hydra.sweeper.n_trials=2", *LONG)
    try:
        wait_for_runs(tracking_uri(tmp_path), "dead", running=True, training=True, job=proc)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # no handler, no `finally`: as the OOM killer
        finish(proc)
    (trial,) = load_study(tmp_path, "dead").trials
    assert trial.state == TrialState.RUNNING

    proc = run_learnai(tmp_path, *sweep, "hydra.sweeper.n_trials=1", *TINY)
    assert "left RUNNING by a sweep that is gone" in proc.stdout + proc.stderr
    study = load_study(tmp_path, "dead")
    states = [t.state for t in study.trials]
    assert states == [TrialState.FAIL, TrialState.COMPLETE], describe_trials(study)
    runs = all_runs(mlflow_client(tmp_path), "dead")
    assert "RUNNING" not in {r.info.status for r in runs}, [r.info.status for r in runs]
