"""Behaviour the README promises that no other test pins down."""

from __future__ import annotations

import math
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from learnai.context import effective_jobs
from learnai.runner import classify


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


@pytest.mark.parametrize(
    ("n_jobs", "expected"),
    [(None, 1), (1, 1), (2, 2), (-1, os.cpu_count()), (-2, max(1, (os.cpu_count() or 1) - 1))],
)
def test_effective_jobs_follows_joblibs_rule(n_jobs: int | None, expected: int) -> None:
    assert effective_jobs(n_jobs) == expected


def test_parallel_jobs_share_the_cores() -> None:
    import torch

    from learnai.device import set_threads

    before = torch.get_num_threads()
    try:
        set_threads(0, parallel_jobs=effective_jobs(-1))
        assert torch.get_num_threads() == 1  # every core runs a job: one thread each
        set_threads(0, parallel_jobs=1)
        assert torch.get_num_threads() == os.cpu_count()
        set_threads(3, parallel_jobs=8)
        assert torch.get_num_threads() == 3  # an explicit count wins
        set_threads(0, parallel_jobs=1, reserved_cpus=1)  # a core for the picture worker
        assert torch.get_num_threads() == max(1, os.cpu_count() - 1)
    finally:
        torch.set_num_threads(before)


@pytest.mark.slow
def test_a_stalled_run_records_its_outcome_tags_predictions_and_final_loss(
    tmp_path: Path, run_learnai, mlflow_client, only_run
) -> None:
    overrides = ("model=linear", "optimizer.lr=0.0001", "trainer.epochs=3", "data.n_samples=100")
    run_learnai(tmp_path, *overrides, "trainer.device=cpu", "tracking.experiment=p")
    client = mlflow_client(tmp_path)
    run = only_run(client, "p")
    tags = run.data.tags
    assert tags["outcome"] == "stalled"  # a straight line cannot fit the curve in 3 epochs
    assert tags["choice.model"] == "linear"
    assert tags["choice.data"] == "nonlinear"
    assert tags["overrides"].split() == [*overrides, "trainer.device=cpu", "tracking.experiment=p"]
    history = sorted(client.get_metric_history(run.info.run_id, "train_loss"), key=lambda m: m.step)
    # the final model on the training data: one optimizer step past the last logged loss
    assert run.data.metrics["final_train_loss"] == pytest.approx(history[-1].value, rel=1e-2)
    assert run.data.metrics["final_train_loss"] < history[0].value
    local = client.download_artifacts(run.info.run_id, "predictions.npz", str(tmp_path))
    z = np.load(local)
    assert z["frames"].shape == (len(z["frame_epochs"]), len(z["grid"]))
    assert int(z["epochs"]) == 3
