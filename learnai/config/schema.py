"""Structured configs: the types and defaults behind every YAML file in ``conf/``.

Hydra checks types while composing (``trainer.epochs=abc`` fails there); the value
checks that types cannot express live in :func:`validate`, which runs before any
MLflow run, experiment or Optuna trial is created.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class DataConfig:
    """A synthetic data set: ``_target_`` names the generator in :mod:`learnai.data`."""

    _target_: str = MISSING
    n_samples: int = 1000
    noise: float = 0.2
    seed: int = 0
    val_fraction: float = 0.2


@dataclass
class LinearModelConfig:
    """The tutorial's ``LinearRegression``; its input size follows the data's features."""

    _target_: str = "learnai.models.LinearRegression"


@dataclass
class MLPModelConfig:
    """The tutorial's ``GeneralFit``: ``depth`` hidden layers of ``hidden`` ReLU units."""

    _target_: str = "learnai.models.GeneralFit"
    depth: int = 2
    hidden: int = 64


@dataclass
class AdamConfig:
    _target_: str = "torch.optim.Adam"
    _partial_: bool = True
    lr: float = 0.01
    weight_decay: float = 0.0


@dataclass
class SGDConfig:
    _target_: str = "torch.optim.SGD"
    _partial_: bool = True
    lr: float = 0.01
    momentum: float = 0.0
    weight_decay: float = 0.0


@dataclass
class AnimationConfig:
    """The training animation: one frame per epoch up to ``frames`` frames."""

    enabled: bool = True
    frames: int = 100
    width: int = 640
    height: int = 400
    fps: int = 20
    # A diverged run trains this many epochs past its blow-up (a frame each) so the
    # animation shows the failure; 0 stops at once. Optuna trials always stop at once.
    after_divergence: int = 50


@dataclass
class TrainerConfig:
    epochs: int = 200
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | mps
    # Losses stay on the device and are read back every `sync_every` epochs:
    # divergence checks, metric flushes and progress all happen at that rhythm.
    sync_every: int = 10
    # Diverged: a non-finite loss, or one above `diverge_factor` x the first loss.
    diverge_factor: float = 1000.0
    # Converged: validation R^2 at or above this threshold.
    converged_r2: float = 0.9
    # Torch CPU threads per process; 0 = all cores shared among parallel jobs.
    num_threads: int = 0
    progress: bool = True
    # In an Optuna sweep: report val loss to the trial every this many epochs.
    report_every: int = 10
    animation: AnimationConfig = field(default_factory=AnimationConfig)


@dataclass
class TrackingConfig:
    uri: str = "sqlite:///mlruns/mlflow.db"
    experiment: str = "learnai"
    run_name: str | None = None
    # None: next to a SQLite store (mlruns/artifacts); else the server's default.
    artifact_location: str | None = None
    # Metrics are batched; a running job flushes them at least this often.
    flush_every_s: float = 5.0
    # A multirun's parent run: learnai's entry point sets it for every job of a sweep
    # it starts; set it yourself to add a sweep's runs under an existing parent.
    parent_run_id: str | None = None


@dataclass
class LearnaiConfig:
    data: Any = MISSING
    model: Any = MISSING
    optimizer: Any = MISSING
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)


def register_configs() -> None:
    """Register the schemas that ``conf/`` YAML files extend through their defaults.

    They are stored outside the config groups (``/data_schema``, not ``data/...``), so
    they are not options a user can pick (``data=data_schema``) or sees in ``--help``;
    each YAML option pulls its schema in with ``- /<name>_schema``.
    """
    cs = ConfigStore.instance()
    cs.store(name="learnai_schema", node=LearnaiConfig)
    cs.store(name="data_schema", node=DataConfig)
    cs.store(name="linear_schema", node=LinearModelConfig)
    cs.store(name="mlp_schema", node=MLPModelConfig)
    cs.store(name="adam_schema", node=AdamConfig)
    cs.store(name="sgd_schema", node=SGDConfig)
    cs.store(name="trainer_schema", node=TrainerConfig)
    cs.store(name="tracking_schema", node=TrackingConfig)


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
}
_OPTIONAL = {"model.depth", "model.hidden", "optimizer.momentum"}


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
