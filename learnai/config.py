"""Structured configs: the types and defaults behind every YAML file in ``conf/``.

Hydra checks types while composing (``trainer.epochs=abc`` fails there); the value
checks that types cannot express live in :func:`validate`, which runs before any
MLflow run, experiment or Optuna trial is created.
"""

from __future__ import annotations

import math
import re
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


def validate(cfg: Any) -> None:
    """Reject values no run should start with. ``cfg`` is the composed DictConfig."""
    data, model, opt, trainer = cfg.data, cfg.model, cfg.optimizer, cfg.trainer
    _check(data.n_samples >= 2, "data.n_samples", data.n_samples, "must be >= 2")
    _check(math.isfinite(data.noise) and data.noise >= 0, "data.noise", data.noise, "must be >= 0")
    vf = data.val_fraction
    _check(0 < vf < 1, "data.val_fraction", vf, "must be in (0, 1)")
    n_val = int(round(data.n_samples * vf))
    _check(
        1 <= n_val < data.n_samples,
        "data.val_fraction",
        vf,
        f"leaves {n_val} of {data.n_samples} samples for validation; need >= 1 on each side",
    )
    if "depth" in model:
        _check(model.depth >= 0, "model.depth", model.depth, "must be >= 0")
    if "hidden" in model:
        _check(model.hidden >= 1, "model.hidden", model.hidden, "must be >= 1")
    _check(_finite_positive(opt.lr), "optimizer.lr", opt.lr, "must be a finite number > 0")
    if "momentum" in opt:
        _check(0 <= opt.momentum < 1, "optimizer.momentum", opt.momentum, "must be in [0, 1)")
    _check(trainer.epochs >= 1, "trainer.epochs", trainer.epochs, "must be >= 1")
    _check(trainer.sync_every >= 1, "trainer.sync_every", trainer.sync_every, "must be >= 1")
    _check(
        _finite_positive(trainer.diverge_factor),
        "trainer.diverge_factor",
        trainer.diverge_factor,
        "must be a finite number > 0",
    )
    _check(trainer.num_threads >= 0, "trainer.num_threads", trainer.num_threads, "must be >= 0")
    anim = trainer.animation
    _check(anim.frames >= 1, "trainer.animation.frames", anim.frames, "must be >= 1")
    _check(anim.fps >= 1, "trainer.animation.fps", anim.fps, "must be >= 1")
    _check(
        anim.after_divergence >= 0,
        "trainer.animation.after_divergence",
        anim.after_divergence,
        "must be >= 0",
    )
    _check(anim.width >= 64, "trainer.animation.width", anim.width, "must be >= 64")
    _check(anim.height >= 64, "trainer.animation.height", anim.height, "must be >= 64")
    _check(
        re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", trainer.device) is not None,
        "trainer.device",
        trainer.device,
        "must be auto, cpu, cuda, cuda:N or mps",
    )
    _check(
        _finite_positive(cfg.tracking.flush_every_s),
        "tracking.flush_every_s",
        cfg.tracking.flush_every_s,
        "must be a finite number > 0",
    )
    _check(
        bool(cfg.tracking.experiment),
        "tracking.experiment",
        cfg.tracking.experiment,
        "must not be empty",
    )
    uri = cfg.tracking.uri
    _check(
        "://" in uri or uri.startswith("sqlite:"),
        "tracking.uri",
        uri,
        "must be a URI such as sqlite:///mlruns/mlflow.db or http://host:5000",
    )
    _check(trainer.report_every >= 1, "trainer.report_every", trainer.report_every, "must be >= 1")


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
