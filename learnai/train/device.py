"""Where a job trains: the GPU when there is one, and how many CPU threads it uses.

A multirun's jobs run side by side (joblib workers, submitit's local processes, SLURM
tasks): without a rule every one would pick ``cuda:0`` and all their threads would share
every core. Each job knows only its own job number (``hydra.job.num``) and what its
process can see, so the rules (:func:`gpu_for_job`, :func:`cpu_threads`) use nothing
else, and are pure functions tested on a machine without GPUs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch

from learnai.config import ConfigError
from learnai.train.context import usable_cpus


def resolve_device(name: str, job_num: int | None = None) -> torch.device:
    """``auto`` = CUDA, else MPS, else CPU; an explicit choice must exist on this machine.

    With ``auto`` in a multirun (``job_num`` set), jobs spread over the visible GPUs, one
    each (:func:`gpu_for_job`): parallel jobs do not all share ``cuda:0``.
    """
    mps = getattr(torch.backends, "mps", None)
    mps_ok = bool(mps and mps.is_available())
    if name == "auto":
        if torch.cuda.is_available():
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


def set_threads(num_threads: int, parallel_jobs: int = 1, launcher_cpus: int | None = None) -> int:
    """Share the cores among parallel jobs so they do not oversubscribe the CPU; a
    scheduler's per-task CPUs and OMP_NUM_THREADS win (rules: :func:`cpu_threads`)."""
    threads = cpu_threads(num_threads, parallel_jobs, usable_cpus(), os.environ, launcher_cpus)
    torch.set_num_threads(threads)
    return threads


def gpu_for_job(job_num: int | None, visible_gpus: int) -> str:
    """The CUDA device of one job: ``cuda:(job_num % visible_gpus)``.

    ``visible_gpus`` is what the process sees (``torch.cuda.device_count()``), which
    already honours ``CUDA_VISIBLE_DEVICES``: SLURM (``--gpus-per-task``) and submitit
    give each task its own GPUs that way, so a job that sees one GPU takes ``cuda:0``.
    A single run (``job_num`` None) takes ``cuda:0`` too.

    >>> [gpu_for_job(n, 2) for n in range(4)]
    ['cuda:0', 'cuda:1', 'cuda:0', 'cuda:1']
    """
    if visible_gpus < 1:
        raise ValueError(f"no visible GPU to place job {job_num} on")
    if job_num is None or visible_gpus == 1:
        return "cuda:0"
    return f"cuda:{int(job_num) % visible_gpus}"


def cpu_threads(
    requested: int,
    parallel_jobs: int,
    cpus: int,
    env: Mapping[str, str] | None = None,
    launcher_cpus: int | None = None,
) -> int:
    """Torch threads for one job.

    ``requested`` > 0 (``trainer.num_threads``) wins. Otherwise, in this order:
    ``OMP_NUM_THREADS`` (a per-process setting the user or scheduler chose: used as is),
    the CPUs the launcher gives each job (submitit's ``cpus_per_task``, Ray's
    ``remote.num_cpus``),
    ``SLURM_CPUS_PER_TASK`` (the cores of this SLURM task, shared by the jobs it runs at
    once), else the cores this process may use (``cpus``, its CPU affinity, which a
    cgroup/cpuset narrows) shared by ``parallel_jobs``. Never below 1.

    >>> cpu_threads(0, 2, 16, {})
    8
    >>> cpu_threads(0, 1, 16, {"SLURM_CPUS_PER_TASK": "4"})
    4
    """
    env = os.environ if env is None else env
    if requested > 0:
        return requested
    omp = _positive(env.get("OMP_NUM_THREADS"))
    if omp is not None:
        return omp
    if launcher_cpus is not None and launcher_cpus > 0:
        return int(launcher_cpus)
    cores = _positive(env.get("SLURM_CPUS_PER_TASK")) or cpus
    return max(1, cores // max(1, parallel_jobs))


def _positive(value: str | None) -> int | None:
    """An integer environment value above 0, else None (unset, empty, '0', junk)."""
    try:
        n = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return n if n > 0 else None
