"""The job-side API (:func:`hydra_plugins.learnai_optuna_sweeper.trial.current_trial`)
from apps that are not learnai's: ``experiments/optuna_any_app`` and ``apps/curve.py``
(swept where learnai cannot be imported). Their jobs report every step, the median
pruner stops hopeless ones, and each trial gets a link attribute. The sweeps are e2e: the
apps run as their users run them."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from helpers.cli import run_python
from helpers.processes import REPO
from optuna.trial import TrialState
from sweeper_helpers import APPS, run_app, without_learnai

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


@pytest.mark.e2e
def test_jobs_report_and_get_pruned_through_the_storage(tmp_path: Path) -> None:
    """The example as its README runs it (basic launcher: jobs in the sweeper's process,
    the study in SQLite); joblib's worker processes: the next test."""
    run_app(APP, tmp_path, "hydra.sweeper.n_trials=10")
    # the app's config: sqlite:///optuna_any_app.db, relative to the launch directory
    study = optuna.load_study(study_name=STUDY, storage=f"sqlite:///{tmp_path / f'{STUDY}.db'}")
    check_study(study, 10)


@pytest.mark.e2e
def test_an_app_reaches_its_trial_without_learnai(tmp_path: Path) -> None:
    """The plugin alone serves the job's side: jobs in joblib's worker processes, where
    ``import learnai`` fails, report to and are pruned through the SQLite storage."""
    env = without_learnai(tmp_path)
    probe = run_python(tmp_path, "-c", "import learnai", env=env)
    assert probe.returncode != 0 and "No module named 'learnai'" in probe.stderr
    run_app(CURVE, tmp_path, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", env=env)
    study = optuna.load_study(study_name="curve", storage=f"sqlite:///{tmp_path / 'curve.db'}")
    check_study(study, 10, "curve")


@pytest.mark.e2e
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
    proc = run_python(tmp_path, "-c", code)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(rows) == 10
    assert {state for state, _, _ in rows} == {"COMPLETE", "PRUNED"}, rows
    for number, (state, steps, link) in enumerate(rows):
        assert link == f"my-tracker://runs/{STUDY}/{number}"
        assert steps == 20 if state == "COMPLETE" else 0 < steps < 20
    assert not list(tmp_path.glob("*.db"))


@pytest.mark.e2e
def test_the_app_runs_alone_without_a_trial(tmp_path: Path) -> None:
    proc = run_python(tmp_path, str(APP), "steps=3")
    assert proc.returncode == 0, proc.stderr
    assert not list(tmp_path.glob("*.db")), "no study outside a sweep"


# --- learnai's side: capped reports, the trial's note -------------------------------------


@pytest.fixture
def job_trial(tmp_path: Path):
    """A trial of a real SQLite study, reached as a job reaches it."""
    from hydra_plugins.learnai_optuna_sweeper.trial import JobTrial

    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'study.db'}")
    study = optuna.create_study(study_name="s", storage=storage)
    asked = study.ask()
    return JobTrial(storage, study, asked.number), study, asked


def test_reports_are_capped_at_the_ceiling_and_keep_what_is_below(job_trial) -> None:
    """A blow-up to 6.2e19 reports the ceiling (the loss of predicting the mean), so the
    dashboard's plots stay readable; values below it are reported as they are."""
    from learnai.train.pruning import PruningCallback

    trial, study, _ = job_trial
    callback = PruningCallback(trial, every=1, ceiling=2.0)
    callback.report(1, 0.5)
    callback.report(2, 6.2e19)
    callback.report(3, float("inf"))  # not finite: not reported
    callback.report_last_finite([0.5, 6.2e19, 7e25, float("nan")])
    assert study.trials[0].intermediate_values == {1: 0.5, 2: 2.0, 3: 2.0}
    uncapped = PruningCallback(trial, every=1)
    uncapped.report(4, 6.2e19)
    assert study.trials[0].intermediate_values[4] == 6.2e19


def test_a_trial_note_holds_a_markdown_link(job_trial) -> None:
    from optuna_dashboard import get_note

    trial, _, asked = job_trial
    assert trial.save_note("MLflow run: [lr=1](http://127.0.0.1:5000/#/experiments/1/runs/r)")
    assert get_note(asked) == "MLflow run: [lr=1](http://127.0.0.1:5000/#/experiments/1/runs/r)"
