"""Preflight checks: is a store usable, before any run, experiment or trial is created?

Each check fails within seconds (one HTTP request with a timeout, one database
connection with ``connect_timeout``, one small file write) with a :class:`StoreError`
whose message is one line naming the config key and the store, password masked.

Example:
    >>> check_store("postgresql://u:pw@127.0.0.1:1/db")  # doctest: +SKIP
    StoreError: tracking.uri: cannot connect to postgresql://u:***@127.0.0.1:1/db: ...
"""

from __future__ import annotations

import errno
import os
import shutil
import socket
import tempfile
from pathlib import Path

from learnai.secrets import mask_secrets
from learnai.tracking.uris import (
    PG_CONNECT_TIMEOUT_S,
    SQLITE_TIMEOUT_S,
    StoreError,
    is_postgres,
    sqlite_path,
    with_connect_timeout,
)

__all__ = ["check_artifact_root", "check_distinct_stores", "check_store"]

HTTP_CONNECT_TIMEOUT_S = 5
HTTP_READ_TIMEOUT_S = 15
MIN_FREE_BYTES = 1 << 20  # below this, SQLite's next page or a plot will not fit
_DRIVER_PACKAGES = {
    "psycopg": "'psycopg[binary]' (pip install 'learnai[postgres]')",
    "psycopg2": "psycopg2-binary",
    "pymysql": "pymysql",
    "mysqldb": "mysqlclient",
}
_checked: set[tuple[str, str]] = set()


def check_store(uri: str, key: str = "tracking.uri") -> None:
    """Raise :class:`StoreError` unless the store at ``uri`` answers and can be written.

    ``key`` is the config key the URI came from, named in the message. A store that
    passed once is not checked again in this process.
    """
    if (uri, key) in _checked:
        return
    shown = mask_secrets(uri)
    if _unencoded_at(uri):  # drivers would read the password's tail as the host, and say so
        raise StoreError(
            f"{key}: the password in {shown} holds an unencoded '@': write it as %40, or "
            "type the URL on the learnai command line, which moves the password into the "
            "environment"
        )
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
    if scheme == "file" or (not scheme and not uri.startswith("sqlite:")):
        raise StoreError(
            f"{key}: {shown} is a folder, not a database; MLflow 3 and Optuna need a "
            "database URI such as sqlite:///mlruns/mlflow.db"
        )
    if scheme in ("http", "https"):
        if key != "tracking.uri":
            raise StoreError(f"{key}: {shown} is a server URL; Optuna needs a database URL")
        _check_http(uri, key, shown)
    elif (db := sqlite_path(uri)) is not None:
        _check_writable_dir(db.parent, key, shown)
        _check_sqlite_file(db, key, shown)
        _check_tables(uri, key, shown)
    else:
        _check_database(uri, key, shown)
        _check_tables(uri, key, shown)
    _checked.add((uri, key))


def check_distinct_stores(mlflow_uri: str, optuna_uri: str | None) -> None:
    """Refuse MLflow and Optuna sharing one database: both keep an ``alembic_version``
    table there, and each one's migrations would break the other's schema."""
    if optuna_uri is None or _identity(mlflow_uri) != _identity(optuna_uri):
        return
    raise StoreError(
        f"tracking.uri and hydra.sweeper.storage are the same database "
        f"({mask_secrets(optuna_uri)}); MLflow and Optuna each need their own, "
        "e.g. sqlite:///mlruns/mlflow.db and sqlite:///mlruns/optuna.db"
    )


def check_artifact_root(path: Path, key: str = "tracking.artifact_location") -> None:
    """Raise :class:`StoreError` unless artifacts can be written under local ``path``."""
    _check_writable_dir(path, key, str(path))


def _unencoded_at(uri: str) -> bool:
    """Whether ``scheme://user:pass@word@host`` has an '@' in its password: between the
    first and the last '@' there is no '/' or '?', so it is all user part (a host cannot
    hold '@')."""
    rest = uri.split("://", 1)[1] if "://" in uri else ""
    user_part = rest.split("@", 1)[0]
    if rest.count("@") < 2 or ":" not in user_part or "/" in user_part:
        return False
    between = rest[rest.index("@") + 1 : rest.rindex("@")]
    return not any(c in between for c in "/?#")


def _identity(uri: str) -> tuple[str, ...]:
    db = sqlite_path(uri)
    if db is not None:
        return ("sqlite", str(db.resolve()))
    try:
        from sqlalchemy.engine import make_url

        url = make_url(uri)
        port = url.port or {"postgresql": 5432, "mysql": 3306}.get(url.get_backend_name())
        return (url.get_backend_name(), url.host or "localhost", str(port), url.database or "")
    except Exception:  # not a database URL: compare the text
        return ("uri", uri)


