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

from learnai.config import ConfigError, exit_with, validate
from learnai.sweeper import search_space
from learnai.sweeper.trial_link import LIVE_STUDIES, PRUNER_ATTR, pruner_config

log = logging.getLogger("learnai")


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

    def _check_settings(self) -> None:
        def bad(key: str, value: Any, rule: str) -> None:
            exit_with(ConfigError(f"invalid value for hydra.sweeper.{key}: {value!r} ({rule})"))

        if self.direction not in ("minimize", "maximize"):
            bad("direction", self.direction, "must be minimize or maximize")
        if self.n_trials < 1:
            bad("n_trials", self.n_trials, "must be >= 1")
        if self.n_jobs < 1:
            bad("n_jobs", self.n_jobs, "must be >= 1")
        if not 0 <= self.max_failure_rate <= 1:
            bad("max_failure_rate", self.max_failure_rate, "must be in [0, 1]")

    def _check_space(self, space: dict[str, Any], fixed: dict[str, str]) -> None:
        """Compose the config at each bound/choice and validate, before any trial exists."""
        loader = self.hydra_context.config_loader
        base = [f"{k}={v}" for k, v in fixed.items()]
        try:
            validate(loader.load_sweep_config(self.config, base))
            for key, dist in space.items():
                for value in search_space.endpoints(dist):
                    validate(loader.load_sweep_config(self.config, [*base, f"{key}={value}"]))
        except ConfigError as err:
            exit_with(ConfigError(f"{err} [from the search space of hydra.sweeper.params]"))

    # -- the sweep -------------------------------------------------------------------

    def _storage_url(self) -> str | None:
        from learnai.tracking import resolve_uri

        if self.storage is None:
            return None
        return resolve_uri(str(self.storage), Path(self.config.hydra.runtime.cwd))

    def _create_study(self, space: dict[str, Any]) -> optuna.Study:
        from learnai.stores import open_optuna_storage

        sampler = self.sampler
        if isinstance(sampler, functools.partial):  # GridSampler: points from the space
            grid = {k: search_space.grid_values(d) for k, d in space.items()}
            sampler = sampler(grid)
            size = math.prod(len(v) for v in grid.values())
            if size < self.n_trials:
                log.info("grid sampler: %d points, so n_trials %d -> %d", size, self.n_trials, size)
                self.n_trials = size
        pruner = self.pruner
        name = self.study_name or self.config.tracking.experiment
        storage = open_optuna_storage(self._storage_url())
        study = optuna.create_study(
            study_name=name,
            storage=storage,
            sampler=sampler,
            pruner=pruner,
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
            trial._suggest(key, dist)
        if self.custom_search_space:
            get_method(self.custom_search_space)(self.config, trial)
        params = {**trial.params, **fixed}
        link = [f"trial.study={trial.study.study_name}", f"trial.number={trial.number}"]
        url = self._storage_url()
        if url is not None:
            link.append(f"trial.storage='{url}'")
        return [f"{k}={v}" for k, v in params.items()] + link

    def sweep(self, arguments: list[str]) -> list[Any]:
        from learnai import sweep_tracking

        self._check_settings()
        params = [f"{k}={v}" for k, v in self.params.items()]
        try:
            space, fixed = search_space.parse(params + list(arguments))
        except search_space.SearchSpaceError as err:
            exit_with(ConfigError(f"invalid sweep param {err}"))
        self._check_space(space, fixed)
        study = self._create_study(space)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        if not sweep_dir.is_absolute():
            sweep_dir = Path(self.config.hydra.runtime.cwd) / sweep_dir
        parent = sweep_tracking.current_parent(sweep_dir)
        first = len(study.trials)
        log.info(
            "study %r: %d trials so far, running %d more (%s, %s)",
            study.study_name,
            first,
            self.n_trials,
            type(study.sampler).__name__,
            type(study.pruner).__name__,
        )

        results: list[Any] = []
        failures = 0
        remaining = self.n_trials
        while remaining > 0:
            batch = min(self.n_jobs, remaining)
            trials = [study.ask() for _ in range(batch)]
            overrides = [self._trial_overrides(t, space, fixed) for t in trials]
            returns = self.launcher.launch(overrides, initial_job_idx=self.job_idx)
            self.job_idx += len(returns)
            batch_failures = sum(
                self._tell(study, t, r) for t, r in zip(trials, returns, strict=True)
            )
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

        from learnai.sweeper.study_report import report_study

        new_trials = study.trials[first:]
        report_study(study, new_trials, parent, self._storage_url())
        sweep_tracking.note_failures(failures)
        return results

    def _tell(self, study: optuna.Study, trial: optuna.Trial, ret: Any) -> bool:
        """Record one job's result on its trial; True when the trial failed."""
        if ret.status == JobStatus.COMPLETED:
            try:
                value = float(ret.return_value)
            except (TypeError, ValueError):
                log.warning(
                    "trial %d returned %r, not a number: FAIL", trial.number, ret.return_value
                )
                trial.set_user_attr("error", f"returned {ret.return_value!r}"[:500])
                study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
                return True
            if math.isfinite(value):
                study.tell(trial.number, value, skip_if_finished=True)
            else:
                if "outcome" not in trial.user_attrs:  # the job sets it when it can
                    trial.set_user_attr("outcome", "diverged")
                study.tell(trial.number, state=TrialState.PRUNED, skip_if_finished=True)
            return False
        error = ret._return_value
        if isinstance(error, optuna.TrialPruned):
            study.tell(trial.number, state=TrialState.PRUNED, skip_if_finished=True)
            return False
        log.warning("trial %d failed: %s: %s", trial.number, type(error).__name__, error)
        trial.set_user_attr("error", f"{type(error).__name__}: {error}"[:500])
        study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
        return True


def describe(study: optuna.Study) -> dict[str, Any]:
    """Best trial and state counts, for the console and the parent run."""
    counts: dict[str, int] = {}
    for t in study.trials:
        counts[t.state.name.lower()] = counts.get(t.state.name.lower(), 0) + 1
    out: dict[str, Any] = {"study": study.study_name, "trials": len(study.trials), "states": counts}
    try:
        best = study.best_trial
    except ValueError:
        return out
    out.update(
        best_value=best.value,
        best_params=best.params,
        best_trial=best.number,
        best_run_id=best.user_attrs.get("mlflow_run_id"),
    )
    return out
