"""Process-wide state, in a module Hydra's plugin scan never re-executes (its name starts
with ``_``): the in-memory studies and opened RDB storages jobs of this process can reach,
and the error classes callers catch. The scan re-runs public plugin modules in place,
which would empty a registry or make a new exception class that earlier ``except``
clauses miss."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from optuna.storages import BaseStorage, RDBStorage

_in_memory: dict[str, BaseStorage] = {}
_rdb: dict[str, RDBStorage] = {}


def register_in_memory(study_name: str, storage: BaseStorage) -> None:
    _in_memory[study_name] = storage


def in_memory(study_name: str) -> BaseStorage | None:
    return _in_memory.get(study_name)


def cached_rdb(url: str) -> RDBStorage | None:
    return _rdb.get(url)


def cache_rdb(url: str, storage: RDBStorage) -> RDBStorage:
    """Keep ``storage`` for ``url`` unless another thread kept one first; the kept one."""
    return _rdb.setdefault(url, storage)


class SearchSpaceError(ValueError):
    """A sweep that cannot become an Optuna distribution; the message names the key."""


class StorageError(ValueError):
    """A storage that cannot be opened; the message is one line naming its URL (password
    masked)."""


class SettingsError(ValueError):
    """A sweeper setting no sweep can start with; the message names the key and value."""
