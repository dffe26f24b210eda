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
from pathlib import Path

import pytest
from helpers.cli import TINY_NO_ANIMATION, finish, start_learnai
from helpers.polling import wait_until
from helpers.servers import Server
from helpers.stores import PARENT_TAG, describe_trials

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]
STUDY = "shared"


def _optuna_url(pg: str) -> str:
    return pg.replace("postgresql://", "postgresql+psycopg://", 1)


def _worker(cwd: Path, storage: str, tracking: str, *extra: str) -> subprocess.Popen[str]:
    cwd.mkdir(parents=True, exist_ok=True)
    return start_learnai(
        cwd,
        "-m",
        "experiment=lr_depth_search",
        f"hydra.sweeper.study_name={STUDY}",
        f"hydra.sweeper.storage={storage}",
        f"tracking.uri={tracking}",
        "hydra.sweeper.heartbeat_interval=1",
        *TINY_NO_ANIMATION,
        *extra,
    )


def _finish(proc: subprocess.Popen[str]) -> str:
    out = finish(proc)
    assert proc.returncode == 0, f"worker exited {proc.returncode}:\n{out[-5000:]}"
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
    tmp_path: Path, pg_database
) -> None:
    """Through a team server: no worker needs a shared folder for its artifacts."""
    server = Server.learnai(tmp_path / "server", pg_database()).start()
    try:
        _share_one_study(tmp_path, _optuna_url(pg_database()), server.uri)
    finally:
        server.kill()


def _share_one_study(tmp_path: Path, storage: str, tracking: str) -> None:
    from mlflow import MlflowClient

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

    def running_trial():
        """The worker's trial once its run exists (the job linked it): mid-training. The
        storage is read only once the worker made its schema: opening it earlier would
        race the worker creating the tables."""
        if not _has_tables(storage):
            return None
        try:
            trials = _study(storage).trials
        except KeyError:  # the study is not created yet
            return None
        return next(
            (t for t in trials if t.state.name == "RUNNING" and "mlflow_run_id" in t.user_attrs),
            None,
        )

    try:
        running = wait_until(running_trial, "the first worker's trial", timeout=180, job=doomed)
    finally:
        with contextlib.suppress(ProcessLookupError):  # the sweeper, its heartbeat, the job
            os.killpg(doomed.pid, signal.SIGKILL)
        doomed.wait(timeout=30)
    # The scenario: the dead worker's heartbeat grows older than the grace period
    # (2 x heartbeat_interval = 2 s), so a worker on any host may call its trial dead
    # (one on this host also sees that its sweep's process is gone): Optuna's own rule.
    import optuna

    beats = optuna.storages.RDBStorage(storage, heartbeat_interval=1, grace_period=2)
    study_id = beats.get_study_id_from_name(STUDY)
    wait_until(lambda: beats._get_stale_trial_ids(study_id), "a stale heartbeat", timeout=30)
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
