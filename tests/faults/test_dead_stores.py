"""Fault 7: unreachable stores are reported within seconds, in one line, password masked.

Before: nothing listening at an ``http://`` URI took 251 s and a traceback, a closed
PostgreSQL port 107 s, and a server killed mid-sweep 8.3 min to fail its job.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from helpers.cli import TINY, finish, learnai_env, run_learnai, start_learnai
from helpers.polling import wait_for_runs
from helpers.servers import Server, free_port

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


@pytest.mark.e2e
def test_nothing_listening_at_an_http_uri(tmp_path: Path) -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    proc, took = _timed_run(tmp_path, f"tracking.uri={uri}")
    line = _one_line_error(proc)
    assert uri in line and "connection refused" in line, line
    assert took < BOUND_S, f"took {took:.0f} s"


@pytest.mark.e2e
def test_a_server_that_accepts_but_never_answers(tmp_path: Path) -> None:
    """A real listening socket that never accepts: connects succeed, replies never come."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        uri = f"http://127.0.0.1:{listener.getsockname()[1]}"
        proc, took = _timed_run(tmp_path, f"tracking.uri={uri}")
    line = _one_line_error(proc)
    assert uri in line and "no reply" in line, line
    assert took < BOUND_S + 10, f"took {took:.0f} s"  # 15 s read timeout + start-up


@pytest.mark.e2e
def test_a_closed_postgres_port_with_a_password(tmp_path: Path) -> None:
    uri = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{free_port()}/runs"
    proc, took = _timed_run(tmp_path, f"tracking.uri='{uri}'")
    line = _one_line_error(proc)
    assert "cannot connect" in line and "postgres:***@127.0.0.1" in line, line
    assert PASSWORD not in proc.stdout + proc.stderr
    assert "s3" not in line
    assert took < BOUND_S, f"took {took:.0f} s"
    assert not (tmp_path / "mlruns").exists()


@pytest.mark.e2e
@pytest.mark.postgres
def test_a_missing_postgres_database(tmp_path: Path, pg_database) -> None:
    uri = pg_database() + "_missing"
    proc, _ = _timed_run(tmp_path, f"tracking.uri={uri}")
    line = _one_line_error(proc)
    assert "does not exist" in line and uri in line, line


def test_a_dead_optuna_storage_fails_fast_naming_its_key() -> None:
    """In-process: a refused connection is one masked line, at once."""
    from learnai.tracking.stores import open_optuna_storage
    from learnai.tracking.uris import StoreError

    url = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{free_port()}/study"
    start = time.monotonic()
    with pytest.raises(StoreError) as err:
        open_optuna_storage(url)
    assert time.monotonic() - start < BOUND_S
    message = str(err.value)
    assert message.startswith("hydra.sweeper.storage:") and PASSWORD not in message
    assert "\n" not in message


@pytest.mark.e2e
def test_a_server_killed_mid_run_ends_the_job_and_the_next_run_repairs_it(
    tmp_path: Path, mlflow_server: Server
) -> None:
    from mlflow import MlflowClient

    # MLflow's own (minutes-long) HTTP retries, unless learnai bounds them itself.
    env = {k: v for k, v in learnai_env().items() if not k.startswith("MLFLOW_HTTP_REQUEST")}
    job = start_learnai(
        tmp_path,
        f"tracking.uri={mlflow_server.uri}",
        *TINY,
        "trainer.epochs=100000000",
        "tracking.flush_every_s=0.5",
        env=env,
    )
    try:
        (training,) = wait_for_runs(
            mlflow_server.uri, "learnai", children=False, running=True, training=True, job=job
        )
    except BaseException:
        os.killpg(job.pid, signal.SIGKILL)
        raise
    run_id = training.info.run_id
    mlflow_server.kill()
    killed = time.monotonic()
    output = finish(job, timeout=180)
    took = time.monotonic() - killed
    assert job.returncode != 0
    assert "lost the store" in output and mlflow_server.uri in output, output[-3000:]
    assert took < 60, f"the job took {took:.0f} s to end after its server died"

    # Same store, served again: the next run closes the one the dead server left RUNNING.
    server = Server.mlflow(mlflow_server.root).start()
    try:
        run_learnai(tmp_path, f"tracking.uri={server.uri}", *TINY)
        old = MlflowClient(tracking_uri=server.uri).get_run(run_id)
        assert old.info.status == "KILLED"  # what the next start makes of an orphan
        assert old.data.tags["learnai.reaped"] == "process gone"
    finally:
        server.kill()


def _start_and_kill_server(
    cwd: Path, server: Server, *args: str
) -> tuple[subprocess.Popen[str], float]:
    """Start learnai on ``server``; once a run trains, SIGKILL the server."""
    job = start_learnai(
        cwd,
        *args,  # -m first: Hydra's flags come before the overrides
        f"tracking.uri={server.uri}",
        *TINY,
        "trainer.epochs=100000000",
        "tracking.flush_every_s=0.5",
        "tracking.experiment=dying",
    )
    try:
        sweep = "-m" in args
        wait_for_runs(server.uri, "dying", children=sweep, running=True, training=True, job=job)
    except BaseException:
        os.killpg(job.pid, signal.SIGKILL)
        raise
    server.kill()
    return job, time.monotonic()


@pytest.mark.e2e
def test_a_server_killed_mid_sweep_is_one_line(tmp_path: Path, mlflow_server: Server) -> None:
    """Before: 142 lines, 6 chained tracebacks (Hydra's 'Error executing job'), a
    urllib3 warning per retry; an Optuna sweep, a traceback per failed trial."""
    job, killed = _start_and_kill_server(tmp_path, mlflow_server, "-m", "optimizer.lr=0.01,0.02")
    output = finish(job, timeout=180)
    assert time.monotonic() - killed < 60
    assert job.returncode != 0
    assert "Traceback" not in output, output[-3000:]
    assert len(output.strip().splitlines()) <= 3, output[-3000:]
    (line,) = [line for line in output.splitlines() if line.startswith("learnai:")]
    assert "lost the store" in line and mlflow_server.uri in line, line


@pytest.mark.e2e
def test_a_run_that_cannot_be_ended_is_not_said_to_be_ended(
    tmp_path: Path, mlflow_server: Server
) -> None:
    """SIGTERM just after the server died: the run cannot be ended KILLED, and the
    output says so, without also saying that it was."""
    job, _ = _start_and_kill_server(tmp_path, mlflow_server)
    os.killpg(job.pid, signal.SIGTERM)
    output = finish(job, timeout=120)
    assert job.returncode == 128 + signal.SIGTERM, output[-3000:]
    assert "could not end run" in output, output[-3000:]
    assert "ended KILLED" not in output, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
