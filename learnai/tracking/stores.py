"""Opening MLflow and Optuna stores safely: serialised schema creation, bounded waits.

Three things go wrong with stores that learnai does not own alone:

- **Schema races.** MLflow and Optuna create their tables on first use. Two processes
  doing it at once (two sweep workers, or a run and ``mlflow ui``) crash one of them.
  :func:`schema_lock` serialises it: a file lock for SQLite, a PostgreSQL advisory lock
  (``pg_advisory_lock`` on a connection held while the schema is created) for
  PostgreSQL. ``python -m learnai.tracking.stores prepare URI`` creates the schema under
  the same lock, so ``make ui`` / ``make dashboard`` never race a running sweep. MLflow's
  own client takes no lock: when it wins such a race, :func:`open_store` tries again
  once it is done.
- **Unbounded waits.** MLflow's HTTP client retries for minutes by default and its SQL
  store waits long on a closed port (docs/stores.md). The ``learnai`` command and every
  job set shorter defaults (:data:`MLFLOW_DEFAULTS`; the user's environment wins) and
  PostgreSQL URIs get a ``connect_timeout`` and keepalives (:data:`PG_CONNECT_ARGS`).
- **Unusable stores** are reported by :func:`learnai.tracking.checks.check_store` before
  any run or trial exists.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from learnai.config import ConfigError
from learnai.secrets import mask_secrets
from learnai.tracking.checks import check_store
from learnai.tracking.schema_repair import repair
from learnai.tracking.uris import (
    StoreError,
    resolve_uri,
    sqlite_path,
    with_connect_timeout,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from optuna.storages import RDBStorage

__all__ = [
    "MLFLOW_DEFAULTS",
    "open_existing",
    "open_optuna_storage",
    "open_store",
    "prepare",
    "schema_lock",
]

DEFAULT_URI = "sqlite:///mlruns/mlflow.db"  # as in conf/tracking: read by `learnai runs`
# Pauses before trying a fresh schema again after a lock-less creator raced ours (see
# _open_schema): a fresh store's migrations take ~1.5 s here, the racer is done by then.
SCHEMA_RETRY_PAUSES_S = (1.0, 2.0)
# MLflow reads these from the environment only. The ``learnai`` command sets them in its
# own process (children inherit them) and conf/config.yaml hands them to every job
# (``hydra.job.env_set``, for jobs on other machines); a value the user set wins.
# A dead MLflow server fails a call after at most 3 tries x 10 s + backoff (~32 s);
# a refused connection after ~3 s. MLflow's defaults (7 retries, 120 s) take minutes.
# Telemetry: MLflow 3 reports usage from every logging call; a tracker should not.
MLFLOW_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    # MLflow's INFO lines ("Creating initial MLflow database tables...", "View run ...
    # at: URL") repeat what learnai's own lines say; its warnings still show.
    "MLFLOW_LOGGING_LEVEL": "WARNING",
}


@contextlib.contextmanager
def schema_lock(uri: str) -> Iterator[None]:
    """Hold the lock under which the schema of the store at ``uri`` is created.

    The Optuna sweeper's own lock (one for both tools, so they cannot disagree):
    ``<db>.lock`` beside a SQLite file, ``pg_advisory_lock`` on its own connection for
    PostgreSQL; it waits at most two minutes (the sweeper's ``SCHEMA_LOCK_TIMEOUT_S``), then raises
    :class:`StoreError`.
    """
    from hydra_plugins.learnai_optuna_sweeper.storage import StorageError
    from hydra_plugins.learnai_optuna_sweeper.storage import schema_lock as sweepers_lock

    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(sweepers_lock(uri))
        except StorageError as err:
            raise StoreError(mask_secrets(str(err))) from None
        yield


_clients: dict[str, MlflowClient] = {}


def open_store(uri: str) -> MlflowClient:
    """A client for ``uri``, cached per process; the schema is created under the lock.

    The store is checked first (:func:`learnai.tracking.checks.check_store`): a dead or
    unusable one raises :class:`StoreError` within seconds instead of MLflow's retries.
    """
    if uri in _clients:
        return _clients[uri]
    from mlflow import MlflowClient

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
    db = sqlite_path(uri)
    try:
        return whole()
    except Exception:
        # Still failing after the pauses, under learnai's lock: a SQLite migration that
        # died half-way left its copies (schema_repair); else the error is raised as it is.
        if db is None or not repair(db, uri, mask_secrets(uri)):
            raise
    return whole()


def open_optuna_storage(url: str | None) -> RDBStorage | None:
    """The sweeper's storage for ``url`` (None: in-memory study), checked like
    :func:`open_store`; opened by the plugin, under its schema lock and bounded waits."""
    if url is None:
        return None
    from hydra_plugins.learnai_optuna_sweeper.storage import open_rdb

    check_store(url, key="hydra.sweeper.storage")
    return open_rdb(url)


def store_uri(uri: str | None) -> str:
    """``uri``, else ``$MLFLOW_TRACKING_URI``, else learnai's default store, with a
    relative SQLite path made absolute against the current directory."""
    import os

    chosen = uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI
    return resolve_uri(chosen, Path.cwd())


def open_existing(uri: str) -> MlflowClient:
    """A client on a store that must exist already (``learnai runs``, ``learnai rerun``):
    MLflow creates a fresh SQLite file for any ``sqlite:///`` URI it opens, so a typo
    would leave a stray empty ``mlflow.db``; a missing file is one line instead."""
    db = sqlite_path(uri)
    if db is not None and not db.is_file():
        raise StoreError(
            f"no MLflow store at {db} (nothing recorded there, and it is not created "
            "by reading; give --tracking-uri)"
        )
    try:
        return open_store(uri)
    except StoreError:
        raise
    except Exception as err:
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        first = lines[0][:300] if lines else type(err).__name__
        raise StoreError(f"cannot open tracking store {mask_secrets(uri)}: {first}") from err


def prepare(uri: str, kind: str = "mlflow") -> None:
    """Create or upgrade the schema of an MLflow (``kind="mlflow"``) or Optuna store."""
    if kind == "optuna":
        open_optuna_storage(uri)
    else:
        open_store(uri)


def main(argv: list[str] | None = None) -> int:
    """``python -m learnai.tracking.stores prepare [--optuna] URI``: what ``make ui`` runs first."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(
        prog="python -m learnai.tracking.stores",
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
    except Exception as err:  # the schema could not be made: say why, in one line
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        reason = mask_secrets(lines[0] if lines else type(err).__name__)
        print(f"learnai: cannot prepare {mask_secrets(args.uri)}: {reason}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
