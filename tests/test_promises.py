"""Behaviour the README promises that no other test pins down: how a run's outcome is
named, and how many CPU threads a job takes (fast, in-process).

A job's threads follow what its process may use: its CPU affinity (which a cgroup,
cpuset or ``taskset`` narrows, unlike ``os.cpu_count()``), shared among the jobs that
run at once, unless ``OMP_NUM_THREADS`` or the launcher says otherwise.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
import torch

from learnai.train.context import effective_jobs
from learnai.train.device import cpu_threads, set_threads, usable_cpus
from learnai.train.run import classify


@pytest.mark.parametrize(
    ("stop", "val_r2", "expected"),
    [
        ("diverged", 0.99, "diverged"),  # a blow-up is a failure whatever R^2 says
        ("pruned", 0.99, "pruned"),
        (None, 0.95, "converged"),
        (None, 0.9, "converged"),  # the threshold itself counts as converged
        (None, 0.5, "stalled"),
        (None, -3.0, "stalled"),
        (None, math.nan, "stalled"),
    ],
)
def test_classify(stop: str | None, val_r2: float, expected: str) -> None:
    assert classify(SimpleNamespace(stop=stop), val_r2, threshold=0.9) == expected


# --- threads -----------------------------------------------------------------------------


@pytest.fixture
def no_thread_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No scheduler or user setting in the environment; torch's thread count restored."""
    for key in ("OMP_NUM_THREADS", "SLURM_CPUS_PER_TASK"):
        monkeypatch.delenv(key, raising=False)
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture(params=["all usable cores", "one core (as under a cpuset)"])
def affinity(request: pytest.FixtureRequest) -> Iterator[int]:
    """The cores this process may run on, narrowed to one for the second case (as
    ``taskset -c 0`` or a cgroup's cpuset would); how many there are.

    Only this thread is narrowed, and tests ask torch for one thread while it is: a
    thread torch started now would stay on that core for the rest of the session."""
    before = os.sched_getaffinity(0)
    if request.param.startswith("one"):
        os.sched_setaffinity(0, {min(before)})
    try:
        yield len(os.sched_getaffinity(0))
    finally:
        os.sched_setaffinity(0, before)


def test_usable_cpus_are_the_cores_the_process_may_run_on(affinity: int) -> None:
    assert usable_cpus() == affinity


def test_a_single_job_takes_every_usable_core(no_thread_settings: None, affinity: int) -> None:
    assert set_threads(0, parallel_jobs=1) == affinity
    assert torch.get_num_threads() == affinity


def test_parallel_jobs_share_the_usable_cores(no_thread_settings: None, affinity: int) -> None:
    assert set_threads(0, parallel_jobs=affinity) == 1  # every core runs a job: one thread each
    assert torch.get_num_threads() == 1
    assert set_threads(0, parallel_jobs=2) == max(1, affinity // 2)
    assert set_threads(0, parallel_jobs=4 * affinity) == 1  # never below one


def test_an_explicit_thread_count_wins(no_thread_settings: None, monkeypatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "5")
    assert set_threads(3, parallel_jobs=8) == 3
    assert torch.get_num_threads() == 3


@pytest.mark.parametrize("parallel_jobs", [1, 8])
def test_omp_num_threads_is_used_as_is(
    no_thread_settings: None, monkeypatch: pytest.MonkeyPatch, parallel_jobs: int
) -> None:
    """A per-process setting the user or scheduler chose: not shared out again."""
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert set_threads(0, parallel_jobs=parallel_jobs) == 3
    assert torch.get_num_threads() == 3


@pytest.mark.parametrize("junk", ["", "0", "-2", "four"])
def test_an_unusable_omp_num_threads_is_ignored(
    no_thread_settings: None, monkeypatch: pytest.MonkeyPatch, affinity: int, junk: str
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", junk)
    assert set_threads(0, parallel_jobs=1) == affinity


@pytest.mark.parametrize(
    ("env", "launcher_cpus", "parallel_jobs", "expected"),
    [
        ({}, None, 2, 8),  # the cores, shared
        ({"SLURM_CPUS_PER_TASK": "4"}, None, 1, 4),  # the SLURM task's cores, not the node's
        ({"SLURM_CPUS_PER_TASK": "4"}, None, 2, 2),  # shared by the jobs it runs at once
        ({"SLURM_CPUS_PER_TASK": "4"}, 3, 2, 3),  # submitit's cpus_per_task, Ray's num_cpus
        ({"OMP_NUM_THREADS": "6", "SLURM_CPUS_PER_TASK": "4"}, 3, 2, 6),  # OMP first
    ],
)
def test_cpu_threads_order_of_settings(
    env: dict[str, str], launcher_cpus: int | None, parallel_jobs: int, expected: int
) -> None:
    assert cpu_threads(0, parallel_jobs, 16, env, launcher_cpus) == expected


# --- parallel jobs -----------------------------------------------------------------------


@pytest.mark.parametrize("n_jobs", [None, 1, 2, 3])
def test_effective_jobs_is_what_joblib_runs_at_once(n_jobs: int | None) -> None:
    import joblib

    assert effective_jobs(n_jobs) == joblib.effective_n_jobs(n_jobs)


def test_every_core_means_every_usable_core() -> None:
    """joblib's ``n_jobs=-1`` is every core the process may use: under a cpuset of one
    core, one job runs at a time."""
    import joblib

    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        assert joblib.effective_n_jobs(-1) == 1
        assert effective_jobs(-1) == 1
    finally:
        os.sched_setaffinity(0, before)
