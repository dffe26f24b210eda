"""Fault 6: first use of a store races with other processes creating its schema.

Several workers (and ``mlflow ui`` / ``optuna-dashboard`` started through
``python -m learnai.tracking.stores prepare``) opening one fresh store must all succeed:
schema creation happens once, under a lock (a file lock for SQLite,
``pg_advisory_lock`` for PostgreSQL). The races show that all succeed; that the lock is
what makes them succeed is shown deterministically by ``prepare`` waiting while this
process holds it. MLflow's own client takes no lock: learnai, finding such a client's
schema half made, tries again once it is whole (shown with the client frozen mid-way).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.polling import wait_until
from helpers.processes import asleep, stop_group
from helpers.servers import free_port

pytestmark = pytest.mark.e2e

# A worker says "ready" once its slow imports are done, then opens the store when its
# stdin closes: the test closes all of them at once.
WORKER = """
import sys
kind, uri = sys.argv[1:3]
import mlflow, optuna
from learnai.tracking.stores import open_optuna_storage, open_store
print("ready", flush=True)
sys.stdin.read()
(open_store if kind == "mlflow" else open_optuna_storage)(uri)
"""


def _race(kind: str, uri: str, workers: int = 3) -> list[subprocess.Popen[str]]:
    """Start ``workers`` processes that open ``uri`` at the same instant; wait for them."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, kind, uri],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(workers)
    ]
    try:
        for p in procs:
            wait_until(lambda p=p: select.select([p.stdout], [], [], 0)[0], "a worker", 120)
            line = p.stdout.readline()  # "ready" once its imports are done
            assert line == "ready\n", line + p.stdout.read()
        for p in procs:
            p.stdin.close()  # go
        for p in procs:
            p.wait(timeout=180)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    return procs


def _tables(uri: str) -> set[str]:
    """The tables of the store at ``uri`` (none for a SQLite file not made yet: it is
    not created by looking)."""
    from sqlalchemy import create_engine, inspect

    from learnai.tracking.uris import sqlite_path

    db = sqlite_path(uri)
    if db is not None and not db.exists():
        return set()
    engine = create_engine(uri)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize(("kind", "table"), [("mlflow", "experiments"), ("optuna", "studies")])
def test_workers_on_a_fresh_postgres_database_all_succeed(
    pg_database, kind: str, table: str
) -> None:
    uri = pg_database()
    procs = _race(kind, uri)
    outputs = [p.stdout.read() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], "\n---\n".join(outputs)
    assert table in _tables(uri)


