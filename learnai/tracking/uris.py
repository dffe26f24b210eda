"""Store URIs: what learnai reads from them, and the one error an unusable store raises.

Example:
    >>> sqlite_path("sqlite:////tmp/mlflow.db")
    PosixPath('/tmp/mlflow.db')
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from learnai.config import ConfigError

__all__ = [
    "PG_CONNECT_ARGS",
    "StoreError",
    "is_postgres",
    "resolve_uri",
    "sqlite_path",
    "with_connect_timeout",
]

SQLITE_TIMEOUT_S = 60  # parallel jobs write to one file: wait for the lock, don't fail
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


class StoreError(ConfigError):
    """A store that cannot be used: the message is one line naming it (password masked).

    A :class:`~learnai.config.ConfigError`, so the CLI prints it as one line and exits 2.
    """


def sqlite_path(uri: str) -> Path | None:
    """The database file behind a ``sqlite:///`` URI, or None for other stores."""
    if uri.startswith("sqlite:///") and ":memory:" not in uri:
        return Path(uri[len("sqlite:///") :].split("?")[0])
    return None


def resolve_uri(uri: str, base: Path) -> str:
    """Make a relative SQLite path absolute against ``base`` (the launch directory):
    ``sqlite:///mlruns/mlflow.db`` would otherwise follow whatever directory a job runs in.
    """
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        path = uri[len("sqlite:///") :]
        if path and path != ":memory:":
            return "sqlite:///" + str((base / path).resolve())
    return uri


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
