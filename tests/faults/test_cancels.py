"""Fault 5: a cancel (SIGTERM to the process or its group, Ctrl-C) ends the command
within seconds whatever its store is doing, in one line.

Before: with PostgreSQL's tables locked by another session, a run hung silently and
ignored SIGTERM and Ctrl-C until the lock was released (150 s in the report): the signal
interrupted the blocked write, but ending the run KILLED went back to the same locked
table and waited forever. The runs a store cannot take any more stay RUNNING until the
next command on that store ends them KILLED.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.cli import TINY, finish, run_learnai, start_learnai
from helpers.polling import wait_for_runs, wait_until
from helpers.processes import asleep, stop_group
from helpers.servers import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

LONG = (
    "trainer.epochs=100000000",  # trains until stopped
    "trainer.progress=false",
    "trainer.animation.enabled=false",
    "trainer.num_threads=1",
    "tracking.flush_every_s=0.2",
    "tracking.experiment=cancelled",
)
CANCEL_BOUND_S = 25  # learnai's grace after a cancel (15 s) and the interpreter's exit


def _lock(conn, tables: list[str]) -> bool:
    """Try once to lock ``tables`` (the connection's lock_timeout bounds the wait)."""
    import psycopg

    try:
        conn.execute(f"LOCK TABLE {', '.join(tables)} IN ACCESS EXCLUSIVE MODE")
    except psycopg.errors.LockNotAvailable:
        conn.rollback()
        return False
    return True


def _learnai_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("learnai:")]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_cancel_ends_a_run_whose_store_tables_are_locked(
    tmp_path: Path, pg_database, sig: int
) -> None:
    import psycopg
    from mlflow import MlflowClient

    uri = pg_database()
    proc = start_learnai(tmp_path, f"tracking.uri={uri}", *LONG)
    # A lock request waits for the run's open transactions, and the run's next session
    # queues behind the request: MLflow nests sessions, so a request that lands
    # mid-write can wait for ever (PostgreSQL sees no cycle). Ask with a short
    # lock_timeout until the request lands between two writes.
    locker = psycopg.connect(uri, connect_timeout=5, options="-c lock_timeout=500")
    try:
        (run,) = wait_for_runs(uri, "cancelled", children=False, training=True, job=proc)
        query = "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        tables = [row[0] for row in locker.execute(query)]
        wait_until(lambda: _lock(locker, tables), "the tables locked between two writes", job=proc)
        wait_until(asleep(proc.pid), "the run blocked on the locked tables", job=proc)
        os.killpg(proc.pid, sig)
        signalled = time.monotonic()
        output = finish(proc, timeout=120)
        took = time.monotonic() - signalled
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        locker.rollback()  # the lock goes
        locker.close()
    assert took < CANCEL_BOUND_S, f"{took:.0f} s after the signal\n{output[-3000:]}"
    assert proc.returncode == 128 + sig, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert len(_learnai_lines(output)) == 1, output[-3000:]
    # The store could not take the run's end: the next command on it ends the run KILLED.
    run_learnai(tmp_path, f"tracking.uri={uri}", "tracking.experiment=cancelled", *TINY)
    assert MlflowClient(uri).get_run(run.info.run_id).info.status == "KILLED"


def test_a_cancel_ends_a_run_whose_postgres_server_froze(tmp_path: Path, pg_database) -> None:
    """The server stops answering mid-run (here: a proxy in front of it, SIGSTOPped): the
    blocked write, the cancel of its query and ending the run all wait on a silent
    socket (before: more than 5 minutes)."""
    from mlflow import MlflowClient

    uri = pg_database()
    port = free_port()
    proxy = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("tcp_proxy.py")), str(port), "127.0.0.1",
         "5432"],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        assert proxy.stdout.readline().strip() == "listening"
        proxied = uri.replace(":5432/", f":{port}/")
        proc = start_learnai(tmp_path, f"tracking.uri={proxied}", *LONG)
        try:
            (run,) = wait_for_runs(uri, "cancelled", children=False, training=True, job=proc)
            stop_group(proxy.pid)
            wait_until(asleep(proc.pid), "the run blocked on the frozen server", job=proc)
            os.killpg(proc.pid, signal.SIGTERM)
            signalled = time.monotonic()
            output = finish(proc, timeout=120)
            took = time.monotonic() - signalled
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    finally:
        os.killpg(proxy.pid, signal.SIGKILL)
        proxy.wait()
    assert took < CANCEL_BOUND_S, f"{took:.0f} s after the signal\n{output[-3000:]}"
    assert proc.returncode == 128 + signal.SIGTERM, output[-3000:]
    assert "Traceback" not in output and "psycopg" not in output, output[-3000:]
    assert len(_learnai_lines(output)) == 1, output[-3000:]
    run_learnai(tmp_path, f"tracking.uri={uri}", "tracking.experiment=cancelled", *TINY)
    assert MlflowClient(uri).get_run(run.info.run_id).info.status == "KILLED"
