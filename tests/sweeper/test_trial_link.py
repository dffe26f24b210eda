"""The job-side API (:func:`hydra_plugins.learnai_optuna_sweeper.trial.current_trial`)
from apps that are not learnai's: ``experiments/optuna_any_app`` and ``apps/curve.py``
(swept where learnai cannot be imported). Their jobs report every step, the median
pruner stops hopeless ones, and each trial gets a link attribute."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from sweep_helpers import run_python
from sweeper_helpers import APPS, REPO, without_learnai

# pyproject ignores DeprecationWarning; the sweeper and its API must not raise any.
pytestmark = pytest.mark.filterwarnings("error::DeprecationWarning")

APP = REPO / "experiments" / "optuna_any_app" / "app.py"
STUDY = "optuna_any_app"
CURVE = APPS / "curve.py"


def test_outside_a_sweep_there_is_no_trial(monkeypatch) -> None:
    from hydra_plugins.learnai_optuna_sweeper.trial import current_trial

    monkeypatch.setenv("LEARNAI_OPTUNA_TRIAL", "0")  # not a Hydra job: still None
    monkeypatch.setenv("LEARNAI_OPTUNA_STUDY", "s")
    assert current_trial() is None


def check_study(study: optuna.Study, n_trials: int, name: str = STUDY) -> None:
    info = "\n".join(f"#{t.number} {t.state.name} {t.user_attrs}" for t in study.trials)
    assert len(study.trials) == n_trials, info
    states = {t.state for t in study.trials}
    assert states <= {TrialState.COMPLETE, TrialState.PRUNED}, info
    assert TrialState.PRUNED in states, "the median pruner stopped no trial\n" + info
    for t in study.trials:
        assert t.user_attrs["run_link"] == f"my-tracker://runs/{name}/{t.number}"
        steps = sorted(t.intermediate_values)
        assert steps == list(range(1, len(steps) + 1)), "one report per step"
        if t.state == TrialState.COMPLETE:
            assert len(steps) == 20
            assert t.value == pytest.approx(t.intermediate_values[20])
        else:
            assert len(steps) < 20, "a pruned trial stopped early"


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["basic", "joblib"])
def test_jobs_report_and_get_pruned_through_the_storage(run_app, tmp_path, launcher) -> None:
    args = [f"hydra/launcher={launcher}", "hydra.sweeper.n_trials=10"]
    if launcher == "joblib":
        args += ["hydra.launcher.n_jobs=2"]
    proc = run_app(APP, tmp_path, *args)
    if launcher == "joblib":
        assert "Joblib" in proc.stdout + proc.stderr
    # the app's config: sqlite:///optuna_any_app.db, relative to the launch directory
    study = optuna.load_study(study_name=STUDY, storage=f"sqlite:///{tmp_path / f'{STUDY}.db'}")
    check_study(study, 10)


@pytest.mark.slow
def test_an_app_reaches_its_trial_without_learnai(run_app, tmp_path: Path) -> None:
    """The plugin alone serves the job's side: jobs in joblib's worker processes, where
    ``import learnai`` fails, report to and are pruned through the SQLite storage."""
    env = without_learnai(tmp_path)
    probe = run_python(tmp_path, "-c", "import learnai", env=env)
    assert probe.returncode != 0 and "No module named 'learnai'" in probe.stderr
    run_app(CURVE, tmp_path, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", env=env)
    study = optuna.load_study(study_name="curve", storage=f"sqlite:///{tmp_path / 'curve.db'}")
    check_study(study, 10, "curve")


@pytest.mark.slow
def test_in_memory_study_reaches_jobs_in_the_sweepers_process(tmp_path: Path) -> None:
    """No storage: jobs of the basic launcher share the sweeper's process and its study."""
    code = f"""
import json, runpy, sys
sys.argv = [{str(APP)!r}, "-m", "hydra.sweep.dir={tmp_path}/multirun",
            "hydra.sweeper.storage=null", "hydra.sweeper.n_trials=10"]
runpy.run_path({str(APP)!r}, run_name="__main__")
import optuna
from hydra_plugins.learnai_optuna_sweeper.storage import in_memory
study = optuna.load_study(study_name={STUDY!r}, storage=in_memory({STUDY!r}))
print(json.dumps([[t.state.name, len(t.intermediate_values), t.user_attrs["run_link"]]
                  for t in study.trials]))
"""
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(rows) == 10
    assert {state for state, _, _ in rows} == {"COMPLETE", "PRUNED"}, rows
    for number, (state, steps, link) in enumerate(rows):
        assert link == f"my-tracker://runs/{STUDY}/{number}"
        assert steps == 20 if state == "COMPLETE" else 0 < steps < 20
    assert not list(tmp_path.glob("*.db"))


@pytest.mark.slow
def test_the_app_runs_alone_without_a_trial(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(APP), "steps=3"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert not list(tmp_path.glob("*.db")), "no study outside a sweep"
