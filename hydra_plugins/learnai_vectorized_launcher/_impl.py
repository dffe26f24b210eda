"""The vectorized launcher's work: each job's config and folder as Hydra's basic
launcher makes them, grouping, and a stacked group's bookkeeping.

For a job that trains alone this is Hydra's own ``run_job`` with the task function.
A stacked group's jobs get what ``run_job`` gives a job -- their output folder, the
``.hydra/`` files, ``HydraConfig`` set to their config and ``hydra.job.env_set`` in the
environment while learnai opens and finishes their runs, the job callbacks, a
``JobReturn`` -- around one call of :func:`learnai.train.stacked_run.run_group`.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import (
    JobReturn,
    JobRuntime,
    JobStatus,
    configure_log,
    env_override,
    filter_overrides,
    run_job,
    setup_globals,
)
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from ._groups import group_key

if TYPE_CHECKING:
    from hydra.types import HydraContext, TaskFunction


class VectorizedLauncher(Protocol):
    """What the launch needs of the launcher Hydra set up (its class imports this module
    lazily, so this module names only its shape)."""

    config: DictConfig | None
    hydra_context: HydraContext | None
    task_function: TaskFunction | None
    max_group: int


log = logging.getLogger(__name__)


@dataclass
class _Job:
    cfg: DictConfig  # the job's full config, hydra node included
    task: DictConfig | None = None  # without the hydra node, once prepared
    ret: JobReturn | None = None


def launch(
    launcher: VectorizedLauncher, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
) -> list[JobReturn]:
    setup_globals()
    ctx, config = launcher.hydra_context, launcher.config
    assert ctx is not None and config is not None and launcher.task_function is not None
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    Path(str(config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
    # learnai logs one line per job (its values, outcome and loss), as with the basic
    # launcher, whose own per-job lines conf/config.yaml silences
    log.debug("Launching %d jobs, same-shaped ones stacked", len(job_overrides))
    jobs = []
    for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
        log.debug("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))
        cfg = ctx.config_loader.load_sweep_config(config, list(overrides))
        with open_dict(cfg):
            cfg.hydra.job.id = idx
            cfg.hydra.job.num = idx
        jobs.append(_Job(cfg))

    original = HydraConfig.instance().cfg
    returns: list[JobReturn | None] = [None] * len(jobs)
    try:
        for group in _groups(jobs):
            if len(group) == 1:
                returns[group[0]] = _alone(launcher, jobs[group[0]])
                continue
            for chunk in _chunks(launcher, jobs, group):
                for i, ret in zip(chunk, _stacked(launcher, [jobs[i] for i in chunk]), strict=True):
                    returns[i] = ret
    finally:
        HydraConfig.instance().cfg = original  # type: ignore[assignment]
        configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    return [r for r in returns if r is not None]


def _groups(jobs: list[_Job]) -> list[list[int]]:
    """Indices of jobs that can be stacked together, in launch order; a job whose model
    or optimizer cannot be stacked is a group of its own."""
    from learnai.train.stacked import why_not_stackable

    by_key: dict[str, list[int]] = {}
    judged: dict[str, str | None] = {}
    for i, job in enumerate(jobs):
        HydraConfig.instance().set_config(job.cfg)  # ${hydra:...} resolves per job
        task = copy.copy(job.cfg)
        with read_write(task), open_dict(task):
            del task["hydra"]
        chdir = job.cfg.hydra.job.get("chdir")
        key = group_key(OmegaConf.to_container(task, resolve=True)) + f"|chdir={chdir}"  # type: ignore[arg-type]
        if key not in judged:
            judged[key] = _why_not(job.cfg, chdir, why_not_stackable)
            if judged[key] is not None:
                log.info("job #%d trains alone: %s", job.cfg.hydra.job.num, judged[key])
        by_key.setdefault(key if judged[key] is None else f"alone {i}", []).append(i)
    return list(by_key.values())


def _why_not(cfg: DictConfig, chdir: Any, judge: Any) -> str | None:
    if chdir:
        return "hydra.job.chdir=true (stacked jobs share one working directory)"
    return judge(cfg)


def _chunks(
    launcher: VectorizedLauncher, jobs: list[_Job], group: list[int]
) -> Iterator[list[int]]:
    """The group in pieces that fit the device's memory and ``max_group``."""
    from learnai.train.device import resolve_device
    from learnai.train.stacked import group_size

    cfg = jobs[group[0]].cfg
    HydraConfig.instance().set_config(cfg)
    try:
        device = resolve_device(cfg.trainer.device)
    except ValueError:  # a device this machine lacks: each job's run refuses it
        device = None
    size = group_size(cfg, launcher.max_group, device) if device is not None else 1
    for start in range(0, len(group), size):
        yield group[start : start + size]


