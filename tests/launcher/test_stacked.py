"""A stacked member trains as its solo run does: same losses, frames, stop and final
parameters within float tolerance; a member that diverges or is pruned stops alone."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from learnai.train.data import nonlinear
from learnai.train.loop import History, Trainer, TrainState
from learnai.train.models import GeneralFit
from learnai.train.stacked import Member, StackedTrainer


@dataclass
class Job:
    lr: float
    seed: int = 0
    data_seed: int = 0
    noise: float = 0.2
    momentum: float | None = None  # SGD when set
    prune_at: int | None = None  # a callback stops the run at this epoch's sync


class StopAt:
    """A pruner stand-in: stops training at the first sync at or past ``epoch``."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self.seen: list[int] = []

    def on_chunk(self, state: TrainState) -> None:
        self.seen.append(len(state.val_loss))
        if len(state.val_loss) >= self.epoch:
            state.stop = "pruned"


def _build(job: Job) -> tuple[Trainer, torch.nn.Module, object, dict, StopAt | None]:
    """As learnai.train.run.run builds a run: seed, then data, then model."""
    torch.manual_seed(job.seed)
    data = nonlinear(n_samples=200, noise=job.noise, seed=job.data_seed)
    model = GeneralFit(n_in=1, depth=2, hidden=16)
    stop = StopAt(job.prune_at) if job.prune_at else None
    trainer = Trainer(
        epochs=40, sync_every=7, frames=10, after_divergence=5, callbacks=[stop] if stop else []
    )
    if job.momentum is None:
        opt = {"_target_": "torch.optim.Adam", "lr": job.lr}
    else:
        opt = {"_target_": "torch.optim.SGD", "lr": job.lr, "momentum": job.momentum}
    return trainer, model, data, opt, stop


def _solo(job: Job) -> tuple[History, torch.nn.Module, list[int]]:
    trainer, model, data, opt, stop = _build(job)
    kwargs = {k: v for k, v in opt.items() if k != "_target_"}
    cls = torch.optim.Adam if opt["_target_"].endswith("Adam") else torch.optim.SGD
    history = trainer.fit(model, cls(model.parameters(), **kwargs), data)
    return history, model, stop.seen if stop else []


def _stacked(jobs: list[Job]) -> list[tuple[History, torch.nn.Module, list[int]]]:
    built = [_build(j) for j in jobs]
    members = [Member(t, m, d, o) for t, m, d, o, _ in built]
    histories = StackedTrainer(members).fit()
    return [(h, b[1], b[4].seen if b[4] else []) for h, b in zip(histories, built, strict=True)]


def _assert_same(stacked: tuple, solo: tuple) -> None:
    (h, model, seen), (h0, model0, seen0) = stacked, solo
    assert (h.stop, h.diverged_at, h.epochs_run, h.frame_epochs, seen) == (
        h0.stop,
        h0.diverged_at,
        h0.epochs_run,
        h0.frame_epochs,
        seen0,
    )
    np.testing.assert_allclose(h.train_loss, h0.train_loss, rtol=1e-4)
    np.testing.assert_allclose(h.val_loss, h0.val_loss, rtol=1e-4)
    np.testing.assert_allclose(h.frames, h0.frames, rtol=1e-4, atol=1e-4)
    for p, p0 in zip(model.parameters(), model0.parameters(), strict=True):
        torch.testing.assert_close(p, p0, rtol=1e-4, atol=1e-5, equal_nan=True)


JOBS = [
    Job(lr=0.01),  # converges
    Job(lr=1.0),  # diverges: trains 5 epochs past its blow-up, then stops alone
    Job(lr=0.003, seed=3, data_seed=5, noise=0.4),  # its own seeds and data
    Job(lr=0.02, prune_at=14),  # stopped by its callback at the sync of epoch 14
]
SGD_JOBS = [
    Job(lr=0.05, momentum=0.9),
    Job(lr=0.01, momentum=0.0),
    Job(lr=3.0, momentum=0.0),
    Job(lr=2.0, momentum=0.9),  # with the other diverged one: the group drops both
]


@pytest.mark.parametrize(
    "group",
    [JOBS, SGD_JOBS],
    ids=["adam", "sgd"],
)
def test_each_member_matches_its_solo_run(group: list[Job]) -> None:
    with _one_thread():
        stacked = _stacked(group)
        for job, member in zip(group, stacked, strict=True):
            _assert_same(member, _solo(job))
    outcomes = [h.stop for h, _, _ in stacked]
    assert "diverged" in outcomes and None in outcomes  # the others went on


def _one_thread():
    from helpers.inproc import torch_threads

    return torch_threads(1)
