"""Adam and SGD over stacked parameters, with every member's own hyperparameters.

A stacked model holds ``M`` members' parameters in one tensor per layer (dimension 0 is
the member). ``torch.optim`` takes one learning rate per parameter group, so a group of
``M`` learning rates would need ``M`` groups of sliced views and ``M`` times the kernel
launches. Here each hyperparameter is a ``[M, 1, ...]`` tensor and every step is a
handful of broadcast ops per layer, whatever ``M`` is. The formulas are torch's own
(``torch.optim.Adam`` and ``SGD``, single-tensor path), written out once; the test
compares both step by step.

A member that ``mask`` excludes keeps its parameters: a diverged or pruned member stops
updating while the others train on.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

__all__ = ["StackedOptimizer", "member_values", "unsupported"]

F32_MAX = float(torch.finfo(torch.float32).max)

# Per optimizer: the values that may differ from member to member, and the options
# that only choose torch's implementation (foreach, fused) and change no value.
_VALUES = {
    "torch.optim.Adam": ("lr", "betas", "eps", "weight_decay"),
    "torch.optim.SGD": ("lr", "momentum", "dampening", "weight_decay", "nesterov"),
}
_IGNORED = {"_target_", "_partial_", "foreach", "fused", "capturable", "differentiable"}


def _defaults(target: str) -> dict[str, Any]:
    cls = torch.optim.Adam if target.endswith("Adam") else torch.optim.SGD
    params = inspect.signature(cls.__init__).parameters
    return {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}


def unsupported(opt_cfg: Mapping[str, Any]) -> str | None:
    """Why these optimizer settings cannot be stacked (None: they can)."""
    target = str(opt_cfg.get("_target_", ""))
    if target not in _VALUES:
        return f"optimizer {target!r} (only torch.optim.Adam and SGD are stacked)"
    defaults = _defaults(target)
    for key, value in opt_cfg.items():
        if key in _IGNORED or key in _VALUES[target]:
            continue
        if key not in defaults or value != defaults[key]:
            return f"optimizer.{key}={value!r}"
    return None


def member_values(opt_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """One member's hyperparameters, torch's defaults filled in."""
    target = str(opt_cfg["_target_"])
    defaults = _defaults(target)
    return {k: opt_cfg.get(k, defaults[k]) for k in _VALUES[target]}


class StackedOptimizer:
    """``torch.optim.Adam`` or ``SGD`` for ``M`` stacked members at once.

    ``members`` holds each member's optimizer config (``_target_`` and its values); all
    must name the same optimizer.
    """

    def __init__(self, params: Sequence[torch.Tensor], members: Sequence[Mapping[str, Any]]):
        self.params = list(params)
        self.target = str(members[0]["_target_"])
        self.adam = self.target.endswith("Adam")
        values = [member_values(m) for m in members]
        self.host = {k: [v[k] for v in values] for k in values[0]}  # python floats
        if self.adam:
            self.host["beta1"] = [float(b[0]) for b in self.host["betas"]]
            self.host["beta2"] = [float(b[1]) for b in self.host.pop("betas")]
            self.host["1-beta1"] = [1 - b for b in self.host["beta1"]]
            self.host["1-beta2"] = [1 - b for b in self.host["beta2"]]
        else:
            self.host["1-dampening"] = [1 - d for d in self.host["dampening"]]
            self.host["nesterov"] = [float(bool(n)) for n in self.host["nesterov"]]
        self.host["-lr"] = [-lr for lr in self.host["lr"]]
        self._cols: dict[tuple[str, int], torch.Tensor] = {}  # constants, on the device
        self._per_step: dict[str, torch.Tensor] = {}  # this step's values, flat [M]
        self.t = 0
        self.state: list[dict[str, torch.Tensor]] = [{} for _ in self.params]
        self.decay = any(w != 0 for w in self.host["weight_decay"])

    def _col(self, key: str, like: torch.Tensor) -> torch.Tensor:
        """A per-member value as a float32 ``[M, 1, ...]`` tensor that broadcasts over
        ``like``: copied to the device once (constants) or once a step."""
        shape = (-1,) + (1,) * (like.dim() - 1)
        if key in self._per_step:
            return self._per_step[key].view(shape)
        if (key, like.dim()) not in self._cols:
            values = torch.tensor(self.host[key], dtype=torch.float64)
            self._cols[key, like.dim()] = values.to(like.device, like.dtype).view(shape)
        return self._cols[key, like.dim()]

    def keep(self, positions: list[int], params: Sequence[torch.Tensor]) -> None:
        """Go on with the members at ``positions`` only, whose stacked parameters are
        now ``params`` (the others stopped: their compute would be wasted)."""
        index = torch.tensor(positions, device=self.params[0].device)
        self.params = list(params)
        self.host = {k: [v[p] for p in positions] for k, v in self.host.items()}
        self.state = [{k: v[index] for k, v in st.items()} for st in self.state]
        self._cols.clear()

    def overflows(self) -> list[bool]:
        """Members whose next step torch would refuse (a scalar beyond float32, e.g.
        ``lr=1e39``): training takes that for divergence (see :func:`loop._step`)."""
        t = self.t + 1
        scale = self.host["lr"]
        if self.adam:
            scale = [lr / (1 - b1**t) for lr, b1 in zip(scale, self.host["beta1"], strict=True)]
        return [
            abs(s) > F32_MAX or w > F32_MAX
            for s, w in zip(scale, self.host["weight_decay"], strict=True)
        ]

    @torch.no_grad()
    def step(self, grads: Sequence[torch.Tensor], mask: torch.Tensor) -> None:
        """One update with ``grads``; members where ``mask`` (bool ``[M]``) is False keep
        their parameters."""
        self.t += 1
        if self.adam:  # torch computes these per step in float64 on the host
            t, like = self.t, self.params[0]
            step = [
                -lr / (1 - b**t) for lr, b in zip(self.host["lr"], self.host["beta1"], strict=True)
            ]
            bc2 = [math.sqrt(1 - b**t) for b in self.host["beta2"]]
            for key, values in (("-step_size", step), ("bc2_sqrt", bc2)):
                flat = torch.tensor(values, dtype=torch.float64)
                self._per_step[key] = flat.to(like.device, like.dtype)
        for i, (param, grad) in enumerate(zip(self.params, grads, strict=True)):
            col = lambda key, p=param: self._col(key, p)  # noqa: E731
            if self.decay:
                wd = col("weight_decay")
                grad = torch.where(wd != 0, grad + wd * param, grad)
            update = self._adam(i, param, grad, col) if self.adam else self._sgd(i, grad, col)
            keep = mask.view((-1,) + (1,) * (param.dim() - 1))
            param.copy_(torch.where(keep, param + update, param))

    def _adam(self, i: int, param: torch.Tensor, grad: torch.Tensor, col: Any) -> torch.Tensor:
        state = self.state[i]
        if not state:
            state["exp_avg"] = torch.zeros_like(param)
            state["exp_avg_sq"] = torch.zeros_like(param)
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg.lerp_(grad, col("1-beta1"))
        exp_avg_sq.mul_(col("beta2")).addcmul_(grad, grad * col("1-beta2"))
        denom = (exp_avg_sq.sqrt() / col("bc2_sqrt")).add_(col("eps"))
        return exp_avg / denom * col("-step_size")

    def _sgd(self, i: int, grad: torch.Tensor, col: Any) -> torch.Tensor:
        momentum = self.host["momentum"]
        if any(m != 0 for m in momentum):
            state = self.state[i]
            if "buf" not in state:
                state["buf"] = grad.detach().clone()
            else:
                state["buf"].mul_(col("momentum")).add_(grad * col("1-dampening"))
            buf, mom = state["buf"], col("momentum")
            nesterov = col("nesterov") != 0
            moved = torch.where(nesterov, grad + mom * buf, buf)
            grad = torch.where(mom != 0, moved, grad)
        return grad * col("-lr")