def _alone(launcher: VectorizedLauncher, job: _Job) -> JobReturn:
    """One job, exactly as Hydra's basic launcher runs it."""
    assert launcher.hydra_context is not None and launcher.task_function is not None
    return run_job(
        hydra_context=launcher.hydra_context,
        task_function=launcher.task_function,
        config=job.cfg,
        job_dir_key="hydra.sweep.dir",
        job_subdir_key="hydra.sweep.subdir",
    )


def _stacked(launcher: VectorizedLauncher, jobs: list[_Job]) -> list[JobReturn]:
    """A chunk of jobs trained as one model; a ``JobReturn`` each, as ``run_job`` fills it."""
    from learnai.train.stacked_run import GroupJob, run_group

    ctx = launcher.hydra_context
    assert ctx is not None
    if len(jobs) == 1:
        return [_alone(launcher, jobs[0])]
    for job in jobs:
        _prepare(job)
        with _current(job):
            ctx.callbacks.on_job_start(config=job.cfg, task_function=launcher.task_function)
    group = [GroupJob(job.task, lambda job=job: _current(job)) for job in jobs]  # type: ignore[arg-type, misc]
    envs = [dict(job.ret.hydra_cfg.hydra.job.env_set) for job in jobs]  # type: ignore[union-attr]
    shared = {k: str(v) for k, v in envs[0].items() if all(e.get(k) == v for e in envs)}
    with env_override(shared):  # e.g. MLflow's HTTP retries while metrics flush
        outcomes = run_group(group)
    for job, outcome in zip(jobs, outcomes, strict=True):
        ret = job.ret
        assert ret is not None
        ret.return_value = outcome
        ret.status = JobStatus.FAILED if isinstance(outcome, BaseException) else JobStatus.COMPLETED
        ret.task_name = JobRuntime.instance().get("name")
        with _current(job):
            ctx.callbacks.on_job_end(config=job.cfg, job_return=ret)
    return [job.ret for job in jobs]  # type: ignore[misc]


def _prepare(job: _Job) -> None:
    """What ``run_job`` does before the task function: the output folder, the job's
    ``hydra.runtime.output_dir`` and its ``.hydra/`` files."""
    cfg = job.cfg
    HydraConfig.instance().set_config(cfg)
    output_dir = os.path.join(
        str(OmegaConf.select(cfg, "hydra.sweep.dir")),
        str(OmegaConf.select(cfg, "hydra.sweep.subdir")),
    )
    with read_write(cfg.hydra.runtime), open_dict(cfg.hydra.runtime):
        cfg.hydra.runtime.output_dir = os.path.abspath(output_dir)
    HydraConfig.instance().set_config(cfg)
    task = copy.deepcopy(cfg)
    with read_write(task), open_dict(task):
        del task["hydra"]
    ret = JobReturn()
    ret.cfg = task
    ret.hydra_cfg = copy.deepcopy(HydraConfig.instance().cfg)  # type: ignore[assignment]
    ret.overrides = OmegaConf.to_container(cfg.hydra.overrides.task)  # type: ignore[assignment]
    ret.working_dir = os.getcwd()
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    if cfg.hydra.output_subdir is not None:
        folder = Path(cfg.hydra.runtime.output_dir) / str(cfg.hydra.output_subdir)
        folder.mkdir(parents=True, exist_ok=True)
        for name, node in (
            ("config.yaml", task),
            ("hydra.yaml", ret.hydra_cfg),
            ("overrides.yaml", cfg.hydra.overrides.task),
        ):
            (folder / name).write_text(OmegaConf.to_yaml(node), encoding="utf-8")
    job.task, job.ret = task, ret


@contextlib.contextmanager
def _current(job: _Job) -> Iterator[None]:
    """Make ``job`` the current Hydra job: its config, its log file, its environment
    (an Optuna trial's number travels in ``hydra.job.env_set``)."""
    HydraConfig.instance().set_config(job.cfg)
    configure_log(job.cfg.hydra.job_logging, job.cfg.hydra.verbose)
    assert job.ret is not None and job.ret.hydra_cfg is not None
    with env_override({k: str(v) for k, v in job.ret.hydra_cfg.hydra.job.env_set.items()}):
        yield
