"""Where a study lives: the storage URL of ``hydra.sweeper.storage``, resolved the same
way by the sweeper and by its jobs, and the per-process registry of in-memory studies.

A job learns its trial from two ``hydra.job.env_set`` variables the sweeper adds to its
overrides (trial number, study name); storage and pruner come from the job's own
``hydra.sweeper`` config. Nothing depends on the app's config or on a shared directory,
so any launcher that runs Hydra jobs carries them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

# In-memory studies by name: jobs launched in the sweeper's own process find them there.
from ._registry import in_memory, register_in_memory

__all__ = [
    "STUDY_ENV",
    "TRIAL_ENV",
    "in_memory",
    "mask",
    "open_storage",
    "register_in_memory",
    "storage_url",
]

TRIAL_ENV = "LEARNAI_OPTUNA_TRIAL"  # the job's trial number
STUDY_ENV = "LEARNAI_OPTUNA_STUDY"  # the job's study name


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


def mask(url: str | None) -> str:
    """``url`` without its password, for logs."""
    if url is None:
        return "in memory"
    return re.sub(r"(://[^/:@]*:)[^/@]*@", r"\1***@", url)


def open_storage(
    storage: Any,
    base_dir: Path,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    max_retry: int | None = None,
) -> Any:
    """The storage object ``hydra.sweeper.storage`` names: in memory, an RDB (opened
    through learnai's locking opener), heartbeat-enabled when asked, or a ``_target_``
    mapping built as configured."""
    import optuna

    from . import factory

    url = storage_url(storage, base_dir)
    if storage is not None and not isinstance(storage, str):
        # {_target_: optuna.storages.RDBStorage, url: ..., ...}, as 1.3's Hydra would
        # have instantiated it; jobs open its url.
        return factory.build(storage, "hydra.sweeper.storage")
    if url is None:
        return optuna.storages.InMemoryStorage()
    from learnai.stores import open_optuna_storage

    rdb = open_optuna_storage(url)  # creates a fresh SQLite file's schema, locked
    if heartbeat_interval is None:
        return rdb
    kwargs: dict[str, Any] = {}
    if max_retry is not None:
        # Optuna 4.9 renamed RetryFailedTrialCallback / failed_trial_callback.
        if hasattr(optuna.storages, "RetryHeartbeatStaleTrialCallback"):
            retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
            kwargs["heartbeat_stale_trial_callback"] = retry
        else:
            retry = optuna.storages.RetryFailedTrialCallback(max_retry=max_retry)
            kwargs["failed_trial_callback"] = retry
    if url.startswith("sqlite:"):
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}
    return optuna.storages.RDBStorage(
        url,
        heartbeat_interval=heartbeat_interval,
        grace_period=grace_period,
        **kwargs,
    )