def test_workers_on_a_fresh_sqlite_file_all_succeed(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    procs = _race("mlflow", uri)
    outputs = [p.stdout.read() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], "\n---\n".join(outputs)
    assert "experiments" in _tables(uri)


def _prepare(uri: str, kind: str = "mlflow") -> subprocess.Popen[str]:
    """``python -m learnai.tracking.stores prepare [--optuna] URI``: what ``make ui`` and
    ``make dashboard`` run first."""
    flags = ["--optuna"] if kind == "optuna" else []
    return subprocess.Popen(
        [sys.executable, "-m", "learnai.tracking.stores", "prepare", *flags, uri],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@contextlib.contextmanager
def _watching(uri: str) -> Iterator[object]:
    """An autocommit connection to the PostgreSQL database ``uri`` (each query sees the
    server's state now)."""
    import psycopg

    with psycopg.connect(uri, autocommit=True, connect_timeout=5) as conn:
        yield conn


def _waiting_backends(conn: object, on: str) -> int:
    """Sessions of this database that wait for a lock of kind ``on`` (``advisory``: a
    ``pg_advisory_lock``; ``transactionid``: rows or tables another transaction is
    creating)."""
    return conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND wait_event = %s",
        (on,),
    ).fetchone()[0]


@pytest.mark.parametrize(
    ("store", "kind"),
    [
        ("sqlite", "mlflow"),
        pytest.param("postgres", "mlflow", marks=pytest.mark.postgres),
        ("sqlite", "optuna"),  # the sweeper's lock is the same ``<db>.lock`` file
    ],
)
def test_prepare_waits_for_the_schema_lock(
    tmp_path: Path, request: pytest.FixtureRequest, store: str, kind: str
) -> None:
    """While this process holds learnai's schema lock (as a sweep creating the schema
    does), ``prepare`` waits without creating anything; then it makes one whole schema."""
    from learnai.tracking.stores import schema_lock

    if store == "sqlite":
        uri = f"sqlite:///{tmp_path / 'mlruns' / f'{kind}.db'}"
    else:
        uri = request.getfixturevalue("pg_database")()
    with schema_lock(uri):
        proc = _prepare(uri, kind)
        try:
            if store == "postgres":
                with _watching(uri) as conn:
                    wait_until(
                        lambda: _waiting_backends(conn, "advisory"),
                        "prepare waiting for the advisory lock",
                        timeout=120,
                        job=proc,
                    )
            else:  # filelock polls: prepare sleeps between tries, doing nothing else
                wait_until(asleep(proc.pid), "prepare waiting for the lock file", 120, proc)
            assert proc.poll() is None
            assert not _tables(uri), "prepare created tables under the lock"
        except BaseException:
            proc.kill()
            raise
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    _assert_one_whole_schema(uri, kind)


def _assert_one_whole_schema(uri: str, kind: str = "mlflow") -> None:
    """The tool's tables at its latest version, once: a plain MlflowClient or Optuna
    storage (each verifies the schema's version, and would create a missing table)
    reads it and adds nothing."""
    import optuna
    from mlflow import MlflowClient
    from sqlalchemy import create_engine, text

    tables = _tables(uri)
    if kind == "mlflow":
        assert {"experiments", "runs", "metrics", "alembic_version"} <= tables, tables
        experiments = MlflowClient(tracking_uri=uri).search_experiments()
        assert [e.name for e in experiments] == ["Default"]
    else:
        assert {"studies", "trials", "alembic_version"} <= tables, tables
        assert optuna.get_all_study_names(uri) == []
    assert _tables(uri) == tables
    engine = create_engine(uri)
    try:
        with engine.connect() as conn:
            versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
    finally:
        engine.dispose()
    assert len(versions) == 1, versions


def test_prepare_reports_a_dead_store_in_one_line() -> None:
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


def _half_made(conn: object, *, frozen: bool = False) -> bool:
    """MLflow's first tables are committed and another session of this database is
    inside a transaction that has changed the schema since (its migrations, not yet
    committed); ``frozen``: that session also waits for its client (idle in
    transaction), so it cannot be committing as we look."""
    return conn.execute(
        "SELECT to_regclass('public.experiments') IS NOT NULL AND EXISTS ("
        "  SELECT 1 FROM pg_stat_activity WHERE datname = current_database()"
        "  AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL"
        "  AND (NOT %s OR state = 'idle in transaction'))",
        (frozen,),
    ).fetchone()[0]


def _busy_backends(conn: object) -> int:
    """Other sessions of this database still running a statement."""
    return conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND state = 'active'"
    ).fetchone()[0]


