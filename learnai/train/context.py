"""What a job knows about how Hydra launched it: launch directory, sweep, parallel jobs."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# hydra.job.env_set keys through which learnai's entry point hands each job its sweep
# (see learnai.sweep.lifecycle): they travel in the job's own config, put there by the
# config group LINK_GROUP that conf/config.yaml pulls in when a sweep registered it.
LINK_GROUP = "sweep_link"
PARENT_ENV = "LEARNAI_PARENT_RUN_ID"
SWEPT_ENV = "LEARNAI_SWEPT_KEYS"  # comma-separated keys the sweep varies
LAUNCHER_ENV = "LEARNAI_LAUNCHER"  # host:pid of the command that launched the job


@dataclass
class JobContext:
    base_dir: Path  # where the user launched the command: relative stores live here
    is_multirun: bool = False
    sweep_dir: Path | None = None
    parent_run_id: str | None = None  # handed to each job by learnai's entry point
    launcher: str | None = None  # host:pid of that entry point: a job stops once it is gone
    swept_keys: list[str] = field(default_factory=list)  # what the sweep varies
    parallel_jobs: int = 1
    job_num: int | None = None  # hydra.job.num in a multirun: picks the job's GPU
    launcher_cpus: int | None = None  # CPUs the launcher gives a job (submitit, Ray), if any
    choices: dict[str, str] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)


def sweep_dir_of(hydra: Any) -> Path:
    """The multirun's sweep directory, absolute: ``hydra.sweep.dir`` is relative to the
    launch directory. ``hydra`` is ``config.hydra`` or ``HydraConfig.get()``."""
    path = Path(hydra.sweep.dir)
    return path if path.is_absolute() else Path(hydra.runtime.cwd) / path


def effective_jobs(n_jobs: Any) -> int:
    """Jobs running at once for a launcher's ``n_jobs`` (joblib's rule: -1 = every core,
    -2 = all but one, ...); 1 when the launcher has none (basic, submitit, Ray: each job
    then gets its own cores: the scheduler's OMP_NUM_THREADS, or :func:`launcher_cpus`)."""
    if n_jobs is None:
        return 1
    n = int(n_jobs)
    if n < 0:
        n = usable_cpus() + 1 + n
    return max(1, n)


def usable_cpus() -> int:
    """Cores this process may run on (its affinity mask, which a cgroup/cpuset narrows),
    not every core of the host: what joblib counts too."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def job_context() -> JobContext:
    """Read Hydra's runtime state; outside Hydra (tests, notebooks) use the cwd."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return JobContext(base_dir=Path(os.getcwd()))
    hc = HydraConfig.get()
    ctx = JobContext(
        base_dir=Path(hc.runtime.cwd),
        choices={
            k: str(v)
            for k, v in hc.runtime.choices.items()
            if not k.startswith("hydra/") and k != LINK_GROUP and v is not None
        },
        overrides=list(hc.overrides.task),
    )
    if hc.mode == RunMode.MULTIRUN:
        ctx.is_multirun = True
        ctx.sweep_dir = sweep_dir_of(hc)
        ctx.parent_run_id = hc.job.env_set.get(PARENT_ENV)
        ctx.launcher = hc.job.env_set.get(LAUNCHER_ENV)
        ctx.swept_keys = [k for k in str(hc.job.env_set.get(SWEPT_ENV, "")).split(",") if k]
        ctx.parallel_jobs = effective_jobs(hc.launcher.get("n_jobs"))
        ctx.job_num = hc.job.get("num")
        ctx.launcher_cpus = launcher_cpus(hc.launcher)
    return ctx


def launcher_cpus(launcher: Any) -> int | None:
    """The CPUs a launcher gives each job, where its config says: submitit's
    ``cpus_per_task``, Ray's ``ray.remote.num_cpus`` (floored, at least 1: Ray's own rule
    for the ``OMP_NUM_THREADS`` it sets in a task). None otherwise: Ray's default task
    asks for 1 CPU and Ray sets ``OMP_NUM_THREADS=1``, which the thread rule reads first.

    >>> launcher_cpus({"ray": {"init": {}, "remote": {"num_cpus": 2.5}}})
    2
    """
    cpus = launcher.get("cpus_per_task")
    if not cpus:
        ray = launcher.get("ray") or {}
        cpus = (ray.get("remote") or {}).get("num_cpus")
    if not cpus:
        return None
    return max(1, int(float(cpus)))
