"""The sweeper's own settings checked before any study exists: the sweeper refuses with
them, and an app that wraps the sweep (learnai's entry point) can ask the same question
earlier, before it creates anything of its own."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._registry import SettingsError
from .storage import storage_url

__all__ = ["SettingsError", "check", "directions_of"]


def directions_of(direction: Any) -> list[str]:
    """``minimize``, ``Direction.maximize`` or a list of them -> Optuna's direction names."""
    single = isinstance(direction, str) or hasattr(direction, "name")
    values = [direction] if single else list(direction)
    names = [v.name if hasattr(v, "name") else str(v) for v in values]
    if not names:
        raise SettingsError("hydra.sweeper.direction is empty")
    for name in names:
        if name not in ("minimize", "maximize"):
            raise SettingsError(
                f"invalid value for hydra.sweeper.direction: {name!r} (minimize or maximize)"
            )
    return names


def check(sweeper: Mapping[str, Any]) -> list[str]:
    """Raise :class:`SettingsError` (one line naming the key and value) for a setting no
    sweep can start with; return the study's directions. ``sweeper``: ``hydra.sweeper``."""
    rules = {
        "n_trials": (lambda v: v >= 1, "must be >= 1"),
        "n_jobs": (lambda v: v >= 1, "must be >= 1"),
        "max_failure_rate": (lambda v: 0.0 <= v <= 1.0, "must be in [0, 1]"),
        "non_finite": (lambda v: v in ("optuna", "prune"), "optuna or prune"),
        "heartbeat_interval": (lambda v: v is None or v >= 1, "must be >= 1 second, or null"),
    }
    for key, (ok, rule) in rules.items():
        value = sweeper.get(key)
        if key in sweeper and not ok(value):
            raise SettingsError(f"invalid value for hydra.sweeper.{key}: {value!r} ({rule})")
    heartbeat = sweeper.get("heartbeat_interval")
    if heartbeat is not None and storage_url(sweeper.get("storage"), Path()) is None:
        raise SettingsError(
            f"invalid value for hydra.sweeper.heartbeat_interval: {heartbeat!r} "
            "(heartbeats need an RDB storage (hydra.sweeper.storage))"
        )
    return directions_of(sweeper.get("direction", "minimize"))
