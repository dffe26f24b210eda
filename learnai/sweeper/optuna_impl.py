"""The Optuna sweeper: ask -> launch -> tell, on current Optuna.

Outcomes and how they are told:

* a finite objective: COMPLETE with that value;
* a non-finite objective (the run diverged, or returned NaN/inf): PRUNED. Optuna keeps
  the last finite validation loss the job reported as the trial's value; samplers rank
  pruned trials below every complete one, so they learn the region is bad, and a pruned
  trial can never become the study's best;
* ``optuna.TrialPruned`` from the job (the pruner stopped it): PRUNED;
* any other exception: FAIL. The sweep goes on; the summary and the exit code report it.
"""

from __future__ import annotations

import functools
import logging
import math
from pathlib import Path
from typing import Any

import optuna
from hydra.core.plugins import Plugins
from hydra.core.utils import JobStatus
from hydra.types import HydraContext, TaskFunction
from hydra.utils import get_method
from omegaconf import DictConfig
from optuna.trial import TrialState

from learnai.config import ConfigError, exit_with, validate_job
from learnai.sweeper import search_space
from learnai.sweeper.trial_link import LIVE_STUDIES, PRUNER_ATTR, pruner_config

log = logging.getLogger("learnai")


def _check_settings(settings: Any) -> None:
    def bad(key: str, value: Any, rule: str) -> None:
        exit_with(ConfigError(f"invalid value for hydra.sweeper.{key}: {value!r} ({rule})"))

    if settings.direction not in ("minimize", "maximize"):
        bad("direction", settings.direction, "must be minimize or maximize")
    if settings.n_trials < 1:
        bad("n_trials", settings.n_trials, "must be >= 1")
    if settings.n_jobs < 1:
        bad("n_jobs", settings.n_jobs, "must be >= 1")
    if not 0 <= settings.max_failure_rate <= 1:
        bad("max_failure_rate", settings.max_failure_rate, "must be in [0, 1]")