def _os_reason(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "the disk is full"
    if exc.errno == errno.EROFS:
        return "read-only file system"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return exc.strerror or str(exc)


def _check_writable_dir(path: Path, key: str, shown: str) -> None:
    """Prove a file can be written in ``path``, or where it would be created.

    Nothing is left behind: a missing folder is probed at its nearest existing parent
    (the run creates the folder later), and the probe file is deleted.
    """
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        if not existing.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, f"{existing} is not a folder")
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".learnai-probe-") as probe:
            probe.write(b"\0" * 4096)  # one SQLite page
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as exc:
        raise StoreError(f"{key}: cannot write to {path} ({shown}): {_os_reason(exc)}") from None
    free = shutil.disk_usage(existing).free
    if free < MIN_FREE_BYTES:
        raise StoreError(
            f"{key}: the disk is full: {free // 1024} KiB free at {path} ({shown}), "
            f"need at least {MIN_FREE_BYTES // 1024} KiB"
        )


def _check_sqlite_file(db: Path, key: str, shown: str) -> None:
    if not db.exists():
        return
    try:
        with open(db, "r+b") as f:  # opened for writing, nothing written
            head = f.read(16)
    except OSError as exc:
        raise StoreError(f"{key}: cannot write {db} ({shown}): {_os_reason(exc)}") from None
    if head and head != b"SQLite format 3\0":
        raise StoreError(f"{key}: {db} is not an SQLite database ({shown})")


def _check_http(uri: str, key: str, shown: str) -> None:
    import requests

    auth = None
    user, password = (
        os.environ.get("MLFLOW_TRACKING_USERNAME"),
        os.environ.get("MLFLOW_TRACKING_PASSWORD"),
    )
    if user and password:
        auth = (user, password)
    headers = {}
    if token := os.environ.get("MLFLOW_TRACKING_TOKEN"):
        headers["Authorization"] = f"Bearer {token}"
    verify: bool | str = os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() != "true"
    verify = os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH") or verify
    try:
        reply = requests.get(
            uri.rstrip("/") + "/api/2.0/mlflow/experiments/search",
            params={"max_results": 1},
            timeout=(HTTP_CONNECT_TIMEOUT_S, HTTP_READ_TIMEOUT_S),
            auth=auth,
            headers=headers,
            verify=verify,
        )
    except requests.exceptions.ConnectTimeout:
        reason = f"no answer within {HTTP_CONNECT_TIMEOUT_S} s"
    except requests.exceptions.ReadTimeout:
        reason = f"connected, but no reply within {HTTP_READ_TIMEOUT_S} s"
    except requests.exceptions.SSLError:
        reason = "TLS handshake failed (MLFLOW_TRACKING_SERVER_CERT_PATH names a CA bundle)"
    except requests.exceptions.ConnectionError as exc:
        reason = "connection refused" if "refused" in str(exc).lower() else "cannot connect"
    else:
        if reply.status_code in (401, 403):
            reason = (
                f"the server refused the credentials (HTTP {reply.status_code}); set "
                "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
            )
        elif reply.status_code == 404:
            reason = "no MLflow tracking API there (HTTP 404)"
        elif reply.status_code >= 500:
            reason = f"the server failed (HTTP {reply.status_code})"
        else:
            return
    raise StoreError(f"{key}: cannot use the MLflow server {shown}: {reason}")


def _engine(uri: str, key: str, shown: str):
    """A connection-per-use engine for ``uri``; a missing driver is a StoreError."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError
    from sqlalchemy.pool import NullPool

    try:
        url = make_url(uri)
        dialect = url.get_dialect()
    except (ArgumentError, NoSuchModuleError, ValueError):
        raise StoreError(
            f"{key}: {shown} is not a database URL SQLAlchemy can read (percent-encode "
            "'@', ':' and '/' in a password: '@' is %40, ':' %3A, '/' %2F)"
        ) from None
    try:
        dialect.import_dbapi()
    except ImportError:
        driver = dialect.driver
        package = _DRIVER_PACKAGES.get(driver, driver)
        raise StoreError(
            f"{key}: {shown} needs the Python driver {driver!r}, which is not installed: "
            f"pip install {package}"
        ) from None
    connect_args: dict = {}
    if sqlite_path(uri) is not None:
        connect_args["timeout"] = SQLITE_TIMEOUT_S  # parallel jobs may be writing
    elif is_postgres(uri):
        url = make_url(with_connect_timeout(uri))
    elif url.get_backend_name() == "mysql":
        connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_S
    return create_engine(url, poolclass=NullPool, connect_args=connect_args)


def _db_reason(exc: Exception) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return mask_secrets(" ".join(line.strip() for line in text.splitlines() if line.strip()))


def _sqlite_tables(db: Path, key: str, shown: str) -> set[str]:
    """A SQLite file's tables, read with the standard library (read-only: nothing is
    created)."""
    import sqlite3

    try:
        read_only = f"{db.resolve().as_uri()}?mode=ro"
        conn = sqlite3.connect(read_only, uri=True, timeout=SQLITE_TIMEOUT_S)
        try:
            rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            return {name for (name,) in rows}
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StoreError(f"{key}: cannot read {shown}: {_db_reason(exc)}") from None


def _check_database(uri: str, key: str, shown: str) -> None:
    from sqlalchemy import text

    engine = _engine(uri, key, shown)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        raise StoreError(f"{key}: cannot connect to {shown}: {_db_reason(exc)}") from None
    finally:
        engine.dispose()


def _check_tables(uri: str, key: str, shown: str) -> None:
    """A database that already holds the *other* tool's schema is the wrong one."""
    db = sqlite_path(uri)
    if db is not None:
        if not db.exists():
            return
        tables = _sqlite_tables(db, key, shown)
    else:
        from sqlalchemy import inspect

        engine = _engine(uri, key, shown)
        try:
            with engine.connect() as conn:
                tables = set(inspect(conn).get_table_names())
        except Exception as exc:
            raise StoreError(f"{key}: cannot read {shown}: {_db_reason(exc)}") from None
        finally:
            engine.dispose()
    mlflow, optuna = "experiments" in tables, "studies" in tables
    if key == "tracking.uri" and optuna and not mlflow:
        raise StoreError(f"{key}: {shown} holds an Optuna study storage, not an MLflow store")
    if key != "tracking.uri" and mlflow and not optuna:
        raise StoreError(f"{key}: {shown} holds an MLflow store, not an Optuna storage")


