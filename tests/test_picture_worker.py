"""A sweep draws its runs' pictures on a worker process while the next job trains.

Real processes and real signals: the sweep runs in its own process group, as a
scheduler's job does; the worker is found among the sweep process's children (after the
tracking worker: tests/test_tracking_worker.py).
"""

from __future__ import annotations

import itertools
import os
import signal
import time
from pathlib import Path

import pytest
from sweep_helpers import (
    TINY,
    all_runs,
    artifact_names,
    finish,
    group_is_gone,
    mlflow_client,
    parent_runs,
    start_learnai,
    sweep_losing_a_worker,
    wait_for_child_runs,
    wait_for_workers,
)

pytestmark = pytest.mark.slow

RUN_FILES = {"config.yaml", "loss_curve.png", "fit.png", "training.gif", "predictions.npz"}


def test_a_sweep_draws_on_one_worker_and_leaves_no_process_behind(tmp_path: Path) -> None:
    proc = start_learnai(
        tmp_path, "-m", "optimizer.lr=0.01,0.1,1", "tracking.experiment=drawn", *TINY
    )
    wait_for_workers(proc)
    output = finish(proc)
    assert proc.returncode == 0, output[-3000:]
    assert group_is_gone(proc.pid), "a process of the sweep outlived it"
    assert "leaked" not in output and "Traceback" not in output, output[-3000:]

    client = mlflow_client(tmp_path)
    (parent,) = parent_runs(client, "drawn")
    children = sorted(
        (r for r in all_runs(client, "drawn") if r.info.run_id != parent.info.run_id),
        key=lambda r: r.info.start_time,
    )
    assert len(children) == 3
    for run in children:
        assert run.info.status == "FINISHED"
        assert artifact_names(client, run.info.run_id) == RUN_FILES
    # a run ends when its job did, not when its pictures were logged during the next job
    for run, later in itertools.pairwise(children):
        assert run.info.end_time <= later.info.start_time
    assert {"comparison.png", "side_by_side.gif"} <= artifact_names(client, parent.info.run_id)


def test_a_killed_worker_costs_no_pictures(tmp_path: Path) -> None:
    """SIGKILL (the OOM killer) on the worker: the sweep draws the rest itself."""
    code, output = sweep_losing_a_worker(tmp_path, "lost", "picture")
    assert code == 0, output[-3000:]
    client = mlflow_client(tmp_path)
    (parent,) = parent_runs(client, "lost")
    children = [r for r in all_runs(client, "lost") if r.info.run_id != parent.info.run_id]
    assert len(children) == 4
    for run in children:
        assert run.info.status == "FINISHED", output[-3000:]
        assert artifact_names(client, run.info.run_id) == RUN_FILES
    assert "side_by_side.gif" in artifact_names(client, parent.info.run_id)


def test_sigterm_to_the_group_keeps_the_finished_jobs_pictures(tmp_path: Path) -> None:
    """A scheduler's cancel reaches the worker too: the run it was drawing still gets
    its files and ends FINISHED; the job that was training ends KILLED."""
    proc = start_learnai(
        tmp_path,
        "-m",
        "trainer.epochs=20,1000000",
        "tracking.experiment=cancelled",
        *[o for o in TINY if not o.startswith("trainer.epochs")],
    )
    wait_for_workers(proc)
    wait_for_child_runs(tmp_path, "cancelled", 2)
    time.sleep(1.0)  # the second job is training
    os.killpg(proc.pid, signal.SIGTERM)
    output = finish(proc)
    assert proc.returncode == 128 + signal.SIGTERM, output[-3000:]
    assert group_is_gone(proc.pid), "a process of the sweep outlived it"
    client = mlflow_client(tmp_path)
    (parent,) = parent_runs(client, "cancelled")
    assert parent.info.status == "KILLED"
    children = {
        r.data.params["trainer.epochs"]: r
        for r in all_runs(client, "cancelled")
        if r.info.run_id != parent.info.run_id
    }
    assert children["20"].info.status == "FINISHED", output[-3000:]
    assert artifact_names(client, children["20"].info.run_id) == RUN_FILES
    assert children["1000000"].info.status == "KILLED"
