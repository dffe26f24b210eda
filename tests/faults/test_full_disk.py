"""Fault 9: a disk that fills up during a run must not leave it RUNNING.

Real full file systems: small tmpfs mounts (root only; skipped elsewhere) filled by the
test while the run trains. Artifacts on a full disk: the run ends FAILED and the error
says the disk is full. The store itself on a full disk: the run cannot even be closed,
so the error says so and the next run in the experiment ends it (KILLED, tagged
learnai.reaped).
"""

from __future__ import annotations

import errno
import subprocess
from pathlib import Path

import pytest
from sweep_helpers import TINY, run_learnai, start_learnai, wait_for_runs

pytestmark = pytest.mark.slow
# Long enough to fill the disk while it trains (seconds here), short enough to finish.
LONG = (*TINY, "trainer.epochs=8000", "tracking.flush_every_s=0.5")
UNTIL_FULL = ("trainer.epochs=100000000", "tracking.flush_every_s=0.5")  # ends at the full disk


def _fill(disk: Path) -> Path:
    """Write zeros into ``disk`` until the file system refuses (ENOSPC)."""
    filler = disk / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    return filler


def _wait_running(job: subprocess.Popen[str], uri: str, child: bool = False) -> str:
    """A RUNNING run's id (with ``child``, a sweep job's: not the sweep's parent)."""
    return wait_for_runs(uri, "learnai", children=child, running=True, job=job)[0].info.run_id


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

    disk = tmpfs(size="8m")
    uri = f"sqlite:///{disk / 'mlflow.db'}"
    artifacts = f"tracking.artifact_location={tmp_path / 'artifacts'}"
    job = start_learnai(tmp_path, f"tracking.uri={uri}", artifacts, *TINY, *UNTIL_FULL)
    run_id = _wait_running(job, uri)
    filler = _fill(disk)
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
