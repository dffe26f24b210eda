"""Train many same-shaped models as one: the loop of :mod:`learnai.train.loop`, stacked.

Members differ only in values (learning rate, momentum, seeds, data noise); their
parameters are stacked along a new first dimension (``torch.func.stack_module_state``)
and one ``vmap``-ed ``functional_call`` computes every member's forward pass, as in
PyTorch's model-ensembling recipe. Each member keeps its own :class:`~loop.Trainer`
(built by :func:`learnai.train.run.make_trainer`): its callbacks (metrics, pruning),
divergence rule, frames and sync rhythm are the solo run's, fed from its row of the
stacked losses. A member that stops (diverged, pruned) is masked out of the update:
its parameters stay as they were when it stopped, the others train on; once half the
stack has stopped, the stack is rebuilt from the members still training (a stability
map's diverged half would otherwise cost as much as its converging half).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from learnai.train.loop import History, TrainState
from learnai.train.stacked_optim import StackedOptimizer, unsupported

if TYPE_CHECKING:
    from learnai.train.data import Dataset
    from learnai.train.loop import Trainer

__all__ = ["Member", "StackedTrainer", "group_size", "why_not_stackable"]


@dataclass
class Member:
    """One job of a stacked group: its trainer, model, data and optimizer config."""

    trainer: Trainer
    model: nn.Module
    data: Dataset
    optimizer: dict[str, Any]


def why_not_stackable(cfg: Any) -> str | None:
    """Why jobs with this config cannot be trained stacked (None: they can): an
    optimizer other than Adam/SGD, or a model ``vmap`` cannot run (e.g. batch norm)."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    reason = unsupported(OmegaConf.to_container(cfg.optimizer, resolve=True))
    if reason is not None:
        return reason
    try:
        n_in = instantiate(cfg.data, n_samples=8).n_features
        models = [instantiate(cfg.model, n_in=n_in) for _ in range(2)]
        forward, params, buffers = _stack(models)
        out = forward(params, buffers, torch.zeros(2, 4, n_in))
        out.sum().backward()
        if out.shape != (2, 4, 1):
            return f"model {cfg.model._target_} gives shape {tuple(out.shape[1:])}"
    except Exception as exc:  # any failure: this model trains one job at a time
        return f"model {cfg.model.get('_target_')} cannot be stacked ({type(exc).__name__})"
    return None


