"""The value rules a config must meet before any MLflow run, experiment or Optuna trial
is created: one table (:data:`RULES`) judges a literal typed on the command line and,
later, the composed config, so both say the same thing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class ConfigError(ValueError):
    """A config value that cannot start a run; the message names the key and value."""


def exit_with(err: ConfigError) -> None:
    """Print one line naming the bad key and value, and exit 2 (no traceback)."""
    import sys

    print(f"learnai: {err}", file=sys.stderr)
    sys.exit(2)


def _check(ok: bool, key: str, value: Any, rule: str) -> None:
    if not ok:
        raise ConfigError(f"invalid value for {key}: {value!r} ({rule})")


def _finite_positive(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


_NUMBER = (int, float)


@dataclass(frozen=True)
class _Rule:
    """What one key's value must be. ``kinds``: the types a value typed on the command
    line must have for :func:`check_literal` to judge it (another type is Hydra's to
    convert or refuse)."""

    ok: Callable[[Any], bool]
    text: str
    kinds: tuple[type, ...] = _NUMBER


# Each key's own rule, in the order validate() reports them. Keys a model or optimizer
# may not have (depth, hidden, momentum) are checked where present.
RULES: dict[str, _Rule] = {
    "data.n_samples": _Rule(lambda v: v >= 2, "must be >= 2"),
    "data.noise": _Rule(lambda v: math.isfinite(v) and v >= 0, "must be >= 0"),
    "data.val_fraction": _Rule(lambda v: 0 < v < 1, "must be in (0, 1)"),
    "model.depth": _Rule(lambda v: v >= 0, "must be >= 0"),
    "model.hidden": _Rule(lambda v: v >= 1, "must be >= 1"),
    "optimizer.lr": _Rule(_finite_positive, "must be a finite number > 0"),
    "optimizer.momentum": _Rule(lambda v: 0 <= v < 1, "must be in [0, 1)"),
    "trainer.epochs": _Rule(lambda v: v >= 1, "must be >= 1"),
    "trainer.sync_every": _Rule(lambda v: v >= 1, "must be >= 1"),
    "trainer.diverge_factor": _Rule(_finite_positive, "must be a finite number > 0"),
    "trainer.num_threads": _Rule(lambda v: v >= 0, "must be >= 0"),
    "trainer.animation.frames": _Rule(lambda v: v >= 1, "must be >= 1"),
    "trainer.animation.fps": _Rule(lambda v: v >= 1, "must be >= 1"),
    "trainer.animation.after_divergence": _Rule(lambda v: v >= 0, "must be >= 0"),
    "trainer.animation.width": _Rule(lambda v: v >= 64, "must be >= 64"),
    "trainer.animation.height": _Rule(lambda v: v >= 64, "must be >= 64"),
    "trainer.device": _Rule(
        lambda v: re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", v) is not None,
        "must be auto, cpu, cuda, cuda:N or mps",
        (str,),
    ),
    "tracking.flush_every_s": _Rule(_finite_positive, "must be a finite number > 0"),
    "tracking.experiment": _Rule(bool, "must not be empty", (str,)),
    "tracking.uri": _Rule(
        lambda v: "://" in v or v.startswith("sqlite:"),
        "must be a URI such as sqlite:///mlruns/mlflow.db or http://host:5000",
        (str,),
    ),
    "trainer.report_every": _Rule(lambda v: v >= 1, "must be >= 1"),
    # numpy's and torch's generators take seeds in [0, 2**32) (torch more, numpy not)
    "data.seed": _Rule(lambda v: 0 <= v < 2**32, "must be in [0, 2**32)"),
    "trainer.seed": _Rule(lambda v: 0 <= v < 2**32, "must be in [0, 2**32)"),
    "optimizer.weight_decay": _Rule(lambda v: math.isfinite(v) and v >= 0, "must be >= 0"),
    "trainer.converged_r2": _Rule(lambda v: math.isfinite(v) and v <= 1, "must be a number <= 1"),
}
_OPTIONAL = {"model.depth", "model.hidden", "optimizer.momentum", "optimizer.weight_decay"}


def check_literal(key: str, value: Any) -> None:
    """Refuse a value typed on the command line (``optimizer.lr=0``) before Hydra
    composes anything: :func:`validate` would refuse it in the composed config, after
    Hydra's two compositions and its output folder. Values of another type than the
    rule judges (``trainer.epochs=abc``, an interpolation) are left to Hydra."""
    rule = RULES.get(key)
    if rule is None or isinstance(value, bool) or not isinstance(value, rule.kinds):
        return
    if isinstance(value, str) and "${" in value:
        return
    _check(rule.ok(value), key, value, rule.text)


def validate(cfg: Any) -> None:
    """Reject values no run should start with. ``cfg`` is the composed DictConfig."""
    from omegaconf import OmegaConf

    for key, rule in RULES.items():
        section, name = key.rsplit(".", 1)
        if key in _OPTIONAL and name not in OmegaConf.select(cfg, section):
            continue
        value = OmegaConf.select(cfg, key)
        _check(rule.ok(value), key, value, rule.text)
        if key == "data.val_fraction":  # both sides of the split need a sample
            n_samples = cfg.data.n_samples
            n_val = int(round(n_samples * value))
            _check(
                1 <= n_val < n_samples,
                key,
                value,
                f"leaves {n_val} of {n_samples} samples for validation; need >= 1 on each side",
            )


def validate_job(loader: Any, config: Any, overrides: list[str]) -> None:
    """:func:`validate` the config that a sweep job with ``overrides`` will get.

    Plain value overrides (``optimizer.lr=1``) are set on a copy of the composed config,
    in microseconds; config group choices and ``+``/``~`` overrides compose it again
    through Hydra (a full composition each, as the launcher will do; see
    experiments/README.md for what one costs).
    """
    import copy

    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import Container, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    job = copy.deepcopy(config)
    try:
        for o in OverridesParser.create().parse_overrides(overrides):
            key = o.get_key_element()
            node = OmegaConf.select(job, key, default=None, throw_on_missing=False)
            if (
                o.is_add()
                or o.is_delete()
                or o.is_force_add()
                or o.package is not None
                or node is None
                or isinstance(node, Container)
            ):
                raise LookupError(key)  # not a plain value: compose
            OmegaConf.update(job, key, o.value(), merge=False)
    except (LookupError, OmegaConfBaseException):
        job = loader.load_sweep_config(config, list(overrides))
    validate(job)
