"""The stacked Adam and SGD against torch.optim's, member by member, step by step."""

from __future__ import annotations

import pytest
import torch

from learnai.train.stacked_optim import StackedOptimizer, unsupported

ADAM = "torch.optim.Adam"
SGD = "torch.optim.SGD"
CASES = {
    "adam": [
        {"_target_": ADAM, "lr": 0.01},
        {"_target_": ADAM, "lr": 0.3, "weight_decay": 0.01, "betas": [0.8, 0.99]},
        {"_target_": ADAM, "lr": 1e-4, "eps": 1e-6},
    ],
    "sgd": [
        {"_target_": SGD, "lr": 0.1},
        {"_target_": SGD, "lr": 0.05, "momentum": 0.9, "weight_decay": 0.1},
        {"_target_": SGD, "lr": 0.05, "momentum": 0.5, "nesterov": True},
        {"_target_": SGD, "lr": 0.02, "momentum": 0.9, "dampening": 0.3},
    ],
}


def _torch_optimizer(param: torch.Tensor, cfg: dict) -> torch.optim.Optimizer:
    kwargs = {k: tuple(v) if k == "betas" else v for k, v in cfg.items() if k != "_target_"}
    cls = torch.optim.Adam if cfg["_target_"] == ADAM else torch.optim.SGD
    return cls([param], **kwargs)


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_member_steps_as_torch_optim_does(name: str) -> None:
    cfgs = CASES[name]
    gen = torch.Generator().manual_seed(0)
    start = [torch.randn(5, 3, generator=gen) for _ in cfgs]
    solo = [w.clone().requires_grad_() for w in start]
    optimizers = [_torch_optimizer(w, c) for w, c in zip(solo, cfgs, strict=True)]
    stacked = torch.stack(start)
    optimizer = StackedOptimizer([stacked], cfgs)
    for _ in range(60):
        grads = [torch.randn(5, 3, generator=gen) for _ in cfgs]
        for w, opt, g in zip(solo, optimizers, grads, strict=True):
            w.grad = g.clone()
            opt.step()
        optimizer.step([torch.stack(grads)], torch.ones(len(cfgs), dtype=torch.bool))
    for i, w in enumerate(solo):
        torch.testing.assert_close(stacked[i], w.detach(), rtol=1e-5, atol=1e-6)


def test_a_masked_member_keeps_its_parameters() -> None:
    cfgs = CASES["adam"][:2]
    stacked = torch.ones(2, 4)
    optimizer = StackedOptimizer([stacked], cfgs)
    optimizer.step([torch.full((2, 4), 0.5)], torch.tensor([True, False]))
    assert torch.equal(stacked[1], torch.ones(4))
    assert not torch.equal(stacked[0], torch.ones(4))


def test_a_step_torch_would_refuse_is_flagged_as_overflow() -> None:
    """lr 1e38: Adam's first step size (lr / (1 - 0.9)) does not fit float32; torch
    raises and learnai's loop records divergence. The stacked step flags that member."""
    cfgs = [{"_target_": ADAM, "lr": 0.01}, {"_target_": ADAM, "lr": 1e38}]
    optimizer = StackedOptimizer([torch.zeros(2, 3)], cfgs)
    assert optimizer.overflows() == [False, True]
    w = torch.zeros(3, requires_grad=True)
    w.grad = torch.ones(3)
    with pytest.raises(RuntimeError, match="without overflow"):
        torch.optim.Adam([w], lr=1e38).step()


@pytest.mark.parametrize(
    ("cfg", "named"),
    [
        ({"_target_": "torch.optim.RMSprop", "lr": 0.1}, "torch.optim.RMSprop"),
        ({"_target_": ADAM, "lr": 0.1, "amsgrad": True}, "optimizer.amsgrad=True"),
        ({"_target_": SGD, "lr": 0.1, "maximize": True}, "optimizer.maximize=True"),
    ],
)
def test_settings_that_cannot_be_stacked_are_named(cfg: dict, named: str) -> None:
    assert named in (unsupported(cfg) or "")


def test_plain_settings_can_be_stacked() -> None:
    assert unsupported({"_target_": ADAM, "_partial_": True, "lr": 0.1, "foreach": None}) is None
