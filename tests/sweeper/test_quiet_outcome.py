"""A pruned trial is one quiet line: Hydra's ``Error executing job with overrides: [...]``
is for jobs that failed, and a job that raised ``optuna.TrialPruned`` did not.

In-process: the sweeper's reading of a real ``JobReturn`` into a real study. End to end
(``e2e``): an app that knows nothing of learnai, swept until the median pruner stops
some of its trials, prints no such line.
"""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from hydra.core.utils import JobReturn, JobStatus
from optuna.trial import TrialState
from sweeper_helpers import APPS, run_app, without_learnai

from hydra_plugins.learnai_optuna_sweeper._outcome import tell

HYDRAS_LINE = "Error executing job with overrides"


def _told(ret: JobReturn) -> tuple[TrialState, BaseException | None]:
    study = optuna.create_study()
    trial = study.ask()
    err = tell(study, trial, ret, 1, "prune")
    return study.trials[0].state, err


def test_a_pruned_job_is_recorded_pruned_without_hydras_error_line(capfd) -> None:
    ret = JobReturn(overrides=["x=1"], status=JobStatus.FAILED)
    ret.return_value = optuna.TrialPruned("stopped at step 3")
    assert _told(ret) == (TrialState.PRUNED, None)
    assert HYDRAS_LINE not in capfd.readouterr().err


def test_a_failed_job_keeps_hydras_line_and_fails_its_trial(capfd) -> None:
    ret = JobReturn(overrides=["x=1"], status=JobStatus.FAILED)
    ret.return_value = RuntimeError("boom")
    state, err = _told(ret)
    assert state == TrialState.FAIL and isinstance(err, RuntimeError)
    assert "Error executing job with overrides: ['x=1']" in capfd.readouterr().err


def test_a_completed_job_is_told_its_value(capfd) -> None:
    ret = JobReturn(overrides=["x=1"], status=JobStatus.COMPLETED)
    ret.return_value = 0.5
    assert _told(ret) == (TrialState.COMPLETE, None)
    assert capfd.readouterr().err == ""


@pytest.mark.e2e
def test_a_sweep_with_pruned_trials_prints_no_error_line(tmp_path: Path) -> None:
    proc = run_app(APPS / "curve.py", tmp_path, env=without_learnai(tmp_path))
    study = optuna.load_study(study_name="curve", storage=f"sqlite:///{tmp_path / 'curve.db'}")
    assert any(t.state == TrialState.PRUNED for t in study.trials), "nothing was pruned"
    assert HYDRAS_LINE not in proc.stdout + proc.stderr