def group_size(cfg: Any, max_group: int, device: torch.device) -> int:
    """How many members fit at once: learnai's memory estimate of one run
    (:func:`resources.estimate_bytes`: data and training scale with the members; the
    pictures are drawn one member at a time) against what the device has free."""
    from learnai.train.resources import HEADROOM, available_memory, estimate_bytes

    parts = estimate_bytes(cfg)
    per_member = parts["data"] + parts["training"] + 4 * 200 * int(cfg.trainer.animation.frames)
    cuda = device.type == "cuda"
    free = torch.cuda.mem_get_info(device)[0] if cuda else available_memory()
    if free is None:
        return max_group
    room = int((free * HEADROOM - parts["animation"]) // max(per_member, 1))
    return max(1, min(max_group, room))


def _stack(models: list[nn.Module]) -> tuple[Any, dict, dict]:
    from torch.func import functional_call, stack_module_state, vmap

    params, buffers = stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")

    def one(p: dict, b: dict, x: torch.Tensor) -> torch.Tensor:
        return functional_call(base, (p, b), (x,))

    return vmap(one), params, buffers


def _mse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Each member's mean squared error: ``[M]``."""
    return ((prediction - target) ** 2).mean(dim=(1, 2))


class StackedTrainer:
    """:meth:`Trainer.fit` for a group of members, one stacked forward per epoch."""

    def __init__(self, members: list[Member], on_progress: Any = None) -> None:
        self.members = members
        self.on_progress = on_progress  # called as (epoch, epochs, still training)

    def fit(self) -> list[History]:
        """Train every member; copy each one's final parameters back into its model."""
        ms = self.members
        n, trainers = len(ms), [m.trainer for m in ms]
        epochs, sync_every = trainers[0].epochs, trainers[0].sync_every
        device = ms[0].data.x_train.device
        forward, params, buffers = _stack([m.model for m in ms])
        x, y = (torch.stack([getattr(m.data, k) for m in ms]) for k in ("x_train", "y_train"))
        xv, yv = (torch.stack([getattr(m.data, k) for m in ms]) for k in ("x_val", "y_val"))
        grid = torch.stack([m.data.grid_features for m in ms])
        optimizer = StackedOptimizer(list(params.values()), [m.optimizer for m in ms])

        states = [TrainState(epochs) for _ in ms]
        frame_at = [set(t.frame_at) for t in trainers]
        room = [len(t.frame_at) + (t.after_divergence + sync_every) * t.animate for t in trainers]
        snapshots = torch.empty(n, max(room), grid.shape[1], device=device)
        shots: list[list[int]] = [[] for _ in ms]
        losses = torch.empty(2, n, epochs, device=device)  # rows: train, val
        active = [True] * n
        mask = torch.ones(n, dtype=torch.bool, device=device)
        filled = [0] * n  # a member's epochs since its last sync: its own rhythm
        stacked = list(range(n))  # the members in the stack, by position
        at = torch.arange(n, device=device)

        for epoch in range(1, epochs + 1):
            overflow = [False] * n
            for pos, flag in enumerate(optimizer.overflows()):
                overflow[stacked[pos]] = flag
            # 1-5: forward, loss, gradients, one update for every member still training
            loss = _mse(forward(params, buffers, x), y)
            grads = torch.autograd.grad(loss.sum(), list(params.values()))
            step_mask = mask
            if any(overflow):  # torch refuses the step: parameters stay, loss is inf
                bad = torch.tensor([overflow[i] for i in stacked], device=device)
                step_mask = mask & ~bad
                loss = torch.where(bad, torch.full_like(loss, float("inf")), loss)
            optimizer.step(grads, step_mask)

            with torch.no_grad():  # record: validation loss and frames, on the device
                losses[0, at, epoch - 1] = loss.detach()
                losses[1, at, epoch - 1] = _mse(forward(params, buffers, xv), yv)
                want = [
                    i
                    for i in range(n)
                    if active[i]
                    and (
                        epoch in frame_at[i]
                        or (states[i].diverged_at is not None and ms[i].trainer.animate)
                    )
                    and len(shots[i]) < room[i]
                ]
                if want:
                    pictured = forward(params, buffers, grid).squeeze(-1)
                    index = torch.tensor(want, device=device)
                    pos = torch.tensor([stacked.index(i) for i in want], device=device)
                    slots = torch.tensor([len(shots[i]) for i in want], device=device)
                    snapshots[index, slots] = pictured[pos]
                    for i in want:
                        shots[i].append(epoch)

            due = []
            for i in range(n):
                if active[i]:
                    filled[i] += 1
                    t = trainers[i]
                    if filled[i] == sync_every or epoch == t.last_epoch(states[i]) or overflow[i]:
                        due.append(i)
            if due:
                self._sync(due, states, filled, losses[:, :, :epoch].tolist(), active)
                mask = torch.tensor([active[i] for i in stacked], device=device)
                if 2 * sum(active) <= len(stacked) and any(active):  # drop the stopped
                    keep = [p for p, i in enumerate(stacked) if active[i]]
                    stopped = [i for i in stacked if not active[i]]
                    self._unstack(stopped, stacked, params, buffers)
                    index = torch.tensor(keep, device=device)
                    params = {k: v[index].detach().requires_grad_() for k, v in params.items()}
                    buffers = {k: v[index] for k, v in buffers.items()}
                    x, y, xv, yv, grid = (t[index] for t in (x, y, xv, yv, grid))
                    optimizer.keep(keep, list(params.values()))
                    stacked = [stacked[p] for p in keep]
                    at = torch.tensor(stacked, device=device)
                    mask = torch.ones(len(stacked), dtype=torch.bool, device=device)
                if self.on_progress is not None:
                    self.on_progress(epoch, epochs, sum(active))
            if not any(active):
                break

        self._unstack(stacked, stacked, params, buffers)
        return [
            History(
                train_loss=s.train_loss,
                val_loss=s.val_loss,
                frame_epochs=shots[i],
                frames=snapshots[i, : len(shots[i])].float().cpu().numpy(),
                stop="diverged" if s.diverged_at is not None else s.stop,
                diverged_at=s.diverged_at,
            )
            for i, s in enumerate(states)
        ]

    @torch.no_grad()
    def _unstack(self, members: list[int], stacked: list[int], params: dict, buffers: dict) -> None:
        """Copy ``members``' final values from the stack into their own models."""
        for i in members:
            pos, model = stacked.index(i), self.members[i].model
            for name, p in model.named_parameters():
                p.copy_(params[name][pos])
            for name, b in model.named_buffers():
                b.copy_(buffers[name][pos])

    def _sync(
        self,
        due: list[int],
        states: list[TrainState],
        filled: list[int],
        host: list[list[list[float]]],
        active: list[bool],
    ) -> None:
        """Hand each due member its new epochs, through its own trainer's rule
        (divergence, callbacks): exactly what its solo loop does at a sync."""
        for i in due:
            done = len(states[i].train_loss)
            chunk = [host[0][i][done : done + filled[i]], host[1][i][done : done + filled[i]]]
            self.members[i].trainer.take_chunk(states[i], chunk)
            filled[i] = 0
            if states[i].stop:
                active[i] = False
