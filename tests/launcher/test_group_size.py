"""A group is split to fit memory: its size comes from learnai's estimate of one run."""

from __future__ import annotations

from pathlib import Path

import torch
from helpers.inproc import compose

from learnai.train.resources import available_memory, estimate_bytes
from learnai.train.stacked import group_size

CPU = torch.device("cpu")


def test_max_group_caps_a_group_that_fits(tmp_path: Path) -> None:
    cfg = compose(tmp_path)
    assert group_size(cfg, 256, CPU) == 256
    assert group_size(cfg, 3, CPU) == 3


def test_a_big_run_makes_a_small_group(tmp_path: Path) -> None:
    """Members big enough that about four fit in the memory available now."""
    free = available_memory()
    assert free is not None
    cfg = compose(tmp_path, "trainer.animation.enabled=false")
    one = estimate_bytes(cfg)
    per_member = one["data"] + one["training"]
    n_samples = int(cfg.data.n_samples * free * 0.8 / 4 / per_member)
    big = compose(tmp_path, f"data.n_samples={n_samples}", "trainer.animation.enabled=false")
    assert 2 <= group_size(big, 256, CPU) <= 6


def test_a_run_too_big_for_memory_is_a_group_of_one(tmp_path: Path) -> None:
    """(whose own memory check then refuses it, as when it runs alone)"""
    cfg = compose(tmp_path, "data.n_samples=10000000000")
    assert group_size(cfg, 256, CPU) == 1
