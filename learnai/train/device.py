"""Choosing where to train: the GPU when there is one, and how many CPU threads."""

from __future__ import annotations

import os

import torch

from learnai.config import ConfigError


def resolve_device(name: str, job_num: int | None = None) -> torch.device:
    """``auto`` = CUDA, else MPS, else CPU; an explicit choice must exist on this machine.

    With ``auto`` in a multirun (``job_num`` set), jobs spread over the visible GPUs, one
    each (:func:`learnai.gpus.gpu_for_job`): parallel jobs do not all share ``cuda:0``.
    """
    mps = getattr(torch.backends, "mps", None)
    mps_ok = bool(mps and mps.is_available())
    if name == "auto":
        if torch.cuda.is_available():
            from learnai.gpus import gpu_for_job

            return torch.device(gpu_for_job(job_num, torch.cuda.device_count()))
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


def set_threads(
    num_threads: int,
    parallel_jobs: int = 1,
    launcher_cpus: int | None = None,
    reserved_cpus: int = 0,
) -> int:
    """Share the cores among parallel jobs so they do not oversubscribe the CPU; a
    scheduler's per-task CPUs and OMP_NUM_THREADS win (rules: :func:`learnai.gpus.cpu_threads`).
    ``reserved_cpus`` are left to other work of this job (the picture worker)."""
    from learnai.gpus import cpu_threads, usable_cpus

    cpus = max(1, usable_cpus() - reserved_cpus)
    threads = cpu_threads(num_threads, parallel_jobs, cpus, os.environ, launcher_cpus)
    torch.set_num_threads(threads)
    return threads


def warm_torch() -> None:
    """Build torch's first optimizer now: that one costs ~1 s (torch loads its compiler's
    machinery for it), which a command spends while its tracking worker opens the store
    instead of in its first job."""
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
