"""The Optuna sweeper: ask -> launch -> tell, as hydra-optuna-sweeper 1.3 does it, on
current Optuna and with public APIs only.

Outcomes, as in 1.3: a float (or, multi-objective, a sequence of floats) is told
COMPLETE; a job's exception or a return value that is not a number is told FAIL, and when
a batch's failed fraction exceeds ``max_failure_rate`` the sweep stops by re-raising that
error (the command exits non-zero). Additions that change nothing unless used: a job that
raises ``optuna.TrialPruned`` is PRUNED; ``non_finite: prune`` makes NaN/inf PRUNED.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from hydra.core.plugins import Plugins
from hydra.utils import get_method
from omegaconf import OmegaConf

from . import _results as results
from . import factory, search_space, settings
from ._heartbeat import Heartbeat, fail_orphaned_trials
from ._outcome import tell
from ._quiet import heartbeat_notes_quiet
from .storage import (
    STUDY_ENV,
    TRIAL_ENV,
    mask,
    mask_value,
    open_storage,
    register_in_memory,
    storage_url,
)

if TYPE_CHECKING:  # Hydra's plugin scan executes this module: Optuna loads in sweep()
    import optuna
    from hydra.types import HydraContext, TaskFunction
    from omegaconf import DictConfig

log = logging.getLogger(__name__)

GRID = "optuna.samplers.GridSampler"
SEARCH_SPACE_URL = "https://hydra.cc/docs/next/upgrades/1.1_to_1.2/changes_to_sweeper_config/"


def refuse(message: str) -> NoReturn:
    """A sweep that cannot start: one line on stderr, exit 2, before any study exists."""
    print(f"optuna sweeper: {message}", file=sys.stderr)
    sys.exit(2)


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _format(value: Any) -> str:
    """A sampled value as an override value Hydra parses back to the same value."""
    if value is None:
        return "null"
    if isinstance(value, str):
        simple = value and all(c.isalnum() or c in "_-./:+" for c in value)
        return value if simple else _quote(value)
    return str(value)


class OptunaSweeperImpl:
    def __init__(
        self,
        sampler: Any,
        direction: Any,
        storage: Any,
        study_name: str | None,
        n_trials: int,
        n_jobs: int,
        max_failure_rate: float,
        search_space: Any,
        params: Any,
        custom_search_space: str | None,
        pruner: Any,
        non_finite: str,
        reseed_on_resume: bool,
        heartbeat_interval: int | None,
        grace_period: int | None,
        max_retry: int | None,
    ) -> None:
        self.sampler_cfg = sampler
        self.pruner_cfg = pruner
        self.direction = direction
        self.storage = storage
        self.study_name = study_name
        self.n_trials = n_trials
        self.n_jobs = n_jobs
        self.max_failure_rate = max_failure_rate
        self.search_space = search_space
        self.params = params
        self.custom_search_space = custom_search_space
        self.non_finite = non_finite
        self.reseed_on_resume = reseed_on_resume
        self.heartbeat_interval = heartbeat_interval
        self.grace_period = grace_period
        self.max_retry = max_retry
        self.job_idx = 0

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.job_idx = 0
        self.config = config
        self.hydra_context = hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function
        )
        self.base_dir = Path(config.hydra.runtime.cwd)
        sweep_dir = Path(config.hydra.sweep.dir)
        self.sweep_dir = sweep_dir if sweep_dir.is_absolute() else self.base_dir / sweep_dir

    # -- checks: all before any study exists ------------------------------------------

    def _check_settings(self) -> list[str]:
        keys = ("n_trials", "n_jobs", "max_failure_rate", "non_finite", "heartbeat_interval")
        sweeper = {key: getattr(self, key) for key in keys}
        try:
            return settings.check({**sweeper, "storage": self.storage, "direction": self.direction})
        except settings.SettingsError as err:
            refuse(str(err))

    def _overrides(self, arguments: list[str]) -> list[str]:
        """``hydra.sweeper.params`` then the command line's sweep arguments (1.3's order)."""
        params = [f"{k!s}={v}" for k, v in (self.params or {}).items()]
        return params + list(arguments)

    def _space(self, arguments: list[str]) -> tuple[dict[str, Any], dict[str, str]]:
        migrated: dict[str, Any] = {}
        if self.search_space is not None:
            if self.params is not None:
                log.warning(
                    "both hydra.sweeper.params and hydra.sweeper.search_space are set: "
                    "using params, ignoring search_space (%s)",
                    SEARCH_SPACE_URL,
                )
            else:
                log.warning(
                    "hydra.sweeper.search_space is deprecated: migrated to a search space; "
                    "write it as hydra.sweeper.params (%s)",
                    SEARCH_SPACE_URL,
                )
                migrated = search_space.from_search_space(
                    OmegaConf.to_container(self.search_space, resolve=True)  # type: ignore[arg-type]
                )
        space, fixed = search_space.parse(self._overrides(arguments))
        space = {**{k: d for k, d in migrated.items() if k not in fixed}, **space}
        return space, fixed

    def _grid(self, overrides: list[str], space: dict[str, Any]) -> list[dict[str, Any]]:
        return search_space.grid(overrides, space, seed=self.sampler_cfg.get("seed"))

    # -- the study ----------------------------------------------------------------------

    def _open_storage(self) -> Any:
        return open_storage(
            self.storage, self.base_dir, self.heartbeat_interval, self.grace_period, self.max_retry
        )

    def _sampler(self, grid: bool, done: int) -> Any:
        import optuna

        if grid:  # the sweeper enqueues every grid point; this samples only custom params
            return optuna.samplers.RandomSampler(seed=self.sampler_cfg.get("seed"))
        seed = self.sampler_cfg.get("seed")
        if self.reseed_on_resume and done and seed is not None:
            log.info("resumed study: sampler seed %d + %d trials so far", seed, done)
            return factory.build(self.sampler_cfg, "hydra.sweeper.sampler", seed=seed + done)
        return factory.build(self.sampler_cfg, "hydra.sweeper.sampler")

    def _create_study(self, directions: list[str], grid: bool) -> optuna.Study:
        import optuna

        storage = self._open_storage()
        pruner = factory.build(self.pruner_cfg, "hydra.sweeper.pruner")
        study = optuna.create_study(
            study_name=self.study_name,
            storage=storage,
            sampler=optuna.samplers.RandomSampler(),  # replaced below, once trials are known
            pruner=pruner,
            directions=directions,
            load_if_exists=True,
        )
        done = len(study.get_trials(deepcopy=False))
        study = optuna.load_study(
            study_name=study.study_name,
            storage=storage,
            sampler=self._sampler(grid, done),
            pruner=pruner,
        )
        if isinstance(storage, optuna.storages.InMemoryStorage):
            register_in_memory(study.study_name, storage)
        if self.heartbeat_interval is not None:
            with heartbeat_notes_quiet():
                optuna.storages.fail_stale_trials(study)
        fail_orphaned_trials(study, storage)  # left RUNNING by a killed sweep, heartbeat or not
        self.storage_obj = storage
        return study

    # -- the sweep ------------------------------------------------------------------------

    def sweep(self, arguments: list[str]) -> None:
        from optuna.trial import TrialState

        directions = self._check_settings()
        grid = factory.target_of(self.sampler_cfg) == GRID
        try:
            space, fixed = self._space(list(arguments))
            points = self._grid(self._overrides(list(arguments)), space) if grid else []
        except search_space.SearchSpaceError as err:
            refuse(f"invalid sweep param {err}")
        extend = get_method(self.custom_search_space) if self.custom_search_space else None

        study = self._create_study(directions, grid)
        n_trials = self.n_trials
        if grid:
            todo, waiting = self._unvisited(study, points)
            n_trials = min(n_trials, len(todo) + waiting)
            log.info("grid sampler: %d of %d points to run", len(todo) + waiting, len(points))
        log.info("Study name: %s", study.study_name)
        log.info("Storage: %s", mask(storage_url(self.storage, self.base_dir)))
        log.info("Sampler: %s", "GridSampler" if grid else type(study.sampler).__name__)
        log.info("Directions: %s", directions)

        while n_trials > 0:
            batch = min(n_trials, self.n_jobs)
            trials = []
            for _ in range(batch):
                if grid and waiting:
                    waiting -= 1  # ask() runs a queued point first (e.g. a stale trial's retry)
                elif grid:
                    study.enqueue_trial(todo.pop(0))
                with heartbeat_notes_quiet():
                    trials.append(study.ask(space))
            try:
                overrides = [self._configure(study, t, fixed, extend) for t in trials]
                with Heartbeat(self.storage_obj, self.heartbeat_interval, study, trials):
                    returns = self.launcher.launch(overrides, initial_job_idx=self.job_idx)
                self.job_idx += len(returns)
                failures = [
                    e
                    for t, r in zip(trials, returns, strict=True)
                    if (e := tell(study, t, r, len(directions), self.non_finite)) is not None
                ]
            except BaseException:
                # Ctrl-C, SIGTERM, a launcher error: no trial is left RUNNING.
                for t in trials:
                    study.tell(t, state=TrialState.FAIL, skip_if_finished=True)
                raise
            if failures and len(failures) / len(returns) > self.max_failure_rate:
                log.error(
                    "Failed %d times out of %d with max_failure_rate=%s.",
                    len(failures),
                    len(returns),
                    self.max_failure_rate,
                )
                raise failures[0]
            n_trials -= batch
        results.write(study, self.sweep_dir)

    def _unvisited(
        self, study: optuna.Study, points: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], int]:
        """Grid points with no COMPLETE or PRUNED trial and not queued, and how many
        trials are queued (WAITING: ask() runs them first).

        A FAIL trial, or one left RUNNING by a sweep that died, has not visited its point.
        """
        from optuna.trial import TrialState

        keys = list(points[0]) if points else []

        def key(params: dict[str, Any]) -> tuple[Any, ...] | None:
            return tuple(params[k] for k in keys) if all(k in params for k in keys) else None

        done = {
            key(t.params)
            for t in study.get_trials(
                deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)
            )
        }
        waiting = [
            key(t.system_attrs.get("fixed_params", {}))
            for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        ]
        queued = {k for k in waiting if k is not None}
        todo = [p for p in points if key(p) not in done and key(p) not in queued]
        return todo, len(waiting)

    def _configure(
        self, study: optuna.Study, trial: optuna.Trial, fixed: dict[str, str], extend: Any
    ) -> list[str]:
        for name, value in fixed.items():  # shown by optuna-dashboard: no password
            trial.set_user_attr(name, mask_value(name, value))
        if extend is not None:
            extend(self.config, trial)
        overlap = trial.params.keys() & fixed.keys()
        if overlap:
            raise ValueError(
                "Overlapping fixed parameters and search space parameters found!"
                f"Overlapping parameters: {sorted(overlap)}"
            )
        params = {**{k: _format(v) for k, v in trial.params.items()}, **fixed}
        link = [
            f"++hydra.job.env_set.{TRIAL_ENV}={trial.number}",
            f"++hydra.job.env_set.{STUDY_ENV}={_quote(study.study_name)}",
        ]
        return [f"{name}={value}" for name, value in params.items()] + link
