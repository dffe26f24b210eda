"""Fault 7: unreachable stores are reported within seconds, in one line, password masked.

Before: nothing listening at an ``http://`` URI took 251 s and a traceback, a closed
PostgreSQL port 107 s, and a server killed mid-sweep 8.3 min to fail its job.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fault_helpers import MlflowServer, free_port
from sweep_helpers import TINY, learnai_env, run_learnai

PASSWORD = "s3:cr/t@x"  # ':', '/' and '@' in a password are legal and must stay hidden
BOUND_S = 30


def _one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("learnai:")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def _timed_run(cwd: Path, *overrides: str) -> tuple[subprocess.CompletedProcess[str], float]:
    start = time.monotonic()
    proc = run_learnai(cwd, *overrides, *TINY, expect=None)
    return proc, time.monotonic() - start


def test_nothing_listening_at_an_http_uri(tmp_path: Path) -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    proc, took = _timed_run(tmp_path, f"tracking.uri={uri}")
    line = _one_line_error(proc)
    assert uri in line and "connection refused" in line, line
    assert took < BOUND_S, f"took {took:.0f} s"


@pytest.mark.slow
def test_a_server_that_accepts_but_never_answers(tmp_path: Path) -> None:
    """A real listening socket that never accepts: connects succeed, replies never come."""
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        uri = f"http://127.0.0.1:{listener.getsockname()[1]}"
        proc, took = _timed_run(tmp_path, f"tracking.uri={uri}")
    line = _one_line_error(proc)
    assert uri in line and "no reply" in line, line
    assert took < BOUND_S + 10, f"took {took:.0f} s"  # 15 s read timeout + start-up


def test_a_closed_postgres_port_with_a_password(tmp_path: Path) -> None:
    pytest.importorskip("psycopg")
    uri = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{free_port()}/runs"
    proc, took = _timed_run(tmp_path, f"tracking.uri='{uri}'")
    line = _one_line_error(proc)
    assert "cannot connect" in line and "postgres:***@127.0.0.1" in line, line
    assert PASSWORD not in proc.stdout + proc.stderr
    assert "s3" not in line
    assert took < BOUND_S, f"took {took:.0f} s"
    assert not (tmp_path / "mlruns").exists()


def test_a_missing_postgres_database(tmp_path: Path, pg_database: str) -> None:
    uri = pg_database + "_missing"
    proc, _ = _timed_run(tmp_path, f"tracking.uri={uri}")
    line = _one_line_error(proc)
    assert "does not exist" in line and uri in line, line


def test_a_dead_optuna_storage_fails_fast_naming_its_key() -> None:
    pytest.importorskip("psycopg")
    from learnai.stores import StoreError, open_optuna_storage

    url = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{free_port()}/study"
    start = time.monotonic()
    with pytest.raises(StoreError) as err:
        open_optuna_storage(url)
    assert time.monotonic() - start < BOUND_S
    message = str(err.value)
    assert message.startswith("hydra.sweeper.storage:") and PASSWORD not in message
    assert "\n" not in message


def _wait_for_running_run(uri: str, timeout_s: float = 120) -> str:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        exp = client.get_experiment_by_name("learnai")
        if exp is not None:
            runs = client.search_runs([exp.experiment_id], "attributes.status = 'RUNNING'")
            if runs and runs[0].data.metrics:  # training, metrics flowing
                return runs[0].info.run_id
        time.sleep(0.5)
    raise AssertionError("no RUNNING run with metrics appeared")


@pytest.mark.slow
def test_a_server_killed_mid_run_ends_the_job_and_the_next_run_repairs_it(
    tmp_path: Path, mlflow_server: MlflowServer
) -> None:
    from mlflow import MlflowClient

    env = {k: v for k, v in learnai_env().items() if not k.startswith("MLFLOW_HTTP_REQUEST")}
    job = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "learnai",
            f"tracking.uri={mlflow_server.uri}",
            *TINY,
            "trainer.epochs=100000000",
            "tracking.flush_every_s=0.5",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        run_id = _wait_for_running_run(mlflow_server.uri)
        mlflow_server.kill()
        killed = time.monotonic()
        _out, err = job.communicate(timeout=180)
        took = time.monotonic() - killed
    finally:
        if job.poll() is None:
            os.kill(job.pid, signal.SIGKILL)
    assert job.returncode != 0
    assert "lost the store" in err and mlflow_server.uri in err, err[-3000:]
    assert took < 60, f"the job took {took:.0f} s to end after its server died"

    # Same store, server back: the next run closes the one the dead server left RUNNING.
    server = MlflowServer(mlflow_server.root, mlflow_server.port).start()
    try:
        run_learnai(tmp_path, f"tracking.uri={server.uri}", *TINY)
        old = MlflowClient(tracking_uri=server.uri).get_run(run_id)
        assert old.info.status == "KILLED"  # what the next start makes of an orphan
        assert old.data.tags["learnai.reaped"] == "process gone"
    finally:
        server.kill()
