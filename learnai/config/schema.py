"""Structured configs: the types and defaults behind every YAML file in ``conf/``.

Hydra checks types while composing (``trainer.epochs=abc`` fails there); the value
checks that types cannot express live in :mod:`learnai.config.rules`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class DataConfig:
    """A synthetic data set: ``_target_`` names the generator in :mod:`learnai.train.data`."""

    _target_: str = MISSING
    n_samples: int = 1000
    noise: float = 0.2
    seed: int = 0
    val_fraction: float = 0.2


@dataclass
class LinearModelConfig:
    """The tutorial's ``LinearRegression``; its input size follows the data's features."""

    _target_: str = "learnai.train.models.LinearRegression"


@dataclass
class MLPModelConfig:
    """The tutorial's ``GeneralFit``: ``depth`` hidden layers of ``hidden`` ReLU units."""

    _target_: str = "learnai.train.models.GeneralFit"
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
