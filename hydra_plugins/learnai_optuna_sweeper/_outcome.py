"""How one job's outcome is told to its trial (see :mod:`._impl` for the rules).

A job that raised ``optuna.TrialPruned`` is recorded PRUNED without Hydra's ``Error
executing job`` line: pruning is how a trial ends early, not a failure (the job prints
its own line). Any other exception keeps Hydra's line and becomes a FAIL.
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

log = logging.getLogger("hydra_plugins.learnai_optuna_sweeper._impl")


def tell(
    study: optuna.Study, trial: optuna.Trial, ret: Any, n_objectives: int, non_finite: str
) -> BaseException | None:
    """Tell one job's outcome; the error when it counts as a failed trial."""
    import optuna
    from optuna.trial import TrialState

    if isinstance(_raised(ret), optuna.TrialPruned):  # the job told its own line
        study.tell(trial, state=TrialState.PRUNED)
        return None
    try:
        value = ret.return_value  # re-raises the job's exception, after Hydra's line
    except optuna.TrialPruned:
        study.tell(trial, state=TrialState.PRUNED)
        return None
    except Exception as err:
        return _fail(study, trial, err)
    try:
        values = _values(value, n_objectives)
    except ValueError as err:
        return _fail(study, trial, err)
    if non_finite == "prune" and not all(math.isfinite(v) for v in values):
        study.tell(trial, state=TrialState.PRUNED)
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "nan is not acceptable": FAIL
        study.tell(trial, values)
    return None


def _raised(ret: Any) -> BaseException | None:
    """The exception a failed job raised, read without ``JobReturn.return_value``: that
    property writes ``Error executing job with overrides: [...]`` to stderr before it
    re-raises, which for a pruned trial is noise. JobReturn is a dataclass: a copy with
    the status COMPLETED hands the stored value back as it is."""
    import dataclasses

    from hydra.core.utils import JobStatus

    if getattr(ret, "status", None) != JobStatus.FAILED or not dataclasses.is_dataclass(ret):
        return None
    value = dataclasses.replace(ret, status=JobStatus.COMPLETED).return_value
    return value if isinstance(value, BaseException) else None


def _fail(study: optuna.Study, trial: optuna.Trial, err: Exception) -> Exception:
    """Tell FAIL, keeping the error on the trial (user attr ``error``) for later reading."""
    from optuna.trial import TrialState

    log.warning("Failed experiment: %s", err)
    trial.set_user_attr("error", f"{type(err).__name__}: {err}"[:500])
    study.tell(trial, state=TrialState.FAIL)
    return err


def _values(value: Any, n_objectives: int) -> list[float]:
    if n_objectives == 1:
        try:
            return [float(value)]
        except (ValueError, TypeError):
            raise ValueError(f"Return value must be float-castable. Got '{value}'.") from None
    try:
        values = [float(v) for v in value]
    except (ValueError, TypeError):
        raise ValueError(
            f"Return value must be a list or tuple of float-castable values. Got '{value}'."
        ) from None
    if len(values) != n_objectives:
        raise ValueError(
            "The number of the values and the number of the objectives are mismatched. "
            f"Expect {n_objectives}, but actually {len(values)}."
        )
    return values
