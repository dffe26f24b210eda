"""Fault 9: a disk that fills up during a run must not leave it RUNNING.

Real full file systems: small tmpfs mounts (the ``tmpfs`` fixture, root only) filled by
the test while the run trains. Artifacts on a full disk: the run ends FAILED and the
error says the disk is full. The store itself on a full disk: the run cannot even be
closed, so the error says so and the next run in the experiment ends it (KILLED, tagged
learnai.reaped). (A disk that fills during one of SQLite's transactions frees that
transaction's journal as it rolls back, and the run may then close itself FAILED; the
test fills the disk between two transactions, so that it cannot.)
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers.cli import TINY, finish, run_learnai, start_learnai
from helpers.polling import wait_for_runs, wait_until
from helpers.processes import stop_group

pytestmark = [pytest.mark.e2e, pytest.mark.root]
# Long enough to fill the disk while it trains (seconds here), short enough to finish.
LONG = (*TINY, "trainer.epochs=8000", "tracking.flush_every_s=0.5")
UNTIL_FULL = ("trainer.epochs=100000000", "tracking.flush_every_s=0.5")  # ends at the full disk


def _fill(disk: Path) -> Path:
    """Write zeros into ``disk`` until the file system refuses (ENOSPC).

    Unbuffered: a buffered file keeps the tail of a short last write and flushes it
    again on close, which raises ENOSPC once more (when the room left ends within the
    last page of a chunk, which the run's own writes make a matter of chance).
    """
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    return filler


def _fill_between_transactions(job: subprocess.Popen[str], disk: Path) -> Path:
    """:func:`_fill` while the job's process group is stopped (SIGSTOP) with no SQLite
    transaction open on ``disk`` (no ``mlflow.db-journal``): its next write then finds
    no room at all, not even the room a rolled-back transaction's journal frees."""
    journal = disk / "mlflow.db-journal"

    def stopped_between_transactions() -> bool:
        stop_group(job.pid)
        if not journal.exists():
            return True  # left stopped
        os.killpg(job.pid, signal.SIGCONT)  # mid-transaction: let it run on a little
        return False

    try:
        wait_until(
            stopped_between_transactions,
            "the run's store between two transactions",
            timeout=60,
            job=job,
            every=0.01,
        )
    except BaseException:
        os.killpg(job.pid, signal.SIGKILL)
        raise
    try:
        return _fill(disk)
    finally:
        os.killpg(job.pid, signal.SIGCONT)


def _wait_running(job: subprocess.Popen[str], uri: str) -> str:
    """The id of the job's RUNNING run (the job is killed if none shows up)."""
    try:
        runs = wait_for_runs(uri, "learnai", children=False, running=True, job=job)
    except BaseException:
        os.killpg(job.pid, signal.SIGKILL)
        raise
    return runs[0].info.run_id


def test_artifacts_on_a_full_disk_end_the_run_failed(
    tmp_path: Path, tmpfs: Callable[..., Path]
) -> None:
    from mlflow import MlflowClient

    disk = tmpfs(size="2m")
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    job = start_learnai(
        tmp_path, f"tracking.uri={uri}", f"tracking.artifact_location={disk}", *LONG
    )
    run_id = _wait_running(job, uri)
    _fill(disk)
    output = finish(job)
    assert job.returncode != 0, output
    assert "learnai: the disk is full" in output, output[-3000:]
    assert "Traceback" not in output
    assert MlflowClient(tracking_uri=uri).get_run(run_id).info.status == "FAILED"


def test_a_store_on_a_full_disk_is_closed_by_the_next_run(
    tmp_path: Path, tmpfs: Callable[..., Path]
) -> None:
    from mlflow import MlflowClient

    # The run's metrics alone fill 8 MiB in about 25 s; the test fills it first, within a
    # second of the run showing up.
    disk = tmpfs(size="8m")
    uri = f"sqlite:///{disk / 'mlflow.db'}"
    artifacts = f"tracking.artifact_location={tmp_path / 'artifacts'}"
    job = start_learnai(tmp_path, f"tracking.uri={uri}", artifacts, *TINY, *UNTIL_FULL)
    run_id = _wait_running(job, uri)
    filler = _fill_between_transactions(job, disk)
    output = finish(job)
    assert job.returncode != 0
    assert "the disk is full" in output, output[-3000:]

    # The next start refuses a full disk in one line, before creating anything...
    proc = run_learnai(tmp_path, f"tracking.uri={uri}", artifacts, *TINY, expect=None)
    assert proc.returncode != 0 and "the disk is full" in proc.stderr, proc.stderr
    # ...and once there is room again, it closes the run the full disk left RUNNING.
    filler.unlink()
    run_learnai(tmp_path, f"tracking.uri={uri}", artifacts, *TINY)
    old = MlflowClient(tracking_uri=uri).get_run(run_id)
    assert old.info.status == "KILLED"  # what the next start makes of an orphan
    assert old.data.tags["learnai.reaped"] == "process gone"


@pytest.mark.parametrize("sweeper", ["basic", "optuna"])
def test_a_full_artifact_disk_mid_sweep_fails_the_sweep_and_ends_its_runs(
    tmp_path: Path, tmpfs: Callable[..., Path], sweeper: str
) -> None:
    """The store on a disk with room, the artifacts on one that fills while a job trains:
    the command exits non-zero, its line names the full disk (not the temporary folder
    the pictures were drawn in, on another disk), the job and the parent end FAILED."""
    from helpers.polling import wait_for_runs
    from mlflow import MlflowClient

    disk = tmpfs(size="2m")
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    if sweeper == "optuna":
        sweep = (
            "hydra/sweeper=optuna",
            "hydra.sweeper.n_trials=2",
            "optimizer.lr=interval(0.01,0.02)",
        )
    else:
        sweep = ("optimizer.lr=0.01,0.02",)
    job = start_learnai(
        tmp_path, "-m", *sweep, f"tracking.uri={uri}", f"tracking.artifact_location={disk}", *LONG
    )
    try:
        wait_for_runs(uri, "learnai", children=True, running=True, job=job)
    except BaseException:
        os.killpg(job.pid, signal.SIGKILL)
        raise
    _fill(disk)
    output = finish(job)
    assert job.returncode != 0, output[-3000:]
    lines = [line for line in output.splitlines() if line.startswith("learnai: the disk is full")]
    assert lines and all(f"writing {disk}/" in line for line in lines), output[-3000:]
    runs = MlflowClient(tracking_uri=uri).search_runs(["1"])
    statuses = {r.info.run_name: r.info.status for r in runs}
    assert "RUNNING" not in statuses.values(), statuses
    parents = [r for r in runs if r.data.tags.get("learnai.sweep") == "true"]
    assert [p.info.status for p in parents] == ["FAILED"], statuses
