"""Fault 6: first use of a store races with other processes creating its schema.

Several workers (and ``mlflow ui`` / ``optuna-dashboard`` started through
``python -m learnai.stores prepare``) opening one fresh store must all succeed: schema
creation happens once, under a lock (a file lock for SQLite, ``pg_advisory_lock`` for
PostgreSQL). Without the lock, three MLflow or Optuna workers on a fresh PostgreSQL
database crash with ``UniqueViolation`` in nearly every try.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from pathlib import Path

import pytest

WORKER = """
import sys, time
from pathlib import Path
kind, uri, ready, go = sys.argv[1:5]
import mlflow, optuna  # the slow imports happen before the start line
from learnai.stores import open_optuna_storage, open_store
Path(ready).touch()
while not Path(go).exists():
    time.sleep(0.002)
(open_store if kind == "mlflow" else open_optuna_storage)(uri)
"""


def _race(tmp_path: Path, kind: str, uri: str, workers: int = 3) -> list[subprocess.Popen[str]]:
    """Start ``workers`` processes that open ``uri`` at the same instant; wait for them."""
    go = tmp_path / "go"
    procs = []
    for i in range(workers):
        ready = tmp_path / f"ready{i}"
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", WORKER, kind, uri, str(ready), str(go)],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"ready{i}").exists() for i in range(workers)):
        assert time.monotonic() < deadline, "workers did not start"
        assert all(p.poll() is None for p in procs), [p.communicate()[0] for p in procs]
        time.sleep(0.05)
    go.touch()
    for p in procs:
        p.wait(timeout=180)
    return procs


def _tables(uri: str) -> set[str]:
    from sqlalchemy import create_engine, inspect

    engine = create_engine(uri)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "table"), [("mlflow", "experiments"), ("optuna", "studies")])
def test_workers_on_a_fresh_postgres_database_all_succeed(
    tmp_path: Path, pg_database: str, kind: str, table: str
) -> None:
    procs = _race(tmp_path, kind, pg_database)
    outputs = [p.communicate()[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], "\n---\n".join(outputs)
    assert table in _tables(pg_database)


@pytest.mark.slow
def test_workers_on_a_fresh_sqlite_file_all_succeed(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    procs = _race(tmp_path, "mlflow", uri)
    outputs = [p.communicate()[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], "\n---\n".join(outputs)
    assert "experiments" in _tables(uri)


def _prepare(uri: str, *flags: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "learnai.stores", "prepare", *flags, uri],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _prepare_waits_for(uri: str, table: str, *flags: str) -> None:
    """While this process holds the schema lock, ``prepare`` waits; then it succeeds."""
    from learnai.stores import schema_lock

    with schema_lock(uri):
        proc = _prepare(uri, *flags)
        time.sleep(8)  # its imports take ~3 s here; then it must block on the lock
        assert proc.poll() is None, f"prepare did not wait for the lock: {proc.communicate()}"
        assert table not in _tables(uri)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert table in _tables(uri)


@pytest.mark.slow
def test_prepare_waits_for_the_sqlite_schema_lock(tmp_path: Path) -> None:
    _prepare_waits_for(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}", "experiments")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("flags", "table"), [((), "experiments"), (("--optuna",), "studies")], ids=["mlflow", "optuna"]
)
def test_prepare_waits_for_the_postgres_advisory_lock(
    pg_database: str, flags: tuple[str, ...], table: str
) -> None:
    _prepare_waits_for(pg_database, table, *flags)


def test_prepare_reports_a_dead_store_in_one_line() -> None:
    from fault_helpers import free_port

    uri = f"postgresql://postgres:pa55@127.0.0.1:{free_port()}/nothing"
    proc = _prepare(uri)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "cannot connect" in lines[0], err
    assert "pa55" not in err and "postgres:***@" in err


LOCKLESS_CLIENT = """
import sys
from mlflow import MlflowClient
MlflowClient(sys.argv[1]).search_experiments()
"""


def _table_count(db: Path) -> int:
    """Tables in the SQLite file ``db``, read without creating or locking anything."""
    import sqlite3

    if not db.exists():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            return conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    except sqlite3.OperationalError:  # locked by the writer: nothing known yet
        return 0


@pytest.mark.slow
def test_a_lockless_mlflow_client_creating_the_same_new_store_is_waited_out(
    tmp_path: Path,
) -> None:
    """MLflow's own client creates a new store's tables without any lock: learnai, coming
    second while that creation is under way, waits for it to end instead of failing."""
    import mlflow  # noqa: F401  (imported before the race: open_store starts at once)

    from learnai.stores import open_store

    db = tmp_path / "mlruns" / "mlflow.db"
    db.parent.mkdir()
    uri = f"sqlite:///{db}"
    foreign = subprocess.Popen(
        [sys.executable, "-c", LOCKLESS_CLIENT, uri], stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 120
    while _table_count(db) == 0:  # its migrations are under way once tables exist
        assert time.monotonic() < deadline and foreign.poll() is None, foreign.communicate()
        time.sleep(0.01)
    client = open_store(uri)
    assert client.get_experiment_by_name("Default") is not None
    foreign.wait(timeout=120)
