"""Fault 9: a disk that fills up during a run must not leave it RUNNING.

Real full file systems: small tmpfs mounts (root only; skipped elsewhere) filled by the
test while the run trains. Artifacts on a full disk: the run ends FAILED and the error
says the disk is full. The store itself on a full disk: the run cannot even be closed,
so the error says so and the next run in the experiment ends it (KILLED, tagged
learnai.reaped). (A disk that fills during one of SQLite's transactions frees that
transaction's journal as it rolls back, and the run may then close itself FAILED; the
test fills the disk between two transactions, so that it cannot.)
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from sweep_helpers import TINY, proc_stat, run_learnai, start_learnai, wait_for_runs

pytestmark = pytest.mark.slow
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


def _group_stopped(pgid: int) -> bool:
    """Whether every process of group ``pgid`` is stopped (state T in /proc)."""
    states = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            fields = proc_stat(proc.name)
        except OSError:  # gone meanwhile
            continue
        if int(fields[2]) == pgid:
            states.append(fields[0])
    return bool(states) and all(state in "tTZX" for state in states)  # dead ones too


def _fill_between_transactions(job: subprocess.Popen[str], disk: Path) -> Path:
    """:func:`_fill` while the job's process group is stopped (SIGSTOP) with no SQLite
    transaction open on ``disk`` (no ``mlflow.db-journal``): its next write then finds
    no room at all, not even the room a rolled-back transaction's journal frees."""
    journal = disk / "mlflow.db-journal"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        os.killpg(job.pid, signal.SIGSTOP)
        while not _group_stopped(job.pid):
            time.sleep(0.001)
        if not journal.exists():
            break
        os.killpg(job.pid, signal.SIGCONT)
        time.sleep(0.01)
    else:
        os.killpg(job.pid, signal.SIGCONT)
        pytest.fail("the run's store was never found between two transactions")
    try:
        return _fill(disk)
    finally:
        os.killpg(job.pid, signal.SIGCONT)


def _wait_running(job: subprocess.Popen[str], uri: str, child: bool = False) -> str:
    """A RUNNING run's id (with ``child``, a sweep job's: not the sweep's parent)."""
    return wait_for_runs(uri, "learnai", children=child, running=True, job=job)[0].info.run_id


def test_fill_survives_a_short_last_write(tmpfs) -> None:
    """The helper itself: room that ends 4 KiB short of a chunk (one page) made the
    buffered version raise ENOSPC on close, as in a CI run where the store shared the
    disk."""
    disk = tmpfs(size="1m")
    (disk / "other").write_bytes(b"\0" * 4096)
    filler = _fill(disk)
    assert filler.stat().st_size == (1024 - 4) * 1024


def test_artifacts_on_a_full_disk_end_the_run_failed(tmp_path: Path, tmpfs) -> None:
    from mlflow import MlflowClient

    disk = tmpfs(size="2m")
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    job = start_learnai(
        tmp_path, f"tracking.uri={uri}", f"tracking.artifact_location={disk}", *LONG
    )
    run_id = _wait_running(job, uri)
    _fill(disk)
    _out, err = job.communicate(timeout=300)
    assert job.returncode != 0, err
    assert "learnai: the disk is full" in err, err[-3000:]
    assert "Traceback" not in err
    assert MlflowClient(tracking_uri=uri).get_run(run_id).info.status == "FAILED"


def test_a_store_on_a_full_disk_is_closed_by_the_next_run(tmp_path: Path, tmpfs) -> None:
    from mlflow import MlflowClient

    # The run's metrics alone fill 8 MiB in about 25 s; the test fills it first, within a
    # second of the run showing up.
    disk = tmpfs(size="8m")
    uri = f"sqlite:///{disk / 'mlflow.db'}"
    artifacts = f"tracking.artifact_location={tmp_path / 'artifacts'}"
    job = start_learnai(tmp_path, f"tracking.uri={uri}", artifacts, *TINY, *UNTIL_FULL)
    run_id = _wait_running(job, uri)
    filler = _fill_between_transactions(job, disk)
    _out, err = job.communicate(timeout=300)
    assert job.returncode != 0
    assert "the disk is full" in err, err[-3000:]

    # The next start refuses a full disk in one line, before creating anything...
    proc = run_learnai(tmp_path, f"tracking.uri={uri}", artifacts, *TINY, expect=None)
    assert proc.returncode != 0 and "the disk is full" in proc.stderr, proc.stderr
    # ...and once there is room again, it closes the run the full disk left RUNNING.
    filler.unlink()
    run_learnai(tmp_path, f"tracking.uri={uri}", artifacts, *TINY)
    old = MlflowClient(tracking_uri=uri).get_run(run_id)
    assert old.info.status == "KILLED"  # what the next start makes of an orphan
    assert old.data.tags["learnai.reaped"] == "process gone"


def test_a_sweeps_files_on_a_full_disk_end_its_runs_failed(tmp_path: Path, tmpfs) -> None:
    """A sweep's run is logged once its pictures are drawn (during the next job, or as
    the sweep ends): a disk full by then ends it FAILED, with the line a run gets."""
    from mlflow import MlflowClient

    disk = tmpfs(size="2m")
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    job = start_learnai(
        tmp_path,
        "-m",
        "trainer.seed=0",
        f"tracking.uri={uri}",
        f"tracking.artifact_location={disk}",
        *LONG,
    )
    _wait_running(job, uri, child=True)
    _fill(disk)
    out, err = job.communicate(timeout=300)
    output = out + err
    assert "its files could not be saved: the disk is full" in output, output[-3000:]
    assert "Traceback" not in output
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("learnai").experiment_id])
    assert len(runs) == 2  # the sweep's parent (its report cannot be saved) and its job
    assert {r.info.status for r in runs} == {"FAILED"}, output[-3000:]
