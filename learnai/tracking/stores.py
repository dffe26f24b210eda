"""Opening MLflow and Optuna stores safely: serialised schema creation, bounded waits.

Three things go wrong with stores that learnai does not own alone:

- **Schema races.** MLflow and Optuna create their tables on first use. Two processes
  doing it at once (two sweep workers, or a run and ``mlflow ui``) crash one of them.
  :func:`schema_lock` serialises it: a file lock for SQLite, a PostgreSQL advisory lock
  (``pg_advisory_lock`` on a connection held while the schema is created) for
  PostgreSQL, plus the per-URL lock file MLflow's own server takes for the same job.
  ``python -m learnai.stores prepare URI`` creates the schema under the same lock, so
  ``make ui`` / ``make dashboard`` never race a running sweep. MLflow's own client takes
  no lock: when it wins such a race, :func:`open_store` tries again once it is done.
- **Unbounded waits.** MLflow's HTTP client retries for minutes by default and its SQL
  store waits long on a closed port (measured: README, "How long learnai waits").
  :func:`bound_waits` sets shorter defaults (the user's environment wins) and
  PostgreSQL URIs get a ``connect_timeout`` and keepalives; see :data:`HTTP_DEFAULTS`
  and :data:`PG_CONNECT_ARGS`.
- **Unusable stores** are reported by :func:`learnai.store_checks.check_store` before any
  run or trial exists.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from filelock import FileLock, Timeout

from learnai.config import ConfigError
from learnai.secrets import mask_secrets

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from optuna.storages import RDBStorage

__all__ = [
    "HTTP_DEFAULTS",
    "StoreError",
    "bound_waits",
    "open_optuna_storage",
    "open_store",
    "prepare",
    "prepare_in_background",
    "schema_lock",
    "sqlite_path",
    "with_connect_timeout",
]

SQLITE_TIMEOUT_S = 60  # parallel jobs write to one file: wait for the lock, don't fail
SCHEMA_LOCK_TIMEOUT_S = 120  # creating MLflow's schema takes seconds; a minute is a hang
# Pauses before trying a fresh schema again after a lock-less creator raced ours (see
# _open_schema): a fresh store's migrations take ~1.5 s here, the racer is done by then.
SCHEMA_RETRY_PAUSES_S = (1.0, 2.0)
PG_CONNECT_TIMEOUT_S = 10
# libpq settings for every PostgreSQL connection: a connect waits at most 10 s, and a
# server that vanishes mid-query (no RST: power, network) is noticed within ~30 s
# (keepalives every 5 s after 10 s idle, 3 misses; unacknowledged sends 30 s).
# Statement and lock timeouts are left to the user (``options=-c statement_timeout=...``
# in the URI): a slow query or a lock wait is not a dead store.
PG_CONNECT_ARGS = {
    "connect_timeout": str(PG_CONNECT_TIMEOUT_S),
    "keepalives": "1",
    "keepalives_idle": "10",
    "keepalives_interval": "5",
    "keepalives_count": "3",
    "tcp_user_timeout": "30000",
}
# A dead MLflow server fails a call after at most 3 tries x 10 s + backoff (~32 s);
# a refused connection after ~3 s. MLflow's defaults (7 retries, 120 s) take minutes.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
}
# One key for every schema learnai creates in a database (advisory locks are per database).
_PG_LOCK_KEY = int.from_bytes(hashlib.sha256(b"learnai schema").digest()[:8], "big", signed=True)


class StoreError(ConfigError):
    """A store that cannot be used: the message is one line naming it (password masked).

    A :class:`~learnai.config.ConfigError`, so the CLI prints it as one line and exits 2.
    """


def bound_waits() -> None:
    """Default MLflow's HTTP client to bounded retries; values already set are kept."""
    for key, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)


def sqlite_path(uri: str) -> Path | None:
    """The database file behind a ``sqlite:///`` URI, or None for other stores."""
    if uri.startswith("sqlite:///") and ":memory:" not in uri:
        return Path(uri[len("sqlite:///") :].split("?")[0])
    return None


def is_postgres(uri: str) -> bool:
    return uri.split("://", 1)[0].split("+", 1)[0] in ("postgresql", "postgres")


