"""Mending a SQLite store whose schema migration died half-way.

MLflow migrates SQLite with Alembic's "batch" mode: a table is changed by copying it
into ``_alembic_tmp_<table>``, dropping the original and renaming the copy. SQLite
commits each of those statements on its own, so a migrating process that dies between
them (a plain ``mlflow ui`` racing a first run on a fresh store, an OOM kill) leaves the
copy behind, and every later migration stops at ``table _alembic_tmp_<table> already
exists``: the store is unusable for good.

While the original table is still there the copy is a leftover and is dropped, then the
migration runs again (MLflow's public ``mlflow db upgrade``). A copy whose original is
gone holds the only data, and a migration step that had done part of its work cannot be
run again: neither is guessed at, each is named in one line.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from learnai.tracking.uris import SQLITE_TIMEOUT_S, StoreError

__all__ = ["leftover_copies", "repair"]

TMP_PREFIX = "_alembic_tmp_"


def leftover_copies(db: Path) -> list[str]:
    """The ``_alembic_tmp_*`` tables of the SQLite file ``db`` (none if it is missing)."""
    if not db.is_file():
        return []
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=SQLITE_TIMEOUT_S)
    try:
        rows = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE ? ESCAPE '\\'",
            (TMP_PREFIX.replace("_", "\\_") + "%",),
        )
        return sorted(name for (name,) in rows)
    finally:
        conn.close()


def repair(db: Path, uri: str, shown: str) -> bool:
    """Drop the leftover copies of a migration that died, then migrate again; whether
    there was anything to mend. The caller holds learnai's schema lock, and the drops run
    in one write transaction, so no other writer is mid-statement.

    Raises :class:`StoreError` (one line) when a copy is the only place its table's rows
    are left.
    """
    copies = leftover_copies(db)
    if not copies:
        return False
    conn = sqlite3.connect(str(db), timeout=SQLITE_TIMEOUT_S, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")  # no other writer until COMMIT
        tables = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        for copy in copies:
            original = copy[len(TMP_PREFIX) :]
            if copy not in tables:
                continue  # its migration finished meanwhile
            if original not in tables:
                conn.execute("ROLLBACK")
                raise StoreError(
                    f"tracking.uri: {shown} was left half-migrated by a process that died: "
                    f"table {original!r} exists only as {copy!r}; restore a backup of "
                    f"{db}, or rename {copy} to {original} and run: mlflow db upgrade {shown}"
                )
            conn.execute(f'DROP TABLE "{copy}"')
        conn.execute("COMMIT")
    finally:
        conn.close()
    from mlflow.db import upgrade  # the `mlflow db upgrade URI` command

    try:
        upgrade.callback(uri)
    except Exception as err:  # the dead migration had done part of its step already
        reason = next((line.strip() for line in str(err).splitlines() if line.strip()), "")
        raise StoreError(
            f"tracking.uri: {shown} was left half-migrated by a process that died, and "
            f"migrating it again failed ({reason[:200]}); restore a backup of {db}, or "
            "start a new store"
        ) from None
    return True
