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

__all__ = ["STUDY_ENV", "TRIAL_ENV", "in_memory", "mask", "register_in_memory", "storage_url"]

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
