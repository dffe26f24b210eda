"""A sweep's store calls run in its tracking worker: the sweep process never imports
MLflow, and what the worker does or says still reaches the store and the console.

Real processes and real signals, as in tests/test_picture_worker.py.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest
from sweep_helpers import (
    TINY,
    all_runs,
    artifact_names,
    group_is_gone,
    mlflow_client,
    parent_runs,
    run_python,
    start_learnai,
    sweep_losing_a_worker,
    tracking_uri,
    wait_for_workers,
)

pytestmark = pytest.mark.slow

RUN_FILES = {"config.yaml", "loss_curve.png", "fit.png", "training.gif", "predictions.npz"}

# learnai's command line, reporting at exit which heavy libraries its process imported.
WATCHED = """
import atexit, sys
def report():
    loaded = [m for m in ("mlflow", "sqlalchemy", "matplotlib") if m in sys.modules]
    print("imported here:", ",".join(loaded) or "none", file=sys.stderr)
atexit.register(report)
sys.argv = ["learnai", *sys.argv[1:]]
from learnai.cli import main
main()
"""


def test_the_sweep_process_leaves_mlflow_and_the_plots_to_its_workers(tmp_path: Path) -> None:
    proc = run_python(
        tmp_path, "-c", WATCHED, "-m", "optimizer.lr=0.01,1", "tracking.experiment=lean", *TINY
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert "imported here: none" in output, output[-3000:]
    client = mlflow_client(tmp_path)
    (parent,) = parent_runs(client, "lean")
    children = [r for r in all_runs(client, "lean") if r.info.run_id != parent.info.run_id]
    assert sorted(r.data.params["optimizer.lr"] for r in children) == ["0.01", "1.0"]
    for run in children:
        assert run.info.status == "FINISHED"
        assert {"train_loss", "val_loss", "val_r2"} <= set(run.data.metrics)
        assert run.data.tags["learnai.pid"] == str(parent.data.tags["learnai.pid"])
        assert artifact_names(client, run.info.run_id) == RUN_FILES
    assert parent.info.status == "FINISHED"
    assert {"comparison.png", "side_by_side.gif"} <= artifact_names(client, parent.info.run_id)


def test_a_killed_tracking_worker_loses_no_run(tmp_path: Path) -> None:
    """SIGKILL (the OOM killer) on the tracking worker: the sweep writes the rest itself."""
    code, output = sweep_losing_a_worker(tmp_path, "lost", "tracking")
    assert code == 0, output[-3000:]
    assert "tracking worker stopped; this process writes to the store" in output
    client = mlflow_client(tmp_path)
    (parent,) = parent_runs(client, "lost")
    assert parent.info.status == "FINISHED"
    children = [r for r in all_runs(client, "lost") if r.info.run_id != parent.info.run_id]
    finished = [r for r in children if r.info.status == "FINISHED"]
    lrs = sorted(r.data.params["optimizer.lr"] for r in finished)
    assert lrs == ["0.01", "0.02", "0.03", "1.0"]
    for run in finished:
        assert artifact_names(client, run.info.run_id) == RUN_FILES
    # a run the worker created as it died (its id never came back) is ended, not left open
    assert all(r.info.status in ("FINISHED", "KILLED") for r in children), output[-3000:]
    assert "side_by_side.gif" in artifact_names(client, parent.info.run_id)


def test_what_the_worker_logs_reaches_the_console(tmp_path: Path) -> None:
    """The worker repairs runs left RUNNING by a dead process: its warning is the sweep's."""
    from mlflow import MlflowClient

    gone = subprocess.Popen(["true"])
    gone.wait()
    (tmp_path / "mlruns").mkdir()
    client = MlflowClient(tracking_uri=tracking_uri(tmp_path))
    experiment = client.create_experiment("repaired")
    stale = client.create_run(
        experiment,
        tags={"learnai.host": socket.gethostname(), "learnai.pid": str(gone.pid)},
    )
    proc = run_python(
        tmp_path, "-m", "learnai", "-m", "optimizer.lr=0.01", "tracking.experiment=repaired", *TINY
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert "1 run(s) left RUNNING by a process that is gone: ended KILLED" in output, output
    assert client.get_run(stale.info.run_id).info.status == "KILLED"


def test_no_worker_outlives_a_killed_command(tmp_path: Path) -> None:
    """SIGKILL on the command alone (the OOM killer): its workers go too, and so its
    output pipes close (a caller waiting for them is not left hanging)."""
    long = [o for o in TINY if not o.startswith("trainer.epochs")]
    proc = start_learnai(tmp_path, "trainer.epochs=100000000", "tracking.experiment=k", *long)
    wait_for_workers(proc)  # a single run starts its picture worker once its run exists
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)  # EOF on both pipes: every process holding them is gone
    assert group_is_gone(proc.pid), "a worker outlived the killed command"


