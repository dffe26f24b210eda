"""A group of runs trained as one stacked model, each still recorded as its own run.

The stages are :mod:`learnai.train.run`'s: every member is opened (:func:`open_run`:
validated, stores checked, its MLflow run created and linked to its trial), built
exactly as :func:`run` builds it (seeded, then data, then model), trained in the group
(:class:`StackedTrainer`), then measured, drawn, logged and ended by
:func:`finish_run`. A member that fails is ended FAILED alone; Ctrl-C ends every
member still open KILLED.

The caller (a Hydra launcher) says how each member becomes "the current job" while its
run is opened and finished: its Hydra config and its ``hydra.job.env_set`` (where an
Optuna trial's number travels).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from learnai.train.run import OpenRun, Result
    from learnai.train.stacked import Member

log = logging.getLogger("learnai")

__all__ = ["GroupJob", "run_group"]


@dataclass
class GroupJob:
    cfg: DictConfig  # the job's task config (no ``hydra`` node)
    enter: Callable[[], contextlib.AbstractContextManager[Any]]  # make it the current job


def run_group(jobs: list[GroupJob]) -> list[Any]:
    """Train ``jobs`` stacked; per job, what :func:`learnai.train.run.train` would give:
    the objective, or the exception it would raise (``optuna.TrialPruned`` included)."""
    from learnai.train.device import resolve_device, set_threads
    from learnai.train.stacked import StackedTrainer

    first = jobs[0].cfg
    with jobs[0].enter():
        device = resolve_device(first.trainer.device)  # one device for the whole group
        set_threads(first.trainer.num_threads)
    outcomes: list[Any] = [None] * len(jobs)
    opened: dict[int, OpenRun] = {}
    members: dict[int, Member] = {}
    try:
        for i, job in enumerate(jobs):
            with job.enter():
                _open(i, job.cfg, device, outcomes, opened, members)
        if not members:  # every job was refused before its run existed
            return outcomes
        for i in members:  # the group writes metrics about as often as one run does
            opened[i].recorder.flush_every_s = jobs[i].cfg.tracking.flush_every_s * len(members)
        log.info("training %d runs as one stacked model on %s", len(members), device)
        histories = StackedTrainer(list(members.values()), _Progress(len(members))).fit()
    except BaseException as exc:  # Ctrl-C, SIGTERM, or the group itself failed
        _end_all(opened, outcomes, exc)
        if not isinstance(exc, Exception):
            raise
        return outcomes
    todo = dict(zip(members, histories, strict=True))
    try:
        for i in list(todo):
            history = todo.pop(i)
            with jobs[i].enter():
                outcomes[i] = _finish(jobs[i].cfg, opened.pop(i), members[i], history)
    except BaseException as exc:
        _end_all({i: opened[i] for i in todo}, outcomes, exc)
        raise
    return outcomes


def _open(
    i: int,
    cfg: DictConfig,
    device: Any,
    outcomes: list[Any],
    opened: dict[int, OpenRun],
    members: dict[int, Member],
) -> None:
    """Open member ``i``'s run and build it as :func:`learnai.train.run.run` does."""
    import torch
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from learnai.train.progress import Progress
    from learnai.train.run import log_params, make_trainer, open_run
    from learnai.train.stacked import Member

    try:
        job = open_run(cfg, device)
    except Exception as exc:  # refused before its run exists: the job fails alone
        outcomes[i] = exc
        return
    opened[i] = job
    try:
        torch.manual_seed(cfg.trainer.seed)
        data = instantiate(cfg.data).to(job.device)
        model = instantiate(cfg.model, n_in=data.n_features).to(job.device)
        log_params(job, cfg)
        trainer = make_trainer(cfg, job, data)  # data: the trial's report cap
        # one progress line for the group instead of one bar per member
        trainer.callbacks = [c for c in trainer.callbacks if not isinstance(c, Progress)]
        optimizer = OmegaConf.to_container(cfg.optimizer, resolve=True)
        members[i] = Member(trainer, model, data, optimizer)  # type: ignore[arg-type]
    except Exception as exc:
        outcomes[i] = _failed(opened.pop(i), exc)


def _finish(cfg: DictConfig, job: OpenRun, member: Member, history: Any) -> Any:
    from learnai.train.run import finish_run, summarise

    try:
        result = finish_run(cfg, job, member.model, member.data, history)
    except Exception as exc:
        return _failed(job, exc)
    except BaseException as exc:
        _failed(job, exc)
        raise
    summarise(result, job)
    return _objective(result)


def _objective(result: Result) -> Any:
    """What :func:`learnai.train.run.train` returns, or the exception it raises."""
    if result.outcome == "pruned":
        import optuna

        return optuna.TrialPruned(f"pruned at val_loss={result.final_val_loss:.6g}")
    return result.objective


def _failed(job: OpenRun, exc: BaseException) -> BaseException:
    """End the member's run as :func:`end_failed` does; the error it would raise."""
    from learnai.train.run import end_failed

    try:
        end_failed(job, exc)
    except BaseException as raised:
        return raised
    return exc  # not reached: end_failed always raises


def _end_all(opened: dict[int, OpenRun], outcomes: list[Any], exc: BaseException) -> None:
    for i, job in opened.items():
        if outcomes[i] is None:
            outcomes[i] = _failed(job, exc)


class _Progress:
    """A line at each quarter of the group's epochs (members log nothing while stacked)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.next = 0.25

    def __call__(self, epoch: int, epochs: int, training: int) -> None:
        if epoch / epochs >= self.next or training == 0:
            log.info(
                "stacked %d runs: epoch %d/%d, %d training", self.size, epoch, epochs, training
            )
            while self.next <= epoch / epochs:
                self.next += 0.25