def check_sweep(
    config: DictConfig, loader: Any, settings: Any, arguments: list[str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Validate the sweeper settings and every bound/choice of the search space.

    Runs before any MLflow run, study or trial exists (the sweep callback calls it
    first); a bad value exits 2 with one line naming it.
    """
    _check_settings(settings)
    params = [f"{k}={v}" for k, v in (settings.params or {}).items()]
    try:
        space, fixed = search_space.parse(params + list(arguments))
    except search_space.SearchSpaceError as err:
        exit_with(ConfigError(f"invalid sweep param {err}"))
    base = [f"{k}={v}" for k, v in fixed.items()]
    try:
        validate_job(loader, config, base)
        for key, dist in space.items():
            for value in search_space.endpoints(dist):
                validate_job(loader, config, [*base, f"{key}={value}"])
    except ConfigError as err:
        exit_with(ConfigError(f"{err} [from the sweep's search space]"))
    return space, fixed


def _trial_count(name: str, storage: Any) -> int:
    """Trials already in study ``name`` (0 when it does not exist yet)."""
    if storage is None:
        study = LIVE_STUDIES.get(name)
        return len(study.trials) if study else 0
    try:
        return len(optuna.load_study(study_name=name, storage=storage).trials)
    except KeyError:
        return 0


def _tell(
    study: optuna.Study, number: int, value: float | None = None, state: TrialState | None = None
) -> None:
    try:
        study.tell(number, value, state=state, skip_if_finished=True)
    except RuntimeError as err:
        # GridSampler calls study.stop() once the grid is used up, which Optuna only
        # allows inside study.optimize; the trial is stored before that, so go on.
        if "Study.stop" not in str(err):
            raise


class OptunaSweeperImpl:
    def __init__(
        self,
        sampler: Any,
        pruner: Any,
        direction: str,
        storage: str | None,
        study_name: str | None,
        n_trials: int,
        n_jobs: int,
        max_failure_rate: float,
        params: DictConfig | None,
        custom_search_space: str | None,
    ) -> None:
        # Hydra has already instantiated both (the grid sampler as a partial).
        self.sampler = sampler
        self.pruner = pruner
        self.direction = direction
        self.storage = storage
        self.study_name = study_name
        self.n_trials = n_trials
        self.n_jobs = n_jobs
        self.max_failure_rate = max_failure_rate
        self.params = params or {}
        self.custom_search_space = custom_search_space
        self.job_idx = 0

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function
        )

    # -- checks before anything is created --------------------------------------------

    # -- the sweep -------------------------------------------------------------------

    def _storage_url(self) -> str | None:
        from learnai.tracking import resolve_uri

        if self.storage is None:
            return None
        return resolve_uri(str(self.storage), Path(self.config.hydra.runtime.cwd))

    def _create_study(self, space: dict[str, Any]) -> optuna.Study:
        from hydra.utils import instantiate

        from learnai.stores import open_optuna_storage

        name = self.study_name or self.config.tracking.experiment
        storage = open_optuna_storage(self._storage_url())
        done = _trial_count(name, storage)
        sampler = self.sampler
        sampler_cfg = self.config.hydra.sweeper.sampler
        if isinstance(sampler, functools.partial):  # GridSampler: points from the space
            grid = {k: search_space.grid_values(d) for k, d in space.items()}
            sampler = sampler(grid)
            left = math.prod(len(v) for v in grid.values()) - done
            if left < self.n_trials:
                log.info(
                    "grid sampler: %d unvisited points, so n_trials %d -> %d",
                    max(left, 0),
                    self.n_trials,
                    max(left, 0),
                )
                self.n_trials = max(left, 0)
        elif done and sampler_cfg.get("seed") is not None:
            # A resumed study with the same seed would draw the same points again.
            sampler = instantiate(sampler_cfg, seed=int(sampler_cfg.seed) + done)
        study = optuna.create_study(
            study_name=name,
            storage=storage,
            sampler=sampler,
            pruner=self.pruner,
            direction=self.direction,
            load_if_exists=True,
        )
        study.set_user_attr(PRUNER_ATTR, pruner_config(self.config.hydra.sweeper.pruner))
        if storage is None:
            LIVE_STUDIES[name] = study
        return study

    def _trial_overrides(
        self, trial: optuna.Trial, space: dict[str, Any], fixed: dict[str, str]
    ) -> list[str]:
        for key, dist in space.items():
            try:
                trial._suggest(key, dist)
            except ValueError as err:  # e.g. a choice() that differs from the stored study
                raise search_space.SearchSpaceError(
                    f"{key}: does not match study {trial.study.study_name!r}: {err}"
                ) from err
        if self.custom_search_space:
            get_method(self.custom_search_space)(self.config, trial)
        params = {**trial.params, **fixed}
        link = [f"trial.study={trial.study.study_name}", f"trial.number={trial.number}"]
        url = self._storage_url()
        if url is not None:
            link.append(f"trial.storage='{url}'")
        return [f"{k}={v}" for k, v in params.items()] + link

    def sweep(self, arguments: list[str]) -> list[Any]:
        space, fixed = check_sweep(
            self.config, self.hydra_context.config_loader, self, list(arguments)
        )
        study = self._create_study(space)
        parent = None  # the entry point reports the study on the sweep's parent run
        first = len(study.trials)
        log.info(
            "study %r: %d trials so far, running %d more (%s, %s)",
            study.study_name,
            first,
            self.n_trials,
            type(study.sampler).__name__,
            type(study.pruner).__name__,
        )

        try:
            return self._run_trials(study, space, fixed, parent, first)
        except search_space.SearchSpaceError as err:
            exit_with(ConfigError(f"invalid sweep param {err}"))

    def _run_trials(
        self,
        study: optuna.Study,
        space: dict[str, Any],
        fixed: dict[str, str],
        parent: tuple[str, str] | None,
        first: int,
    ) -> list[Any]:
        results: list[Any] = []
        failures = 0
        remaining = self.n_trials
        while remaining > 0:
            batch = min(self.n_jobs, remaining)
            trials = [study.ask() for _ in range(batch)]
            try:
                overrides = [self._trial_overrides(t, space, fixed) for t in trials]
                returns = self.launcher.launch(overrides, initial_job_idx=self.job_idx)
                self.job_idx += len(returns)
                batch_failures = sum(
                    self._record(study, t, r) for t, r in zip(trials, returns, strict=True)
                )
            except BaseException:
                # Ctrl-C, SIGTERM, a launcher error: never leave trials RUNNING forever.
                for t in trials:
                    _tell(study, t.number, state=TrialState.FAIL)
                raise
            failures += batch_failures
            results.extend(returns)
            remaining -= batch
            if batch_failures / batch > self.max_failure_rate:
                log.error(
                    "%d of %d trials failed in the last batch (max_failure_rate=%s): "
                    "stopping the sweep",
                    batch_failures,
                    batch,
                    self.max_failure_rate,
                )
                break

        return results

    def _record(self, study: optuna.Study, trial: optuna.Trial, ret: Any) -> bool:
        """Record one job's result on its trial; True when the trial failed."""
        if ret.status == JobStatus.COMPLETED:
            try:
                value = float(ret.return_value)
            except (TypeError, ValueError):
                log.warning(
                    "trial %d returned %r, not a number: FAIL", trial.number, ret.return_value
                )
                trial.set_user_attr("error", f"returned {ret.return_value!r}"[:500])
                _tell(study, trial.number, state=TrialState.FAIL)
                return True
            if math.isfinite(value):
                _tell(study, trial.number, value)
            else:
                if "outcome" not in trial.user_attrs:  # the job sets it when it can
                    trial.set_user_attr("outcome", "diverged")
                _tell(study, trial.number, state=TrialState.PRUNED)
            return False
        error = ret._return_value
        if isinstance(error, optuna.TrialPruned):
            _tell(study, trial.number, state=TrialState.PRUNED)
            return False
        log.warning("trial %d failed: %s: %s", trial.number, type(error).__name__, error)
        trial.set_user_attr("error", f"{type(error).__name__}: {error}"[:500])
        _tell(study, trial.number, state=TrialState.FAIL)
        return True
