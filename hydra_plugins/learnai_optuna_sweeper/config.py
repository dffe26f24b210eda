"""Sweeper config, registered under ``hydra/sweeper``: the keys and defaults of the
published hydra-optuna-sweeper 1.3, plus a few opt-in extras (marked *extra*).

Samplers and pruners are config groups, so ``hydra/sweeper/sampler=nsgaii`` and
``hydra/sweeper/pruner=median`` work as with the published plugin. Sampler keys that
current Optuna deprecated or dropped default to ``None`` (= Optuna's own default, no
warning); a value set by the user is passed on or dropped with a one-line message (see
:mod:`.factory`).

No ``from __future__ import annotations`` here: Hydra's plugin scan executes this module
outside ``sys.modules``, where dataclasses cannot resolve string annotations.
"""

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


class DistributionType(Enum):
    """``type`` of an entry of the deprecated ``search_space`` key."""

    int = 1
    float = 2
    categorical = 3


class Direction(Enum):
    minimize = 1
    maximize = 2


@dataclass
class SamplerConfig:
    _target_: str = MISSING
    seed: int | None = None


@dataclass
class TPESamplerConfig(SamplerConfig):
    _target_: str = "optuna.samplers.TPESampler"
    # Deprecated by Optuna 4.3-4.9 (removal planned for 6.0): None = Optuna's default.
    consider_prior: bool | None = None
    prior_weight: float | None = None
    consider_magic_clip: bool | None = None
    consider_endpoints: bool | None = None
    warn_independent_sampling: bool | None = None
    n_startup_trials: int = 10
    n_ei_candidates: int = 24
    multivariate: bool | None = None
    group: bool = False  # extra
    constant_liar: bool | None = None  # extra; None = Optuna's default


@dataclass
class RandomSamplerConfig(SamplerConfig):
    _target_: str = "optuna.samplers.RandomSampler"


@dataclass
class GridSamplerConfig(SamplerConfig):
    """The grid comes from the search space (``hydra.sweeper.params``), not from here."""

    _target_: str = "optuna.samplers.GridSampler"
    _partial_: bool = True


@dataclass
class CmaEsSamplerConfig(SamplerConfig):
    _target_: str = "optuna.samplers.CmaEsSampler"
    x0: Any = None  # {param: value}; Any: OmegaConf cannot merge a dict into a None Dict node
    sigma0: float | None = None
    independent_sampler: Any | None = None
    warn_independent_sampling: bool = True
    consider_pruned_trials: bool = False
    # Deprecated by Optuna 4.4 (restart strategies moved to OptunaHub): None = not set.
    restart_strategy: Any | None = None
    inc_popsize: int | None = None
    use_separable_cma: bool = False
    source_trials: Any | None = None
    n_startup_trials: int = 1  # extra
    popsize: int | None = None  # extra
    with_margin: bool = False  # extra
    lr_adapt: bool = False  # extra


@dataclass
class NSGAIISamplerConfig(SamplerConfig):
    _target_: str = "optuna.samplers.NSGAIISampler"
    population_size: int = 50
    mutation_prob: float | None = None
    crossover_prob: float = 0.9
    swapping_prob: float = 0.5
    constraints_func: Any | None = None


@dataclass
class MOTPESamplerConfig(SamplerConfig):
    """Optuna 4 removed MOTPESampler: TPESampler takes its place (see :mod:`.factory`)."""

    _target_: str = "optuna.samplers.MOTPESampler"
    consider_prior: bool | None = None
    prior_weight: float | None = None
    consider_magic_clip: bool | None = None
    consider_endpoints: bool | None = None
    n_startup_trials: int = 10
    n_ehvi_candidates: int = 24


@dataclass
class QMCSamplerConfig(SamplerConfig):  # extra
    _target_: str = "optuna.samplers.QMCSampler"
    qmc_type: str = "sobol"
    scramble: bool = False


@dataclass
class GPSamplerConfig(SamplerConfig):  # extra
    _target_: str = "optuna.samplers.GPSampler"
    n_startup_trials: int = 10
    deterministic_objective: bool = False


@dataclass
class MedianPrunerConfig:
    _target_: str = "optuna.pruners.MedianPruner"
    n_startup_trials: int = 5
    n_warmup_steps: int = 0
    interval_steps: int = 1
    n_min_trials: int = 1