def with_connect_timeout(uri: str) -> str:
    """A PostgreSQL URI with :data:`PG_CONNECT_ARGS` added (those it sets itself win).

    MLflow builds its engine from the URI alone, so the bounds have to travel in it.
    Other URIs are returned unchanged.
    """
    if not is_postgres(uri):
        return uri
    parts = urlsplit(uri)
    query = {**PG_CONNECT_ARGS, **dict(parse_qsl(parts.query))}
    return urlunsplit(parts._replace(query=urlencode(query)))


@contextlib.contextmanager
def schema_lock(uri: str) -> Iterator[None]:
    """Hold the lock under which the schema of the store at ``uri`` is created.

    SQLite: ``<db>.lock`` next to the file. PostgreSQL: ``pg_advisory_lock`` on its own
    connection (waits at most :data:`SCHEMA_LOCK_TIMEOUT_S`). Both also take the lock
    file MLflow's server uses for its own table creation on this machine.
    """
    with contextlib.ExitStack() as stack:
        db = sqlite_path(uri)
        if db is not None:
            db.parent.mkdir(parents=True, exist_ok=True)
            stack.enter_context(_file_lock(Path(str(db) + ".lock"), uri))
        elif is_postgres(uri):
            stack.enter_context(_pg_advisory_lock(uri))
        if "://" in uri and not uri.startswith(("http:", "https:")):
            stack.enter_context(_file_lock(_mlflow_init_lock(uri), uri))
        yield


@contextlib.contextmanager
def _file_lock(path: Path, uri: str) -> Iterator[None]:
    lock = FileLock(str(path), timeout=SCHEMA_LOCK_TIMEOUT_S)
    try:
        lock.acquire()
    except Timeout:
        raise StoreError(
            f"{mask_secrets(uri)}: another process has held {path} for "
            f"{SCHEMA_LOCK_TIMEOUT_S} s while creating the schema"
        ) from None
    try:
        yield
    finally:
        lock.release()


def _mlflow_init_lock(uri: str) -> Path:
    """The lock file MLflow's server takes around its own table creation.

    Same path as MLflow 3 computes (md5 of the engine URL's text in the temp dir); if a
    later MLflow changes it, this is merely a second lock of ours.
    """
    from sqlalchemy.engine import make_url

    digest = hashlib.md5(str(make_url(uri)).encode(), usedforsecurity=False).hexdigest()
    return Path(tempfile.gettempdir()) / f"db_init_lock-{digest}"


