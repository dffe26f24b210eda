"""Where parallel jobs train: one GPU each, and their share of the CPU threads.

Pure rules (learnai.train.device), checked as tables on CPU; plus the wiring: a multirun job with
``trainer.device=auto`` asks for its own GPU by job number.
"""

from __future__ import annotations

import pytest

from learnai.train.context import launcher_cpus
from learnai.train.device import cpu_threads, gpu_for_job


@pytest.mark.parametrize(
    ("job_num", "visible", "device"),
    [
        (None, 1, "cuda:0"),  # a single run
        (None, 4, "cuda:0"),
        (0, 1, "cuda:0"),
        (5, 1, "cuda:0"),  # SLURM/CUDA_VISIBLE_DEVICES gave this task one GPU
        (0, 2, "cuda:0"),
        (1, 2, "cuda:1"),
        (2, 2, "cuda:0"),
        (3, 2, "cuda:1"),
        (6, 4, "cuda:2"),
        (7, 8, "cuda:7"),
        (8, 8, "cuda:0"),
    ],
)
def test_each_job_takes_its_gpu_by_job_number(job_num, visible, device) -> None:
    assert gpu_for_job(job_num, visible) == device


def test_eight_parallel_jobs_on_four_gpus_get_two_jobs_per_gpu() -> None:
    placed = [gpu_for_job(n, 4) for n in range(8)]
    assert {d: placed.count(d) for d in placed} == {f"cuda:{i}": 2 for i in range(4)}


def test_no_visible_gpu_is_an_error_not_cuda_0() -> None:
    with pytest.raises(ValueError, match="no visible GPU"):
        gpu_for_job(0, 0)


@pytest.mark.parametrize(
    ("requested", "parallel", "cpus", "env", "launcher_cpus", "threads"),
    [
        (0, 1, 16, {}, None, 16),  # basic launcher, one job at a time: every core
        (0, 2, 16, {}, None, 8),  # joblib n_jobs=2
        (0, 16, 16, {}, None, 1),
        (0, 32, 16, {}, None, 1),  # never 0
        (3, 8, 16, {}, None, 3),  # trainer.num_threads wins
        (3, 1, 16, {"OMP_NUM_THREADS": "2"}, 4, 3),
        (0, 1, 16, {"OMP_NUM_THREADS": "2"}, None, 2),  # the user's per-process choice
        (0, 4, 16, {"OMP_NUM_THREADS": "2"}, None, 2),
        (0, 1, 16, {"OMP_NUM_THREADS": "0"}, None, 16),  # junk is ignored
        (0, 1, 16, {"OMP_NUM_THREADS": "many"}, None, 16),
        (0, 1, 64, {"SLURM_CPUS_PER_TASK": "4"}, None, 4),  # a SLURM task's cores
        (0, 2, 64, {"SLURM_CPUS_PER_TASK": "4"}, None, 2),  # shared by its parallel jobs
        (0, 1, 64, {"SLURM_CPUS_PER_TASK": "4"}, 6, 6),  # submitit's cpus_per_task
        (0, 1, 16, {}, 2, 2),  # submitit_local: each job its cpus_per_task
        (0, 1, 16, {"OMP_NUM_THREADS": "1"}, 2, 1),
    ],
)
def test_threads_per_job(requested, parallel, cpus, env, launcher_cpus, threads) -> None:
    assert cpu_threads(requested, parallel, cpus, env, launcher_cpus) == threads


@pytest.mark.parametrize(
    ("launcher", "cpus"),
    [
        ({"n_jobs": 2}, None),  # joblib: its n_jobs shares the cores instead
        ({"cpus_per_task": 4}, 4),  # submitit
        ({"ray": {"init": {"address": None}, "remote": {}}}, None),  # Ray's default: 1 CPU
        ({"ray": {"init": {}, "remote": {"num_cpus": 4}}}, 4),
        ({"ray": {"init": {}, "remote": {"num_cpus": 2.5}}}, 2),  # floored, as Ray does
        ({"ray": {"init": {}, "remote": {"num_cpus": 0.5}}}, 1),  # never 0
        ({"ray": {"init": {}, "remote": None}}, None),
    ],
)
def test_cpus_a_launcher_gives_each_job(launcher, cpus) -> None:
    from omegaconf import OmegaConf

    assert launcher_cpus(OmegaConf.create(launcher)) == cpus


def test_a_ray_job_gets_its_tasks_cpus_not_the_machines() -> None:
    """Ray has no n_jobs: without OMP_NUM_THREADS a job would take every core of its node."""
    from omegaconf import OmegaConf

    ray = OmegaConf.create({"ray": {"init": {}, "remote": {"num_cpus": 2}}})
    assert cpu_threads(0, 1, 64, {}, launcher_cpus(ray)) == 2
    assert cpu_threads(0, 1, 64, {"OMP_NUM_THREADS": "2"}, launcher_cpus(ray)) == 2  # Ray's


def test_auto_device_in_a_multirun_uses_the_job_number(monkeypatch) -> None:
    """The wiring, without a GPU: CUDA reported present with 2 devices, job 3 -> cuda:1."""
    import torch

    from learnai.train.device import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto", 3) == torch.device("cuda:1")
    assert resolve_device("auto", None) == torch.device("cuda:0")
    assert resolve_device("cpu", 3) == torch.device("cpu")


def test_a_job_sets_its_threads_from_the_rule(monkeypatch) -> None:
    import torch

    from learnai.train.device import set_threads

    before = torch.get_num_threads()
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    try:
        assert set_threads(0, 1) == 1
        assert torch.get_num_threads() == 1
        assert set_threads(0, 1, launcher_cpus=2) == 2
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
