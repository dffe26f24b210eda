"""Choosing where to train: the GPU when there is one, and how many CPU threads."""

from __future__ import annotations

import os

import torch

from learnai.config import ConfigError


def resolve_device(name: str) -> torch.device:
    """``auto`` = CUDA, else MPS, else CPU; an explicit choice must exist on this machine."""
    mps = getattr(torch.backends, "mps", None)
    mps_ok = bool(mps and mps.is_available())
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if mps_ok else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"invalid value for trainer.device: {name!r} (CUDA is not available here; "
                "use trainer.device=auto or cpu)"
            )
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(
                f"invalid value for trainer.device: {name!r} "
                f"(only {torch.cuda.device_count()} CUDA devices)"
            )
    if name == "mps" and not mps_ok:
        raise ConfigError("invalid value for trainer.device: 'mps' (MPS is not available here)")
    return torch.device(name)


def set_threads(num_threads: int, parallel_jobs: int = 1) -> None:
    """Share the cores among parallel jobs so they do not oversubscribe the CPU."""
    if num_threads <= 0:
        num_threads = max(1, (os.cpu_count() or 1) // max(1, parallel_jobs))
    torch.set_num_threads(num_threads)
