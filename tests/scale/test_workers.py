"""Many workers, one study: independent ``python -m learnai -m experiment=...`` processes
on one PostgreSQL Optuna storage and one MLflow store, started at once from different
directories (different machines, as far as they can tell).

What the user relies on: every asked trial runs once (no duplicate numbers), each trial
names its MLflow run and each run its trial, and the study's runs are found together
(each worker has its own parent, tagged ``optuna.study``). A worker killed with SIGKILL
mid-trial leaves a trial that the next worker's start fails (stale heartbeat) and retries.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from scale_helpers import TINY
from sweep_helpers import PARENT_TAG, describe_trials, learnai_env

pytestmark = pytest.mark.slow
STUDY = "shared"


def _optuna_url(pg: str) -> str:
    return pg.replace("postgresql://", "postgresql+psycopg://", 1)


def _worker(cwd: Path, storage: str, tracking: str, *extra: str) -> subprocess.Popen[str]:
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "learnai",
            "-m",
            "experiment=lr_depth_search",
            f"hydra.sweeper.study_name={STUDY}",
            f"hydra.sweeper.storage={storage}",
            f"tracking.uri={tracking}",
            "hydra.sweeper.heartbeat_interval=1",
            *TINY,
            *extra,
        ],
        cwd=cwd,
        env=learnai_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _finish(proc: subprocess.Popen[str], expect: int = 0) -> str:
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == expect, f"worker exited {proc.returncode}:\n{out[-5000:]}"
    return out


def _has_tables(storage: str) -> bool:
    """Whether Optuna has finished the schema: its last step stamps ``alembic_version``.
    Opening the storage before that would race the worker stamping it (both create the
    table; one fails on PostgreSQL's unique type name)."""
    import psycopg

    url = storage.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(url, connect_timeout=5) as conn:
        if conn.execute("SELECT to_regclass('alembic_version')").fetchone()[0] is None:
            return False
        return conn.execute("SELECT count(*) FROM alembic_version").fetchone()[0] > 0


def _study(storage: str):
    import optuna

    return optuna.load_study(study_name=STUDY, storage=storage)


def test_two_workers_share_one_study_and_every_trial_names_its_run(
    tmp_path: Path, pg_database, server
) -> None:
    """Through a team server: no worker needs a shared folder for its artifacts."""
    from mlflow import MlflowClient

    storage, tracking = _optuna_url(pg_database()), server.uri
    # Seeded samplers: one seed per worker, or both draw the same points.
    workers = [
        _worker(
            tmp_path / f"w{i}",
            storage,
            tracking,
            f"hydra.sweeper.n_trials={n}",
            f"hydra.sweeper.sampler.seed={i}",
        )
        for i, n in ((1, 3), (2, 2))
    ]
    for w in workers:
        _finish(w)
    for i in (1, 2):
        assert not (tmp_path / f"w{i}" / "mlruns").exists()

    study = _study(storage)
    trials = study.trials
    numbers = [t.number for t in trials]
    assert sorted(numbers) == list(range(5)), describe_trials(study)  # 3 + 2, no duplicates
    # Finished, each: COMPLETE, or PRUNED when a drawn lr diverges (non_finite: prune).
    assert {t.state.name for t in trials} <= {"COMPLETE", "PRUNED"}, describe_trials(study)

    client = MlflowClient(tracking_uri=tracking)
    exp = client.get_experiment_by_name("lr_depth_search")
    for t in trials:
        run = client.get_run(t.user_attrs["mlflow_run_id"])
        assert run.data.tags["optuna.study"] == STUDY
        assert run.data.tags["optuna.trial"] == str(t.number)
        assert run.info.status == "FINISHED"
    # The UI filter that shows the whole study: both workers' parents and every trial.
    grouped = client.search_runs([exp.experiment_id], f"tags.`optuna.study` = '{STUDY}'")
    parents = [r for r in grouped if PARENT_TAG not in r.data.tags]
    children = [r for r in grouped if PARENT_TAG in r.data.tags]
    assert len(parents) == 2 and len(children) == 5
    per_parent = sorted(
        sum(c.data.tags[PARENT_TAG] == p.info.run_id for c in children) for p in parents
    )
    assert per_parent == [2, 3]
    assert {r.info.status for r in grouped} == {"FINISHED"}


def test_a_killed_workers_trial_is_failed_and_retried_by_the_next_worker(
    tmp_path: Path, pg_database
) -> None:
    from mlflow import MlflowClient
    from optuna.storages import RetryFailedTrialCallback

    # Straight to PostgreSQL: artifacts then go where the experiment says, so it names a
    # folder every worker reaches (MLflow's default, ./mlruns, is the first worker's cwd).
    storage, tracking = _optuna_url(pg_database()), pg_database()
    shared = f"tracking.artifact_location={(tmp_path / 'artifacts').as_uri()}"
    doomed = _worker(
        tmp_path / "doomed",
        storage,
        tracking,
        "hydra.sweeper.n_trials=1",
        "trainer.epochs=1000000",
        "data.n_samples=20",
        shared,
    )
    # Mid-trial: its run exists (the job linked it) and training goes on.
    deadline = time.monotonic() + 180
    running = None
    while time.monotonic() < deadline and running is None:
        assert doomed.poll() is None, doomed.communicate()[0][-4000:]
        # Read only once the worker made the schema: opening the storage here would
        # race it creating the tables.
        with contextlib.suppress(KeyError):  # the study is not created yet
            if not _has_tables(storage):
                raise KeyError("no schema yet")
            running = next(
                (
                    t
                    for t in _study(storage).trials
                    if t.state.name == "RUNNING" and "mlflow_run_id" in t.user_attrs
                ),
                None,
            )
        time.sleep(0.5)
    assert running is not None, "the first worker never got to its trial"
    os.killpg(doomed.pid, signal.SIGKILL)  # the sweeper, its heartbeat thread, the job
    doomed.wait(timeout=30)
    time.sleep(3)  # past the grace period (2 x heartbeat_interval)
    assert _study(storage).trials[0].state.name == "RUNNING"  # nobody has noticed yet

    _finish(
        _worker(
            tmp_path / "next",
            storage,
            tracking,
            "hydra.sweeper.n_trials=1",
            "hydra.sweeper.max_retry=1",
            shared,
        )
    )
    study = _study(storage)
    stale, retry = study.trials
    assert stale.state.name == "FAIL", describe_trials(study)
    assert retry.state.name in ("COMPLETE", "PRUNED"), describe_trials(study)
    assert RetryFailedTrialCallback.retried_trial_number(retry) == stale.number
    assert retry.params == stale.params
    client = MlflowClient(tracking_uri=tracking)
    killed_run = client.get_run(running.user_attrs["mlflow_run_id"])
    assert killed_run.info.status != "RUNNING"  # the next worker reaped the dead run
    assert client.get_run(retry.user_attrs["mlflow_run_id"]).data.tags["optuna.trial"] == "1"
