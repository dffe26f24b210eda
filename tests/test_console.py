"""What a sweep prints: one line per job, one summary, no plumbing, no leaked-resource
warnings from joblib (the interpreter exits normally, so joblib cleans up)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sweep_helpers import TINY, run_learnai

pytestmark = pytest.mark.slow


def test_a_joblib_sweep_prints_one_line_per_job_and_one_summary(tmp_path: Path) -> None:
    proc = run_learnai(
        tmp_path,
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "optimizer.lr=0.01,1",
        "tracking.experiment=console",
        *TINY,
    )
    printed = proc.stdout + proc.stderr
    job_lines = [line for line in printed.splitlines() if re.search(r" - lr=(0\.01|1): ", line)]
    assert len(job_lines) == 2, printed[-3000:]
    assert any("lr=0.01: converged" in line for line in job_lines)
    assert any("lr=1: diverged" in line for line in job_lines)
    assert len(re.findall(r"sweep: 2 runs: 1 converged, 1 diverged", printed)) == 1
    for plumbing in ("LEARNAI_", "env_set", "parent_run_id", "Launching"):
        assert plumbing not in printed, plumbing
    assert "leaked" not in printed and "resource_tracker" not in printed
    assert not re.search(r"\d\.\d{9,}", printed), "no floats printed with 17 digits"