@contextlib.contextmanager
def _pg_advisory_lock(uri: str) -> Iterator[None]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    engine = create_engine(with_connect_timeout(uri), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(text(f"SET lock_timeout = '{SCHEMA_LOCK_TIMEOUT_S}s'"))
            try:
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
            except Exception as exc:
                raise StoreError(
                    f"{mask_secrets(uri)}: waited {SCHEMA_LOCK_TIMEOUT_S} s for the schema "
                    f"lock held by another process ({type(exc).__name__})"
                ) from None
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
                conn.commit()
    finally:
        engine.dispose()


def quiet_mlflow() -> None:
    """MLflow's defaults that learnai changes (the user's environment wins)."""
    # Progress bars for local artifact copies only clutter the sweep's console output.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # MLflow 3 sends usage telemetry from every logging call; off unless the user opts in
    # (MLFLOW_DISABLE_TELEMETRY=false): it costs time and a tracker should not phone home.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


_clients: dict[str, MlflowClient] = {}
_creating: dict[str, subprocess.Popen] = {}


def prepare_in_background(uri: str) -> bool:
    """Start creating a new SQLite store's schema in another process; True if started.

    A fresh store costs ~1.4 s of MLflow migrations on top of importing MLflow: on a
    second core they overlap this process's own imports and set-up instead of adding to
    them (measured in experiments/README.md). :func:`open_store` waits for that process
    and then opens a finished schema; if it failed, open_store does the work itself and
    reports what is wrong. Existing stores and servers need nothing created.
    """
    db = sqlite_path(uri)
    if db is None or db.exists() or uri in _clients or uri in _creating:
        return False
    _creating[uri] = subprocess.Popen(
        [sys.executable, "-m", "learnai.stores", "prepare", uri],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,  # a failure is reported by open_store, once
    )
    return True


def _wait_for_background(uri: str) -> None:
    proc = _creating.pop(uri, None)
    if proc is None:
        return
    try:
        proc.wait(timeout=SCHEMA_LOCK_TIMEOUT_S)
    except subprocess.TimeoutExpired:  # hung: open_store takes over under the lock
        proc.kill()
        proc.wait()


def open_store(uri: str) -> MlflowClient:
    """A client for ``uri``, cached per process; the schema is created under the lock.

    The store is checked first (:func:`learnai.store_checks.check_store`): a dead or
    unusable one raises :class:`StoreError` within seconds instead of MLflow's retries.
    """
    if uri in _clients:
        return _clients[uri]
    quiet_mlflow()
    bound_waits()
    from mlflow import MlflowClient

    from learnai.store_checks import check_store

    _wait_for_background(uri)
    check_store(uri)
    if uri.startswith(("http:", "https:")):
        client = MlflowClient(tracking_uri=uri)
    else:
        with schema_lock(uri):  # building the client may already create tables
            client = _open_schema(uri)
    _clients[uri] = client
    return client


def _open_schema(uri: str) -> MlflowClient:
    """A client whose store's schema is whole, created or upgraded here if need be.

    learnai's lock keeps learnai processes and MLflow's server apart, but MLflow's own
    client creates a fresh store's tables without any lock: a notebook or script opening
    the same new store at the same moment makes whichever starts second fail midway
    (``table ... already exists``). The first one finishes the schema, so trying again a
    moment later finds it whole; an error that stays is raised as it is.
    """
    from mlflow import MlflowClient

    def whole() -> MlflowClient:
        client = MlflowClient(tracking_uri=with_connect_timeout(uri))
        client.search_experiments(max_results=1)  # creates or upgrades the schema
        return client

    for pause_s in SCHEMA_RETRY_PAUSES_S:
        with contextlib.suppress(Exception):
            return whole()
        time.sleep(pause_s)
    return whole()  # the last try's error is the one raised


_storages: dict[str, RDBStorage] = {}


def open_optuna_storage(url: str | None) -> RDBStorage | None:
    """An RDBStorage for ``url`` (None: in-memory study), cached per process.

    Checked like :func:`open_store`; PostgreSQL connections are bounded by
    :data:`PG_CONNECT_ARGS` and stale pooled connections are replaced.
    """
    if url is None:
        return None
    if url in _storages:
        return _storages[url]
    from optuna.storages import RDBStorage

    from learnai.store_checks import check_store

    check_store(url, key="hydra.sweeper.storage")
    kwargs: dict = {"pool_pre_ping": True}
    if sqlite_path(url) is not None:
        kwargs = {"connect_args": {"timeout": SQLITE_TIMEOUT_S}}
    with schema_lock(url):  # PostgreSQL: the bounds travel in the URL, as for MLflow
        storage = RDBStorage(with_connect_timeout(url), engine_kwargs=kwargs)
    _storages[url] = storage
    return storage


def prepare(uri: str, kind: str = "mlflow") -> None:
    """Create or upgrade the schema of an MLflow (``kind="mlflow"``) or Optuna store."""
    if kind == "optuna":
        open_optuna_storage(uri)
    else:
        open_store(uri)


def main(argv: list[str] | None = None) -> int:
    """``python -m learnai.stores prepare [--optuna] URI``: what ``make ui`` runs first."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(
        prog="python -m learnai.stores",
        description="Create or upgrade a store's schema under learnai's lock, so an "
        "MLflow UI or Optuna dashboard started next does not race a running sweep.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="create or upgrade the schema, then exit")
    p.add_argument("uri")
    p.add_argument("--optuna", action="store_true", help="an Optuna storage, not MLflow's")
    args = parser.parse_args(argv)
    try:
        prepare(args.uri, "optuna" if args.optuna else "mlflow")
    except ConfigError as err:
        print(f"learnai: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
