"""The job's side of an Optuna trial: report validation loss, obey the pruner, link runs.

A job may run in another process than the sweeper (joblib, submitit), so it reaches its
trial through the study's storage. With in-memory storage the sweeper registers the live
study in :data:`LIVE_STUDIES`, which works for jobs in the sweeper's own process.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

    from learnai.train import TrainState

log = logging.getLogger("learnai")

PRUNER_ATTR = "learnai.pruner"  # study user attr: the pruner's config, for the jobs
LIVE_STUDIES: dict[str, optuna.Study] = {}


def _load_study(name: str, storage: str | None) -> optuna.Study | None:
    import optuna
    from hydra.utils import instantiate

    from learnai.stores import open_optuna_storage

    if storage is None:
        return LIVE_STUDIES.get(name)
    rdb = open_optuna_storage(storage)
    study_id = rdb.get_study_id_from_name(name)
    pruner_cfg = rdb.get_study_user_attrs(study_id).get(PRUNER_ATTR)
    pruner = instantiate(pruner_cfg) if pruner_cfg else optuna.pruners.NopPruner()
    return optuna.load_study(study_name=name, storage=rdb, pruner=pruner)


class TrialLink:
    def __init__(self, study: optuna.Study, trial: optuna.Trial, report_every: int) -> None:
        self.study = study
        self.trial = trial
        self.report_every = report_every
        self._last_reported: tuple[int, float] | None = None

    @classmethod
    def connect(
        cls, study_name: str, storage: str | None, number: int, report_every: int = 10
    ) -> TrialLink | None:
        import optuna

        study = _load_study(study_name, storage)
        if study is None:
            log.warning(
                "study %r is in another process's memory: trial %d will not be "
                "pruned or linked (give the sweeper a storage)",
                study_name,
                number,
            )
            return None
        trial_id = study._storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
        return cls(study, optuna.Trial(study, trial_id), report_every)

    def attach(self, run_id: str) -> None:
        self.trial.set_user_attr("mlflow_run_id", run_id)

    def finish(self, outcome: str) -> None:
        self.trial.set_user_attr("outcome", outcome)

    def report(self, step: int, value: float) -> None:
        if math.isfinite(value):
            self.trial.report(value, step)
            self._last_reported = (step, value)

    def report_last_finite(self, val_losses: list[float]) -> None:
        """A diverged trial keeps its last finite loss, so the sampler ranks it."""
        for epoch in range(len(val_losses) - 1, -1, -1):
            if math.isfinite(val_losses[epoch]):
                if self._last_reported is None or self._last_reported[0] < epoch + 1:
                    self.report(epoch + 1, val_losses[epoch])
                return

    def pruning_callback(self) -> _Pruning:
        return _Pruning(self)


class _Pruning:
    """Training callback: report every ``report_every`` epochs, stop when told to."""

    def __init__(self, link: TrialLink) -> None:
        self.link = link

    def on_chunk(self, state: TrainState) -> None:
        every = self.link.report_every
        reported = False
        for epoch in range(state.new_from, len(state.val_loss)):
            step = epoch + 1
            if step % every == 0 or step == state.epochs:
                self.link.report(step, state.val_loss[epoch])
                reported = True
        if reported and state.stop is None and self.link.trial.should_prune():
            state.stop = "pruned"


def pruner_config(pruner_cfg: Any) -> dict[str, Any]:
    """A plain-dict copy of the pruner config, stored on the study for the jobs."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(pruner_cfg, resolve=True)  # type: ignore[return-value]
