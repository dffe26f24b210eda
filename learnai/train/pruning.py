"""Training callback that links a run to its Optuna trial: report, and stop when pruned.

The trial itself comes from the sweeper plugin's public
:func:`hydra_plugins.learnai_optuna_sweeper.trial.current_trial`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hydra_plugins.learnai_optuna_sweeper.trial import JobTrial
    from learnai.train.loop import TrainState


class PruningCallback:
    """Report val loss every ``every`` epochs; stop training when the pruner says so.

    With a ``ceiling`` (learnai passes the validation loss of predicting the mean, where
    val_r2 = 0), reported values are capped there: a trial that blew up to 6e19 reports
    the ceiling, and the study's plots (optuna-dashboard's history, intermediate values,
    slice, EDF) keep the other trials readable. The cap is one number for the whole
    study and keeps every value below it as it is, so the pruner's comparisons at a step
    are unchanged except that trials worse than the mean tie; a pruned trial's value (its
    last intermediate value) stays in the objective's unit, the validation MSE.
    """

    def __init__(self, trial: JobTrial, every: int, ceiling: float | None = None) -> None:
        self.trial = trial
        self.every = every
        self.ceiling = ceiling if ceiling is not None and ceiling > 0 else None
        self.last_step = 0

    def report(self, step: int, value: float) -> None:
        if math.isfinite(value) and step > self.last_step:
            if self.ceiling is not None:
                value = min(value, self.ceiling)
            self.trial.report(value, step)
            self.last_step = step

    def on_chunk(self, state: TrainState) -> None:
        reported = False
        for epoch in range(state.new_from, len(state.val_loss)):
            step = epoch + 1
            if step % self.every == 0 or step == state.epochs:
                self.report(step, state.val_loss[epoch])
                reported = True
        if reported and state.stop is None and self.trial.should_prune():
            state.stop = "pruned"

    def report_last_finite(self, val_losses: list[float]) -> None:
        """A diverged run keeps its last finite loss as the trial's value (PRUNED trials
        take their last intermediate value), so samplers can rank it."""
        for epoch in range(len(val_losses) - 1, -1, -1):
            if math.isfinite(val_losses[epoch]):
                self.report(epoch + 1, val_losses[epoch])
                return
