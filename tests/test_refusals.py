"""Everything that can refuse a sweep does so before the first run, trial or folder
exists, in one line with a non-zero exit."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from helpers.cli import TINY, error_line, run_learnai
from helpers.servers import free_port

pytestmark = pytest.mark.e2e

SEARCH = ("-m", "experiment=lr_depth_search", "tracking.experiment=refused", *TINY)


@pytest.mark.parametrize(
    ("override", "line"),
    [
        ("hydra.sweeper.n_trials=0", "invalid value for hydra.sweeper.n_trials: 0 (must be >= 1)"),
        ("hydra.sweeper.n_jobs=-1", "invalid value for hydra.sweeper.n_jobs: -1 (must be >= 1)"),
        (
            "hydra.sweeper.max_failure_rate=2",
            "invalid value for hydra.sweeper.max_failure_rate: 2.0 (must be in [0, 1])",
        ),
    ],
)
def test_a_bad_sweeper_setting_is_refused_before_any_run(
    tmp_path: Path, override: str, line: str
) -> None:
    start = time.monotonic()
    proc = run_learnai(tmp_path, *SEARCH, override, expect=2)
    assert error_line(proc) == f"learnai: {line}"
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "mlruns").exists(), "no store, no parent run, no study"
    assert not (tmp_path / "multirun").exists()
    assert time.monotonic() - start < 30


def test_an_unreachable_study_storage_is_refused_before_any_run(tmp_path: Path) -> None:
    storage = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"
    proc = run_learnai(tmp_path, *SEARCH, f"hydra.sweeper.storage={storage}", expect=2)
    line = error_line(proc)
    assert line.startswith("learnai: hydra.sweeper.storage: cannot connect to postgresql://"), line
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "mlruns" / "mlflow.db").exists(), "no parent run was created"


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            (*SEARCH, "optimizer.lrr=0.01"),
            "unknown key optimizer.lrr; did you mean optimizer.lr?",
        ),
        (
            (*SEARCH, "optimizer.momentum=0.9"),
            "unknown key optimizer.momentum for optimizer=adam; it exists only with optimizer=sgd",
        ),
        (
            ("-m", "experiment=lr_depth_serach", *TINY),
            "invalid value for experiment: 'lr_depth_serach'; did you mean lr_depth_search? "
            "(options: lr_depth_search, linear_regression, neural_network, polynomial_regression)",
        ),
        (
            ("-m", "optimizer.lr=0.01,1", "+model.widht=3", *TINY),
            "unknown key model.widht (model has: depth, hidden)",
        ),
    ],
    ids=["key", "other-option's-key", "experiment", "plus-key"],
)
def test_a_mistyped_key_or_option_is_refused_before_any_run(
    tmp_path: Path, args: tuple[str, ...], line: str
) -> None:
    proc = run_learnai(tmp_path, *args, expect=2)
    assert proc.stderr.strip().splitlines() == [f"learnai: {line}"]
    assert list(tmp_path.iterdir()) == [], "no store, no parent run, no study, no folder"
