"""Samplers and pruners from their configs, on whatever Optuna is installed.

Configs written for hydra-optuna-sweeper 1.3 name keys that current Optuna deprecated
(TPE ``consider_prior``, CMA-ES ``restart_strategy``, ...) or dropped, and a sampler it
removed (``MOTPESampler``). Instead of failing, each such key gets one log line saying
what happened: passed on (Optuna's deprecation note), renamed, or ignored.
"""

from __future__ import annotations

import inspect
import logging
import warnings
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)

# Optuna targets that are gone: (replacement, renamed keys, why).
REPLACED = {
    "optuna.samplers.MOTPESampler": (
        "optuna.samplers.TPESampler",
        {"n_ehvi_candidates": "n_ei_candidates"},
        "MOTPESampler was removed in Optuna 4.0; TPESampler optimises multi-objective "
        "studies and takes its place",
    ),
}


def _plain(cfg: Any) -> dict[str, Any]:
    from omegaconf import DictConfig, OmegaConf

    if isinstance(cfg, DictConfig):
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    return dict(cfg)


def _value(value: Any) -> Any:
    """Nested ``{_target_: ...}`` values (CMA-ES independent_sampler, ...) become objects."""
    if isinstance(value, Mapping) and "_target_" in value:
        return build(value, "nested")
    return value


def build(cfg: Any, where: str, **overrides: Any) -> Any:
    """Instantiate ``cfg`` (a ``_target_`` mapping); ``where`` names it in messages
    (``hydra.sweeper.sampler``). ``None`` values mean "Optuna's default" and are not
    passed, so default configs raise no deprecation warnings."""
    from hydra.utils import get_method

    kwargs = _plain(cfg)
    target = str(kwargs.pop("_target_"))
    kwargs.pop("_partial_", None)
    if target in REPLACED:
        target, renames, why = REPLACED[target]
        log.warning("%s: %s", where, why)
        for old, new in renames.items():
            if old in kwargs:
                kwargs[new] = kwargs.pop(old)
    factory = get_method(target)
    params = inspect.signature(factory).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    passed: dict[str, Any] = {}
    for key, value in {**kwargs, **overrides}.items():
        if value is None:
            continue
        if key not in params and not takes_any:
            import optuna

            log.warning(
                "%s.%s=%r: %s in Optuna %s has no such argument any more; ignored",
                where,
                key,
                value,
                target.rsplit(".", 1)[-1],
                optuna.__version__,
            )
            continue
        passed[key] = _value(value)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FutureWarning)
        obj = factory(**passed)
    for w in caught:
        if issubclass(w.category, FutureWarning):
            log.warning("%s: %s (passed on)", where, str(w.message).split(". See ")[0])
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return obj


def target_of(cfg: Any) -> str:
    """The ``_target_`` of a sampler/pruner config, as a string."""
    return str(_plain(cfg).get("_target_", ""))
