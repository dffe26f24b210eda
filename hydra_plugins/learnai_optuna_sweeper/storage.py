"""Where a study lives: the storage URL of ``hydra.sweeper.storage``, resolved the same
way by the sweeper and by its jobs, opened safely, and the per-process registry of
in-memory studies.

A job learns its trial from two ``hydra.job.env_set`` variables the sweeper adds to its
overrides (trial number, study name); storage and pruner come from the job's own
``hydra.sweeper`` config. Nothing depends on the app's config or on a shared directory,
so any launcher that runs Hydra jobs carries them.

An RDB storage is opened with :func:`open_rdb`, for two reasons:

- **Schema races.** Optuna creates its tables on first use; a sweeper and its jobs (or
  parallel jobs) opening a fresh storage at once can crash one of them. The schema is
  created under a lock: ``<db>.lock`` for SQLite, ``pg_advisory_lock`` for PostgreSQL.
- **Waits.** Parallel jobs writing one SQLite file give up after Python's default 5 s
  (``database is locked``), while a PostgreSQL server that stops answering can hang a
  job for many minutes. SQLite waits up to :data:`SQLITE_TIMEOUT_S` for its lock;
  PostgreSQL connections get a connect timeout and keepalives (:data:`PG_CONNECT_ARGS`),
  and stale pooled connections are replaced.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ._quiet import heartbeat_notes_quiet

# Process-wide state and error classes: kept by a module Hydra's plugin scan leaves alone.
from ._registry import StorageError, cache_rdb, cached_rdb, in_memory, register_in_memory

if TYPE_CHECKING:  # Hydra's plugin scan executes this module: Optuna loads when used
    from optuna.storages import RDBStorage

__all__ = [
    "PG_CONNECT_ARGS",
    "STUDY_ENV",
    "TRIAL_ENV",
    "StorageError",
    "in_memory",
    "mask",
    "mask_value",
    "open_rdb",
    "open_storage",
    "register_in_memory",
    "schema_lock",
    "storage_url",
]

TRIAL_ENV = "LEARNAI_OPTUNA_TRIAL"  # the job's trial number
STUDY_ENV = "LEARNAI_OPTUNA_STUDY"  # the job's study name

SQLITE_TIMEOUT_S = 60  # parallel jobs write to one file: wait for its lock, don't fail
SCHEMA_LOCK_TIMEOUT_S = 120  # creating Optuna's schema takes seconds; minutes is a hang
# libpq settings for every PostgreSQL connection: a connect waits at most 10 s, and a
# server that vanishes mid-query (no RST: power, network) is noticed within ~30 s
# (keepalives every 5 s after 10 s idle, 3 misses; unacknowledged sends 30 s).
# Statement and lock timeouts are left to the user (``options=-c statement_timeout=...``).
PG_CONNECT_ARGS = {
    "connect_timeout": "10",
    "keepalives": "1",
    "keepalives_idle": "10",
    "keepalives_interval": "5",
    "keepalives_count": "3",
    "tcp_user_timeout": "30000",
}
# Drivers that pass URL query parameters on to libpq (no driver: SQLAlchemy's psycopg2).
_LIBPQ_DRIVERS = {"", "psycopg", "psycopg2", "psycopg2cffi"}
# Advisory locks are per database: one fixed key for every schema created under
# :func:`schema_lock`, Optuna's here and MLflow's by learnai (which uses this lock).
_PG_LOCK_KEY = int.from_bytes(hashlib.sha256(b"learnai schema").digest()[:8], "big", signed=True)


def storage_url(storage: Any, base_dir: Path) -> str | None:
    """The URL of ``hydra.sweeper.storage`` (a URL, or a mapping with ``url``), with a
    relative SQLite path made absolute against ``base_dir`` (Hydra's launch directory,
    which is also the sweeper's working directory)."""
    if storage is None:
        return None
    url = storage if isinstance(storage, str) else _get(storage, "url")
    if url is None:
        return None
    url = str(url)
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/"):
        path = url[len(prefix) :]
        if path and path != ":memory:" and not Path(path).is_absolute():
            return prefix + str((base_dir / path).resolve())
    return url


def _get(mapping: Any, key: str) -> Any:
    try:
        return mapping.get(key)
    except AttributeError:
        return None


_SECRET_KEY = re.compile(r"(password|passwd|secret|token|api_?key)$", re.I)


def mask(url: str | None) -> str:
    """``url`` without its password, for logs and messages.

    The password runs to the last ``@`` before the host, so one containing ``@``, ``/``
    or ``:`` is masked whole; a libpq ``password=`` query parameter is masked too.
    """
    if url is None:
        return "in memory"
    url = re.sub(r"(://[^:/@\s]*:)[^\s?#]+@", r"\1***@", url)
    return re.sub(r"([?&]password=)[^&#]*", r"\1***", url)


def mask_value(key: str, value: str) -> str:
    """An override's value as it may be stored or shown: ``***`` for a secret-named key
    (``db.password``, ``api_token``), else with any URL password masked (:func:`mask`).
    Hydra's escaped form (``user\\:pw@``) is masked too."""
    if _SECRET_KEY.search(key.rsplit(".", 1)[-1]):
        return "***"
    return mask(value) if "://" in value else value


def _sqlite_path(url: str) -> Path | None:
    """The database file behind a ``sqlite:///`` URL, or None (other stores, in memory)."""
    if url.startswith("sqlite:///") and ":memory:" not in url:
        return Path(url[len("sqlite:///") :].split("?")[0])
    return None


def _postgres_driver(url: str) -> str | None:
    """The driver of a PostgreSQL URL (``""`` for SQLAlchemy's default), or None."""
    dialect, _, driver = url.split("://", 1)[0].partition("+")
    return driver if dialect in ("postgresql", "postgres") else None


def _bounded(url: str) -> str:
    """A PostgreSQL URL with :data:`PG_CONNECT_ARGS` in its query (the URL's own values
    win): the only way the bounds reach every connection of Optuna's engine. Other
    URLs, and drivers that are not libpq's, are returned unchanged."""
    if _postgres_driver(url) not in _LIBPQ_DRIVERS:
        return url
    parts = urlsplit(url)
    query = {**PG_CONNECT_ARGS, **dict(parse_qsl(parts.query, keep_blank_values=True))}
    return urlunsplit(parts._replace(query=urlencode(query)))


@contextlib.contextmanager
def schema_lock(url: str) -> Iterator[None]:
    """Hold the lock under which a store's schema is created: ``<db>.lock`` beside a
    SQLite file, ``pg_advisory_lock`` (one key per database) for PostgreSQL, none for
    other databases. Public: learnai creates MLflow's schema under the same lock.

    Raises :class:`StorageError` when another process holds it too long.
    """
    db = _sqlite_path(url)
    if db is not None:
        with _file_lock(db, url):
            yield
    elif _postgres_driver(url) is not None:
        with _pg_advisory_lock(url):
            yield
    else:
        yield


@contextlib.contextmanager
def _file_lock(db: Path, url: str) -> Iterator[None]:
    from filelock import FileLock, Timeout

    db.parent.mkdir(parents=True, exist_ok=True)
    path = Path(f"{db}.lock")
    lock = FileLock(str(path), timeout=SCHEMA_LOCK_TIMEOUT_S)
    try:
        lock.acquire()
    except Timeout:
        raise StorageError(
            f"{mask(url)}: another process has held {path} for {SCHEMA_LOCK_TIMEOUT_S} s "
            "while creating the schema"
        ) from None
    try:
        yield
    finally:
        lock.release()


@contextlib.contextmanager
def _pg_advisory_lock(url: str) -> Iterator[None]:
    """``pg_advisory_lock`` on a connection of its own (NullPool: closed after, never
    lent to Optuna), waiting at most :data:`SCHEMA_LOCK_TIMEOUT_S`."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    engine = create_engine(_bounded(url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(text(f"SET lock_timeout = '{SCHEMA_LOCK_TIMEOUT_S}s'"))
            try:
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
            except Exception as exc:
                raise StorageError(
                    f"{mask(url)}: waited {SCHEMA_LOCK_TIMEOUT_S} s for the schema lock "
                    f"held by another process ({type(exc).__name__})"
                ) from None
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
                conn.commit()
    finally:
        engine.dispose()


def _new_rdb(url: str, **kwargs: Any) -> RDBStorage:
    """A new RDBStorage for ``url``, its schema created under the lock, waits bounded;
    ``kwargs`` go to RDBStorage (heartbeat settings)."""
    from optuna.storages import RDBStorage

    engine_kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if _sqlite_path(url) is not None:
        engine_kwargs = {"connect_args": {"timeout": SQLITE_TIMEOUT_S}}
    with schema_lock(url):  # RDBStorage creates the tables it misses
        return RDBStorage(_bounded(url), engine_kwargs=engine_kwargs, **kwargs)


def open_rdb(url: str) -> RDBStorage:
    """The RDBStorage for ``url``, cached per process: a fresh storage's schema is created
    under a lock, so the sweeper and its jobs can open it at once; waits are bounded.

    Raises :class:`StorageError` when another process holds the schema lock too long.
    """
    storage = cached_rdb(url)
    if storage is None:
        storage = cache_rdb(url, _new_rdb(url))  # a racing thread's storage may win
    return storage


def open_storage(
    storage: Any,
    base_dir: Path,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    max_retry: int | None = None,
) -> Any:
    """The storage object ``hydra.sweeper.storage`` names: in memory, an RDB (opened by
    :func:`open_rdb`), heartbeat-enabled when asked, or a ``_target_`` mapping built as
    configured."""
    import optuna

    from . import factory

    url = storage_url(storage, base_dir)
    if storage is not None and not isinstance(storage, str):
        # {_target_: optuna.storages.RDBStorage, url: ..., ...}, as 1.3's Hydra would
        # have instantiated it; jobs open its url.
        return factory.build(storage, "hydra.sweeper.storage")
    if url is None:
        return optuna.storages.InMemoryStorage()
    if heartbeat_interval is None:
        return open_rdb(url)
    kwargs: dict[str, Any] = {}
    if max_retry is not None:
        # Optuna 4.9 renamed RetryFailedTrialCallback / failed_trial_callback.
        if hasattr(optuna.storages, "RetryHeartbeatStaleTrialCallback"):
            retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
            kwargs["heartbeat_stale_trial_callback"] = retry
        else:
            retry = optuna.storages.RetryFailedTrialCallback(max_retry=max_retry)
            kwargs["failed_trial_callback"] = retry
    # Its own storage (not cached): the heartbeat settings belong to this sweep.
    with heartbeat_notes_quiet():
        return _new_rdb(
            url, heartbeat_interval=heartbeat_interval, grace_period=grace_period, **kwargs
        )
