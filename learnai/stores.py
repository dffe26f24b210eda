"""Opening Optuna storages safely when many processes share one store.

A fresh SQLite file raced by several processes creating the schema at once fails in
one of them; creating it under a file lock makes the first create it and the rest wait.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from filelock import FileLock

from learnai.tracking import sqlite_path

if TYPE_CHECKING:
    from optuna.storages import RDBStorage

SQLITE_TIMEOUT_S = 60  # parallel jobs write to one file: wait for the lock, don't fail

_storages: dict[str, RDBStorage] = {}


def open_optuna_storage(url: str | None) -> RDBStorage | None:
    """An RDBStorage for ``url`` (None: in-memory study), cached per process."""
    if url is None:
        return None
    if url in _storages:
        return _storages[url]
    from optuna.storages import RDBStorage

    db = sqlite_path(url)
    if db is None:
        storage = RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
    else:
        db.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(db) + ".lock"):
            storage = RDBStorage(url, engine_kwargs={"connect_args": {"timeout": SQLITE_TIMEOUT_S}})
    _storages[url] = storage
    return storage