def check_run_stores(
    uri: str,
    artifact_location: str | None,
    optuna_storage: str | None,
    *,
    role: str = "run",
) -> None:
    """Every store one run writes to: tracking, a local artifact location, its study.

    ``role`` is ``"run"`` (a single run), ``"sweep"`` (the command that starts a sweep:
    it makes a local artifact folder, once every check passed) or ``"job"`` (a sweep's
    job: the folder must be there already; a job on a machine that does not share it
    would write the run's files where nobody looks, so it is refused instead).
    """
    check_store(uri)
    local = _local_path(artifact_location) if artifact_location else None
    if local is not None:
        check_artifact_root(local)
        if role == "job" and not local.is_dir():
            raise StoreError(
                f"tracking.artifact_location: {local} does not exist on this machine "
                f"({socket.gethostname()}): the sweep made it where it was launched, so "
                "this job does not share it; give a folder every machine mounts, or a "
                "tracking server (tracking.uri=http://...)"
            )
    if optuna_storage:
        check_store(optuna_storage, key="hydra.sweeper.storage")
        check_distinct_stores(uri, optuna_storage)
    if local is not None and role == "sweep":
        local.mkdir(parents=True, exist_ok=True)


def _local_path(location: str) -> Path | None:
    """The folder behind a local artifact location (``file://`` or a path), else None."""
    if location.startswith("file://"):
        from urllib.parse import unquote, urlsplit

        return Path(unquote(urlsplit(location).path))
    if "://" not in location:
        return Path(location).expanduser().resolve()
    return None


def permission_error(err: Exception, uri: str, experiment: str) -> StoreError | None:
    """The one line for a server that refused to let this user write (HTTP 401/403), or
    None for any other error. A basic-auth server lets a READ user search the store (the
    preflight check passes) but not create the run, which is the first write of every
    run and sweep: it comes before training, so this line does too."""
    code = getattr(err, "error_code", "")
    if code not in ("PERMISSION_DENIED", "UNAUTHENTICATED"):
        return None
    user = os.environ.get("MLFLOW_TRACKING_USERNAME") or "this user"
    return StoreError(
        f"tracking.uri: the MLflow server {mask_secrets(uri)} does not let {user!r} write "
        f"runs in experiment {experiment!r} ({code}); ask its admin for EDIT permission "
        "on it, or choose another tracking.experiment"
    )


def check_output_dir(overrides: list[str], multirun: bool, cwd: Path | None = None) -> None:
    """Raise :class:`StoreError` unless Hydra can write its output folder: ``outputs/``
    (``multirun/``) under the working directory, or ``hydra.run.dir``
    (``hydra.sweep.dir``) as typed on the command line. Hydra creates it before any
    job, and a read-only or full working directory is otherwise its OSError traceback.
    An interpolated part (``${now:...}``) is left out: its folder's parent is probed."""
    cwd = Path.cwd() if cwd is None else cwd
    multirun = multirun or "hydra.mode=MULTIRUN" in overrides
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    target = cwd / ("multirun" if multirun else "outputs")
    for override in overrides:
        name, sep, value = override.lstrip("+").partition("=")
        if sep and name == key:
            target = cwd / value.strip("'\"").split("${", 1)[0]
    _check_writable_dir(
        target,
        key,
        f"Hydra's output folder: run learnai from a folder you can write to, or set {key}",
    )


def check_experiment_artifacts(location: str, experiment: str) -> None:
    """Raise :class:`StoreError` unless artifacts can be written to an experiment's own
    artifact location, when it is a local folder. An experiment made earlier (by another
    machine, or pointing at a disk since made read-only) keeps its location whatever
    ``tracking.artifact_location`` says now; unchecked, the run trained first and failed
    on its first picture."""
    scheme = location.split(":", 1)[0] if ":" in location.split("/", 1)[0] else ""
    if scheme not in ("", "file"):  # mlflow-artifacts:/ (a server's), s3://, ...
        return
    local = _local_path(location)
    if local is not None:
        _check_writable_dir(local, "tracking.experiment", f"artifact location of {experiment!r}")