@pytest.mark.postgres
def test_a_lockless_mlflow_client_creating_the_same_new_store_is_waited_out(
    pg_database,
) -> None:
    """MLflow's own client creates a fresh store's tables without any lock. Frozen
    (SIGSTOP) with the schema half made -- its first tables committed, its migrations
    under way -- it makes learnai's open fail its first try whatever the timing:
    learnai's migration waits for the client's uncommitted one, and fails once that
    commits. learnai tries again and finds the schema whole."""
    uri = pg_database()
    client = subprocess.Popen(
        [sys.executable, "-c", LOCKLESS_CLIENT, uri],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    learnai: subprocess.Popen[str] | None = None
    try:
        with _watching(uri) as conn:

            def frozen_half_made() -> bool:
                if not _half_made(conn):
                    return False
                stop_group(client.pid)
                # A statement it sent before it stopped (its COMMIT, say) runs to its end.
                wait_until(lambda: not _busy_backends(conn), "the client's statement done", 30)
                if _half_made(conn, frozen=True):
                    return True  # left stopped
                os.killpg(client.pid, signal.SIGCONT)  # it committed meanwhile
                return False

            wait_until(
                frozen_half_made,
                "the lock-less client stopped mid-migration",
                timeout=120,
                job=client,
                every=0.005,
            )
            learnai = _prepare(uri)
            wait_until(
                lambda: _waiting_backends(conn, "transactionid"),
                "learnai's open waiting for the client's uncommitted schema",
                timeout=120,
                job=learnai,
            )
        os.killpg(client.pid, signal.SIGCONT)
        client_output, _ = client.communicate(timeout=120)
        _out, err = learnai.communicate(timeout=120)
    finally:
        for proc in (client, learnai):
            if proc is not None and proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
                proc.kill()
    assert client.returncode == 0, client_output  # it finished its schema first
    assert learnai.returncode == 0, err
    _assert_one_whole_schema(uri)


# MLflow's own client creating a fresh SQLite store, SIGKILLed by the kernel at the
# first statement that starts with argv[2] (an OOM kill, or a plain `mlflow ui` racing a
# first run and crashing mid-way, leaves the same): SQLite commits each statement of
# Alembic's batch migrations on its own, so the killed migration's copy table stays.
KILLED_MID_MIGRATION = """
import os, signal, sys
from sqlalchemy import event
from sqlalchemy.engine import Engine

@event.listens_for(Engine, "connect")
def _trace(dbapi_conn, _record):
    def on_statement(sql):
        if sql.lstrip().upper().startswith(sys.argv[2]):
            os.kill(os.getpid(), signal.SIGKILL)
    dbapi_conn.set_trace_callback(on_statement)

from mlflow import MlflowClient
MlflowClient(sys.argv[1]).search_experiments()
"""


def _kill_mid_migration(uri: str, statement: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_MID_MIGRATION, uri, statement],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert {t for t in _tables(uri) if t.startswith("_alembic_tmp_")}, "nothing left half-made"


def test_a_store_left_half_migrated_is_mended_by_the_next_run(tmp_path: Path) -> None:
    """The killed migration had copied ``latest_metrics`` into its ``_alembic_tmp_``
    table, the original still whole: the next run drops the leftover, migrates again
    under learnai's lock, and is recorded; ``learnai runs`` reads it."""
    from helpers.cli import TINY_NO_ANIMATION, run_learnai
    from helpers.stores import mlflow_client, only_run, tracking_uri

    uri = tracking_uri(tmp_path)
    _kill_mid_migration(uri, "INSERT INTO _ALEMBIC_TMP_LATEST_METRICS")
    run_learnai(tmp_path, "tracking.experiment=mended", *TINY_NO_ANIMATION)
    _assert_one_whole_schema_with(uri, experiments={"Default", "mended"})
    assert only_run(mlflow_client(tmp_path), "mended").info.status == "FINISHED"
    listing = run_learnai(tmp_path, "runs")
    assert "mended" in listing.stdout + listing.stderr


def test_a_half_done_migration_step_that_cannot_run_again_is_named_in_one_line(
    tmp_path: Path,
) -> None:
    """Killed in a step that had already added a column (``metrics.step``) before its
    copy: that step cannot run again, so nothing is guessed; ``prepare`` says what
    happened and what to do, in one line."""
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    _kill_mid_migration(uri, "INSERT INTO _ALEMBIC_TMP_METRICS")
    proc = _prepare(uri)
    _out, err = proc.communicate(timeout=180)
    assert proc.returncode == 2, err
    lines = [line for line in err.splitlines() if line.startswith("learnai:")]
    assert len(lines) == 1 and "half-migrated by a process that died" in lines[0], err
    assert "restore a backup" in lines[0] and "Traceback" not in err, err


def _assert_one_whole_schema_with(uri: str, experiments: set[str]) -> None:
    """MLflow's tables at its latest version, no leftover copy, the given experiments."""
    from mlflow import MlflowClient

    tables = _tables(uri)
    assert {"experiments", "runs", "latest_metrics", "alembic_version"} <= tables, tables
    assert not {t for t in tables if t.startswith("_alembic_tmp_")}, tables
    found = MlflowClient(tracking_uri=uri).search_experiments()  # verifies the version
    assert {e.name for e in found} == experiments
