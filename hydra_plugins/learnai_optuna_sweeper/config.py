"""Sweeper config, registered under ``hydra/sweeper``: keys follow hydra-optuna-sweeper.

Samplers and pruners are config groups of their own, so ``hydra/sweeper/sampler=random``
and ``hydra/sweeper/pruner=hyperband`` work as they do with the published plugin.
No ``from __future__ import annotations`` here: Hydra's plugin scan executes this module
outside ``sys.modules``, where dataclasses cannot resolve string annotations.
"""

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class TPESamplerConfig:
    _target_: str = "optuna.samplers.TPESampler"
    seed: int | None = None
    n_startup_trials: int = 10
    n_ei_candidates: int = 24
    multivariate: bool = False
    constant_liar: bool = True  # parallel jobs do not all sample the same point


@dataclass
class RandomSamplerConfig:
    _target_: str = "optuna.samplers.RandomSampler"
    seed: int | None = None


@dataclass
class GridSamplerConfig:
    """The grid comes from the search space (choice/range params), not from here."""

    _target_: str = "optuna.samplers.GridSampler"
    _partial_: bool = True
    seed: int | None = None


@dataclass
class CmaEsSamplerConfig:
    _target_: str = "optuna.samplers.CmaEsSampler"
    seed: int | None = None
    n_startup_trials: int = 1
    sigma0: float | None = None


@dataclass
class QMCSamplerConfig:
    _target_: str = "optuna.samplers.QMCSampler"
    seed: int | None = None
    qmc_type: str = "sobol"
    scramble: bool = True


@dataclass
class MedianPrunerConfig:
    _target_: str = "optuna.pruners.MedianPruner"
    n_startup_trials: int = 5
    n_warmup_steps: int = 20
    interval_steps: int = 1


@dataclass
class HyperbandPrunerConfig:
    _target_: str = "optuna.pruners.HyperbandPruner"
    min_resource: int = 10
    max_resource: Any = "auto"
    reduction_factor: int = 3


@dataclass
class NopPrunerConfig:
    _target_: str = "optuna.pruners.NopPruner"


@dataclass
class OptunaSweeperConf:
    _target_: str = "hydra_plugins.learnai_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    defaults: list[Any] = field(
        default_factory=lambda: [{"sampler": "tpe"}, {"pruner": "median"}, "_self_"]
    )
    sampler: Any = MISSING
    pruner: Any = MISSING
    direction: str = "minimize"
    # Persistent by default: the same command again continues the study.
    storage: str | None = "sqlite:///mlruns/optuna.db"
    study_name: str | None = None  # None: the MLflow experiment's name
    n_trials: int = 20
    n_jobs: int = 1  # trials launched together (in parallel with a parallel launcher)
    # Stop the sweep when more than this fraction of a batch fails (1.0: never stop).
    max_failure_rate: float = 1.0
    # The search space in Hydra's sweep grammar (key: "interval(...)"), merged with the
    # command line's sweep overrides; the command line wins.
    params: dict[str, str] = field(default_factory=dict)
    custom_search_space: str | None = None  # "module.fn(cfg, trial)" adding params


def register() -> None:
    cs = ConfigStore.instance()
    cs.store(group="hydra/sweeper", name="optuna", node=OptunaSweeperConf, provider="learnai")
    for name, node in {
        "tpe": TPESamplerConfig,
        "random": RandomSamplerConfig,
        "grid": GridSamplerConfig,
        "cmaes": CmaEsSamplerConfig,
        "qmc": QMCSamplerConfig,
    }.items():
        cs.store(group="hydra/sweeper/sampler", name=name, node=node, provider="learnai")
    for name, node in {
        "median": MedianPrunerConfig,
        "hyperband": HyperbandPrunerConfig,
        "none": NopPrunerConfig,
    }.items():
        cs.store(group="hydra/sweeper/pruner", name=name, node=node, provider="learnai")