@dataclass
class HyperbandPrunerConfig:
    _target_: str = "optuna.pruners.HyperbandPruner"
    min_resource: int = 1
    max_resource: Any = "auto"
    reduction_factor: int = 3
    bootstrap_count: int = 0


@dataclass
class SuccessiveHalvingPrunerConfig:
    _target_: str = "optuna.pruners.SuccessiveHalvingPruner"
    min_resource: Any = "auto"
    reduction_factor: int = 4
    min_early_stopping_rate: int = 0
    bootstrap_count: int = 0


@dataclass
class NopPrunerConfig:
    _target_: str = "optuna.pruners.NopPruner"


@dataclass
class DistributionConfig:
    """One entry of the deprecated ``search_space`` key (migrated to a distribution)."""

    type: DistributionType
    choices: list[Any] | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None


@dataclass
class OptunaSweeperConf:
    _target_: str = "hydra_plugins.learnai_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    # The sweeper builds sampler, pruner and storage itself: it handles keys that
    # current Optuna deprecated, and re-seeds a resumed sampler from its config.
    _recursive_: bool = False
    defaults: list[Any] = field(
        default_factory=lambda: [{"sampler": "tpe"}, {"pruner": "none"}, "_self_"]
    )
    sampler: Any = MISSING
    # minimize | maximize, or a list of them for a multi-objective study.
    direction: Any = "minimize"
    storage: Any | None = None  # a URL (sqlite:///x.db) or None: in memory
    study_name: str | None = None  # None: Optuna makes one up
    n_trials: int = 20
    n_jobs: int = 2  # trials launched per batch
    # Stop and re-raise a job's error when a batch's failed fraction exceeds this.
    max_failure_rate: float = 0.0
    # Typed Any, not Optional[Dict]: OmegaConf cannot merge a command line's dict into a
    # None-valued Dict node ("hydra.sweeper.params={x: ...}" would not compose).
    search_space: Any = None  # deprecated: write params
    params: Any = None  # {key: sweep}, e.g. {x: "interval(0, 1)"}
    custom_search_space: str | None = None  # "module.fn", called as fn(cfg, trial)
    # --- extras (defaults keep the published plugin's behaviour) ---
    pruner: Any = MISSING  # hydra/sweeper/pruner; jobs reach it through current_trial()
    # What a non-finite objective (NaN, inf) becomes: "optuna" lets study.tell decide
    # (NaN: FAIL, inf: COMPLETE), "prune" makes it PRUNED (it can never be best).
    non_finite: str = "optuna"
    # A resumed study with a seeded sampler draws from seed + (trials so far), so it
    # does not repeat the first run's points.
    reseed_on_resume: bool = False
    # RDB storages: trials in flight send a heartbeat every this many seconds; trials
    # left RUNNING by a dead sweep are failed when the next sweep starts.
    heartbeat_interval: int | None = None
    grace_period: int | None = None  # None: 2 x heartbeat_interval
    # With heartbeats: re-run a stale trial's params up to this many times (None: never).
    max_retry: int | None = None


SAMPLERS = {
    "tpe": TPESamplerConfig,
    "random": RandomSamplerConfig,
    "grid": GridSamplerConfig,
    "cmaes": CmaEsSamplerConfig,
    "nsgaii": NSGAIISamplerConfig,
    "motpe": MOTPESamplerConfig,
    "qmc": QMCSamplerConfig,
    "gp": GPSamplerConfig,
}
PRUNERS = {
    "none": NopPrunerConfig,
    "median": MedianPrunerConfig,
    "hyperband": HyperbandPrunerConfig,
    "successive_halving": SuccessiveHalvingPrunerConfig,
}


def register() -> None:
    cs = ConfigStore.instance()
    cs.store(group="hydra/sweeper", name="optuna", node=OptunaSweeperConf, provider="learnai")
    for name, node in SAMPLERS.items():
        cs.store(group="hydra/sweeper/sampler", name=name, node=node, provider="learnai")
    for name, node in PRUNERS.items():
        cs.store(group="hydra/sweeper/pruner", name=name, node=node, provider="learnai")