def test_a_run_started_without_waiting_keeps_every_write_in_order(tmp_path: Path) -> None:
    """A single run trains while the worker still imports MLflow and creates the store:
    what it writes meanwhile is held and lands once the run exists, and the run's start
    time is when it was asked for, not when the store got to it."""
    import time

    from learnai import tracking, tracking_worker

    uri = tracking_uri(tmp_path)
    tracking_worker.start(uri)
    try:
        asked = int(time.time() * 1000)
        recorder = tracking.RunRecorder.start(uri, "lazy", run_name="early", wait=False)
        assert not recorder.started, "the worker is still importing MLflow"
        recorder.log_params({"optimizer.lr": "0.01"})
        recorder.add_series("train_loss", [3.0, 2.0, 1.0], start_step=1)
        recorder.flush(force=False)  # a timed flush does not wait for the run
        recorder.set_tags({"outcome": "converged"})
        recorder.add_metrics({"val_r2": 0.9}, step=3)
        recorder.end("FINISHED")
        assert recorder.run_name == "early"
    finally:
        tracking_worker.stop()
    client = mlflow_client(tmp_path)
    (run,) = all_runs(client, "lazy")
    assert run.info.run_id == recorder.run_id
    assert run.info.status == "FINISHED"
    assert asked <= run.info.start_time <= asked + 1000
    history = client.get_metric_history(run.info.run_id, "train_loss")
    assert [(m.step, m.value) for m in history] == [(1, 3.0), (2, 2.0), (3, 1.0)]
    assert all(run.info.start_time <= m.timestamp <= run.info.end_time for m in history)
    assert run.data.params == {"optimizer.lr": "0.01"}
    assert run.data.tags["outcome"] == "converged"
    assert run.data.metrics["val_r2"] == 0.9


def test_a_run_that_cannot_be_created_ends_nothing_and_says_why(tmp_path: Path) -> None:
    """The worker's refusal comes back where the run is next needed; ending it despite
    that does not raise (there is no run to end)."""
    from mlflow import MlflowClient

    from learnai import tracking, tracking_worker
    from learnai.config import ConfigError

    uri = tracking_uri(tmp_path)
    client = MlflowClient(tracking_uri=uri)
    client.delete_experiment(client.create_experiment("gone"))
    tracking_worker.start(uri)
    try:
        recorder = tracking.RunRecorder.start(uri, "gone", wait=False)
        recorder.log_params({"a": "1"})
        with pytest.raises(ConfigError, match="deleted"):
            recorder.end("FINISHED")
        recorder.end_despite("KILLED")
        with pytest.raises(ConfigError):
            recorder.run_id  # noqa: B018
    finally:
        tracking_worker.stop()


def test_a_single_run_trains_beside_its_workers(tmp_path: Path) -> None:
    """A single run on a fresh store: created while it trains, its history inside its
    start and end, and one core left to the workers that start meanwhile."""
    from sweep_helpers import run_learnai

    tiny = [o for o in TINY if not o.startswith("trainer.num_threads=")]
    run_learnai(tmp_path, "tracking.experiment=single", *tiny)  # threads: learnai's choice
    client = mlflow_client(tmp_path)
    (run,) = all_runs(client, "single")
    assert run.info.status == "FINISHED"
    assert artifact_names(client, run.info.run_id) >= RUN_FILES
    history = client.get_metric_history(run.info.run_id, "val_loss")
    assert history and all(run.info.start_time <= m.timestamp <= run.info.end_time for m in history)
    cores = len(os.sched_getaffinity(0))
    assert run.data.tags["torch_threads"] == str(max(1, cores - 1))


def test_a_run_started_without_waiting_survives_a_killed_worker(tmp_path: Path) -> None:
    """SIGKILL on the worker while it is still creating a run: this process creates the
    run itself, with every write it held, and says so once."""
    import logging
    import multiprocessing

    from learnai import tracking, tracking_worker

    uri = tracking_uri(tmp_path)
    tracking_worker.start(uri)
    try:
        recorder = tracking.RunRecorder.start(uri, "orphan", run_name="held", wait=False)
        recorder.log_params({"optimizer.lr": "0.01"})
        recorder.add_series("val_loss", [2.0, 1.0], start_step=1)
        (worker,) = multiprocessing.active_children()
        os.kill(worker.pid, signal.SIGKILL)
        worker.join(10)
        records: list[logging.LogRecord] = []
        handler = logging.Handler()
        handler.emit = records.append  # type: ignore[method-assign]
        logging.getLogger("learnai").addHandler(handler)
        try:
            recorder.end("FINISHED")
        finally:
            logging.getLogger("learnai").removeHandler(handler)
        assert [r.getMessage() for r in records if "worker stopped" in r.getMessage()]
    finally:
        tracking_worker.stop()
    client = mlflow_client(tmp_path)
    (run,) = all_runs(client, "orphan")
    assert (run.info.status, run.info.run_name) == ("FINISHED", "held")
    assert run.data.params == {"optimizer.lr": "0.01"}
    history = client.get_metric_history(run.info.run_id, "val_loss")
    assert [(m.step, m.value) for m in history] == [(1, 2.0), (2, 1.0)]


def test_a_call_after_the_worker_died_between_calls_is_made_here(tmp_path: Path) -> None:
    """The pool already knows its worker is gone when the next call is handed to it."""
    import multiprocessing
    import time

    from learnai import tracking_worker

    tracking_worker.start()
    try:
        worker_pid = tracking_worker.call(os.getpid)
        assert worker_pid != os.getpid()
        (worker,) = multiprocessing.active_children()
        os.kill(worker.pid, signal.SIGKILL)
        worker.join(10)
        time.sleep(0.5)  # the pool's own thread marks it broken
        assert tracking_worker.call(os.getpid) == os.getpid()
        assert not tracking_worker.active()
    finally:
        tracking_worker.stop()
