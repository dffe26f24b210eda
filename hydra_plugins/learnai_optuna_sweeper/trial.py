"""A job's Optuna trial, for any Hydra app swept with ``hydra/sweeper=optuna``.

Report intermediate values, let the pruner stop the job, link the trial to other records
(a tracker's run id) -- from the task function, with no key in the app's config::

    import hydra
    import optuna
    from hydra_plugins.learnai_optuna_sweeper.trial import current_trial

    @hydra.main(...)
    def main(cfg) -> float:
        trial = current_trial()  # None outside an Optuna sweep
        for epoch in range(cfg.epochs):
            loss = train_one_epoch()
            if trial is not None:
                trial.report(loss, step=epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned()  # the sweeper records the trial PRUNED
        return loss

The sweeper passes the trial number and study name in the job's ``hydra.job.env_set``; the
storage and pruner come from the job's own ``hydra.sweeper`` config, so jobs in other
processes (joblib, submitit) reach their trial through an RDB storage. An in-memory study
is reachable only from jobs that run in the sweeper's process (the basic launcher).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # Hydra's plugin scan executes this module: Optuna loads when used
    import optuna
    from optuna.storages import BaseStorage

__all__ = ["JobTrial", "current_trial"]

log = logging.getLogger(__name__)


class JobTrial:
    """The running job's trial, through the storage's public methods (the sweeper owns
    the ``optuna.Trial``; the job may run in another process)."""

    def __init__(self, storage: BaseStorage, study: optuna.Study, number: int) -> None:
        self._storage = storage
        self._study = study
        self.number = number
        self.study_name = study.study_name
        study_id = storage.get_study_id_from_name(study.study_name)
        self._trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, number)

    def _frozen(self) -> optuna.trial.FrozenTrial:
        return self._storage.get_trial(self._trial_id)

    @property
    def params(self) -> dict[str, Any]:
        """The values the sweeper sampled for this job."""
        return self._frozen().params

    @property
    def user_attrs(self) -> dict[str, Any]:
        return self._frozen().user_attrs

    def report(self, value: float, step: int) -> None:
        """Record an intermediate objective ``value`` at ``step`` (once per step: the
        pruner compares trials step by step)."""
        if step in self._frozen().intermediate_values:
            log.warning("trial %d: step %d was already reported; ignored", self.number, step)
            return
        self._storage.set_trial_intermediate_value(self._trial_id, step, float(value))

    def should_prune(self) -> bool:
        """Whether the study's pruner (``hydra.sweeper.pruner``) would stop this trial now."""
        if len(self._study.directions) > 1:
            raise NotImplementedError("pruning is not supported for multi-objective studies")
        return self._study.pruner.prune(self._study, self._frozen())

    def set_user_attr(self, key: str, value: Any) -> None:
        """Attach ``value`` to the trial (a link to the job's run in a tracker, ...)."""
        self._storage.set_trial_user_attr(self._trial_id, key, value)

    def save_note(self, markdown: str) -> bool:
        """The trial's note in optuna-dashboard (markdown, rendered: links open), when
        optuna-dashboard is installed; whether it was saved. User attrs show as text."""
        try:
            from optuna_dashboard import save_note
        except ImportError:
            return False
        import optuna

        save_note(optuna.trial.Trial(self._study, self._trial_id), markdown)
        return True


# One JobTrial per (storage, study, trial) in this process: the study is loaded once.
_cache: dict[tuple[int, str, int], JobTrial] = {}


def current_trial() -> JobTrial | None:
    """The trial of the job running now, or None when it is not an Optuna sweep's job."""
    from hydra.core.hydra_config import HydraConfig

    from .storage import STUDY_ENV, TRIAL_ENV, in_memory, open_rdb, storage_url

    number, name = os.environ.get(TRIAL_ENV), os.environ.get(STUDY_ENV)
    if number is None or name is None or not HydraConfig.initialized():
        return None
    hc = HydraConfig.get()
    url = storage_url(hc.sweeper.get("storage"), Path(hc.runtime.cwd))
    storage = open_rdb(url) if url is not None else in_memory(name)
    key = (id(storage), name, int(number))
    if key not in _cache:
        trial = _connect(hc, storage, name, int(number))
        if trial is None:
            return None
        _cache[key] = trial
    return _cache[key]


def _connect(hc: Any, storage: BaseStorage | None, name: str, number: int) -> JobTrial | None:
    import optuna

    from . import factory

    if storage is None:
        log.warning(
            "study %r is in another process's memory: trial %d cannot report or be pruned "
            "(give the sweeper a storage: hydra.sweeper.storage=sqlite:///optuna.db)",
            name,
            number,
        )
        return None
    pruner_cfg = hc.sweeper.get("pruner")
    pruner = (
        factory.build(pruner_cfg, "hydra.sweeper.pruner")
        if pruner_cfg is not None
        else optuna.pruners.NopPruner()
    )
    study = optuna.load_study(study_name=name, storage=storage, pruner=pruner)
    return JobTrial(storage, study, number)
