"""learnai's own app swept by the Optuna plugin (``hydra/sweeper=optuna``), with
learnai's extras set by configuration (the sweeper's defaults are the published plugin's;
tests/sweeper/ checks those on apps of its own).

Every test runs ``python -m learnai -m hydra/sweeper=optuna ...`` in a subprocess and
checks what users look at: the persisted study (``mlruns/optuna.db``), the MLflow runs
(``mlruns/mlflow.db``) it links to, and the exit. A sweep read by several tests runs once
per module (a module-scoped fixture); ``make test`` keeps a module on one xdist worker.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
from pathlib import Path

import pytest
from helpers.cli import TINY_NO_ANIMATION, error_line, run_learnai
from helpers.stores import (
    PARENT_TAG,
    artifact_names,
    child_runs,
    describe_trials,
    download,
    load_study,
    mlflow_client,
    optuna_storage,
    parent_runs,
    read_csv,
    study_names,
)
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import TrialState
from PIL import Image

pytestmark = pytest.mark.e2e

# What conf/experiment/lr_depth_search.yaml sets: learnai's extras, by configuration.
LEARNAI_EXTRAS = (
    "hydra.sweeper.storage=sqlite:///mlruns/optuna.db",
    "hydra.sweeper.study_name=${tracking.experiment}",
    "hydra.sweeper.non_finite=prune",
    "hydra.sweeper.reseed_on_resume=true",
    "hydra.sweeper.max_failure_rate=1.0",
    "hydra.sweeper.n_jobs=1",
)
OPTUNA = ("-m", "hydra/sweeper=optuna", *LEARNAI_EXTRAS)
STUDY_ARTIFACTS = {
    "optuna_best.json",
    "optimization_history.png",
    "param_importances.png",
    "stability_map.png",
    "optuna_trials.csv",
}
FINISHED_STATES = {TrialState.COMPLETE, TrialState.PRUNED}


class Finished:
    """What the sweeps of study ``name`` left in ``cwd``: the last command's exit, the
    study and the MLflow store (``None`` where none was created)."""

    def __init__(self, cwd: Path, name: str, proc: subprocess.CompletedProcess[str]) -> None:
        self.cwd = cwd
        self.name = name
        self.proc = proc
        self.study = load_study(cwd, name) if name in study_names(cwd) else None
        db = cwd / "mlruns" / "mlflow.db"
        self.client = mlflow_client(cwd) if db.exists() else None

    @property
    def info(self) -> str:
        return describe_trials(self.study) if self.study is not None else "(no study)"


def sweep(cwd: Path, name: str, *args: str, expect: int | None = 0) -> Finished:
    proc = run_learnai(cwd, *OPTUNA, f"tracking.experiment={name}", *args, expect=expect)
    return Finished(cwd, name, proc)


class Study(Finished):
    """The same sweep command run twice in one directory (8 trials, then 4)."""

    name = "study_t"
    command = (
        "hydra/sweeper/sampler=random",
        "hydra.sweeper.sampler.seed=0",
        "optimizer.lr=tag(log, interval(1e-3, 1e-1))",
        "model.depth=int(interval(1, 3))",
        *TINY_NO_ANIMATION,
    )

    def __init__(self, cwd: Path) -> None:
        sweep(cwd, self.name, *self.command, "hydra.sweeper.n_trials=8")
        self.trials_after_first = len(load_study(cwd, self.name).trials)
        proc = sweep(cwd, self.name, *self.command, "hydra.sweeper.n_trials=4").proc
        super().__init__(cwd, self.name, proc)
        self.parents = parent_runs(self.client, self.name)


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Study:
    return Study(tmp_path_factory.mktemp("study"))


def run_pruned(cwd: Path) -> Finished:
    """Two good trials complete first (the pruner's startup), then a hopeless one runs.

    Two sweeps on one study make the order certain whatever the sampler draws: the
    second sweep's learning rate (1e-6) barely moves the loss by epoch 5, so the median
    pruner, comparing with the completed trials at the same step, must stop it.
    """
    common = (
        "hydra/sweeper/sampler=random",
        "hydra.sweeper.sampler.seed=0",
        "hydra/sweeper/pruner=median",
        "hydra.sweeper.pruner.n_startup_trials=2",
        "hydra.sweeper.pruner.n_warmup_steps=0",
        "trainer.report_every=5",
        *TINY_NO_ANIMATION,
    )
    good = "optimizer.lr=tag(log,interval(0.01,0.03))"
    sweep(cwd, "prune", *common, "hydra.sweeper.n_trials=2", good)
    hopeless = "optimizer.lr=tag(log,interval(1e-6,2e-6))"
    return sweep(cwd, "prune", *common, "hydra.sweeper.n_trials=1", hopeless)


@pytest.fixture(scope="module")
def bad_space(tmp_path_factory: pytest.TempPathFactory) -> Finished:
    """model.hidden=0 is rejected by the config checks: the sweeper checks every choice."""
    return sweep(
        tmp_path_factory.mktemp("bad_space"),
        "bad_space",
        "hydra.sweeper.n_trials=2",
        "model.hidden=choice(8,0)",
        *TINY_NO_ANIMATION,
        expect=2,
    )


# --- a persistent study: 8 trials, then 4 more ------------------------------------------


def test_same_command_again_continues_the_study(study: Study) -> None:
    assert study.trials_after_first == 8
    assert [t.number for t in study.study.trials] == list(range(12))
    assert study_names(study.cwd) == [study.name], "the study is named after the experiment"
    states = {t.state for t in study.study.trials}
    assert states <= FINISHED_STATES, describe_trials(study.study)


def test_trials_sample_the_search_space(study: Study) -> None:
    for t in study.study.trials:
        assert set(t.params) == {"optimizer.lr", "model.depth"}
        assert t.distributions["optimizer.lr"] == FloatDistribution(1e-3, 1e-1, log=True)
        assert t.distributions["model.depth"] == IntDistribution(1, 3)
    lrs = {t.params["optimizer.lr"] for t in study.study.trials[:8]}
    assert len(lrs) == 8, "a random sampler does not draw the same float twice"
    assert all(1e-3 <= lr <= 1e-1 for lr in lrs)


def test_resumed_sweep_draws_new_points(study: Study) -> None:
    trials = study.study.trials
    first = [t.params for t in trials[:4]]
    again = [t.params for t in trials[8:12]]
    assert again != first, f"trials 8-11 repeat trials 0-3: {again}"


def test_every_trial_links_to_its_mlflow_run(study: Study) -> None:
    first, second = study.parents
    for t in study.study.trials:
        assert t.state in FINISHED_STATES
        run_id = t.user_attrs.get("mlflow_run_id")
        assert run_id, f"trial {t.number} has no mlflow_run_id: {t.user_attrs}"
        run = study.client.get_run(run_id)
        tags = run.data.tags
        assert tags["optuna.study"] == study.name
        assert tags["optuna.trial"] == str(t.number)
        assert tags["outcome"] == t.user_attrs["outcome"]
        parent = first if t.number < 8 else second
        assert tags[PARENT_TAG] == parent.info.run_id
        # The job trained with the values the trial sampled.
        assert float(run.data.params["optimizer.lr"]) == pytest.approx(t.params["optimizer.lr"])
        assert int(run.data.params["model.depth"]) == t.params["model.depth"]
        if t.state == TrialState.COMPLETE:
            assert t.value == pytest.approx(run.data.metrics["final_val_loss"])


def test_each_sweep_has_a_parent_run_with_the_study(study: Study) -> None:
    assert len(study.parents) == 2
    for parent, trials in zip(study.parents, (range(8), range(8, 12)), strict=True):
        tags = parent.data.tags
        assert parent.info.status == "FINISHED"
        assert tags["optuna.study"] == study.name
        assert tags["optuna.storage"] == optuna_storage(study.cwd)
        assert tags["optuna.trials"] == ",".join(map(str, trials))
        assert tags["sweep.runs"] == str(len(trials))
        children = child_runs(study.client, study.name, parent.info.run_id)
        assert len(children) == len(trials)
    best = study.study.best_trial
    last = study.parents[-1].data.tags
    assert last["optuna.best_trial"] == str(best.number)
    assert float(last["best.optimizer.lr"]) == pytest.approx(best.params["optimizer.lr"])


def test_parent_run_holds_the_study_report(study: Study, tmp_path: Path) -> None:
    parent = study.parents[-1].info.run_id
    assert artifact_names(study.client, parent) >= STUDY_ARTIFACTS
    best = json.loads(download(study.client, parent, "optuna_best.json", tmp_path).read_text())
    assert best["study"] == study.name
    assert best["trials"] == 12
    assert best["best_trial"] == study.study.best_trial.number
    assert best["best_value"] == pytest.approx(study.study.best_value)
    assert best["best_run_id"] == study.study.best_trial.user_attrs["mlflow_run_id"]
    rows = read_csv(download(study.client, parent, "optuna_trials.csv", tmp_path))
    assert [int(r["number"]) for r in rows] == list(range(12))
    assert {r["mlflow_run_id"] for r in rows} == {
        t.user_attrs["mlflow_run_id"] for t in study.study.trials
    }
    for name in ("stability_map.png", "optimization_history.png", "param_importances.png"):
        with Image.open(download(study.client, parent, name, tmp_path)) as image:
            assert image.format == "PNG"
            assert min(image.size) > 100


# --- pruning ------------------------------------------------------------------------------


def test_pruner_stops_a_hopeless_trial(tmp_path: Path) -> None:
    pruned = run_pruned(tmp_path)
    study, client = pruned.study, pruned.client
    states = [t.state for t in study.trials]
    expected = [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.PRUNED]
    assert states == expected, pruned.info
    for t in study.trials[:2]:
        assert sorted(t.intermediate_values) == [5, 10, 15, 20], "reported every 5 epochs"
    hopeless = study.trials[2]
    assert hopeless.user_attrs["outcome"] == "pruned"
    run = client.get_run(hopeless.user_attrs["mlflow_run_id"])
    assert run.data.tags["outcome"] == "pruned"
    assert int(run.data.tags["epochs_run"]) < 20, "a pruned run stops early"
    assert max(hopeless.intermediate_values) == int(run.data.tags["epochs_run"])
    assert run.info.status == "FINISHED"
    assert study.best_trial.number in (0, 1)


# --- divergence ---------------------------------------------------------------------------


def test_diverged_trial_is_pruned_and_never_best(tmp_path: Path) -> None:
    """A non-finite objective is PRUNED (not COMPLETE), and the sweep exits 0: SGD at
    lr 1e6 overflows to inf/NaN; lr 0.1 fits the line."""
    diverged = sweep(
        tmp_path,
        "diverge",
        "hydra/sweeper/sampler=random",
        "hydra.sweeper.sampler.seed=0",  # draws 1e6, 0.1, 1e6
        "hydra/sweeper/pruner=none",
        "hydra.sweeper.n_trials=3",
        "experiment=linear_regression",
        "optimizer=sgd",
        "optimizer.lr=choice(0.1,1e6)",
        *TINY_NO_ANIMATION,
    )
    study, client, info = diverged.study, diverged.client, diverged.info
    lrs = [t.params["optimizer.lr"] for t in study.trials]
    assert len(lrs) == 3
    assert set(lrs) == {0.1, 1e6}, f"the seed no longer samples both values, pick another\n{info}"
    for t in study.trials:
        run = client.get_run(t.user_attrs["mlflow_run_id"])
        assert run.data.params["optimizer._target_"] == "torch.optim.SGD"
        if t.params["optimizer.lr"] == 1e6:
            assert t.state == TrialState.PRUNED, info
            assert t.user_attrs["outcome"] == "diverged"
            assert run.data.tags["outcome"] == "diverged"
            assert run.info.status == "FINISHED"
            # told with its last finite validation loss, so samplers can rank it
            assert t.value is not None and math.isfinite(t.value), info
        else:
            assert t.state == TrialState.COMPLETE, info
    best = study.best_trial
    assert best.params["optimizer.lr"] == 0.1
    assert math.isfinite(best.value)


# --- failures -----------------------------------------------------------------------------


def test_failing_job_is_a_fail_trial_and_the_sweep_goes_on(tmp_path: Path) -> None:
    """A value the config checks accept but the job cannot use (an unknown generator):
    that trial FAILs with an ``error`` attribute, the others run, and the sweep ends
    normally (max_failure_rate=1.0)."""
    failing = sweep(
        tmp_path,
        "failing",
        "hydra/sweeper/sampler=random",
        "hydra.sweeper.sampler.seed=0",  # draws missing, nonlinear, missing
        "hydra/sweeper/pruner=none",
        "hydra.sweeper.n_trials=3",
        "data._target_=choice(learnai.train.data.nonlinear,learnai.train.data.no_such_generator)",
        *TINY_NO_ANIMATION,
        # max_failure_rate=1.0: the sweep goes on and ends 0, as the published plugin does;
        # learnai's exit 1 for failed jobs moves to the entry point (lead).
        expect=None,
    )
    study, client, info = failing.study, failing.client, failing.info
    assert len(study.trials) == 3, "the sweep ran all n_trials despite failures\n" + info
    failed = [t for t in study.trials if t.params["data._target_"].endswith("no_such_generator")]
    good = [t for t in study.trials if t not in failed]
    assert failed and good, f"the seed no longer samples both values, pick another\n{info}"
    assert min(t.number for t in failed) < max(t.number for t in study.trials), (
        "a trial ran after a failure"
    )
    for t in failed:
        assert t.state == TrialState.FAIL, info
        assert "no_such_generator" in t.user_attrs["error"]
    for t in good:
        assert t.state == TrialState.COMPLETE, info
        run = client.get_run(t.user_attrs["mlflow_run_id"])
        assert run.info.status == "FINISHED"
    (parent,) = parent_runs(client, "failing")
    assert parent.info.status == "FINISHED"
    assert "Traceback" not in failing.proc.stderr


def test_bad_search_space_is_rejected_before_any_trial(bad_space: Finished) -> None:
    line = error_line(bad_space.proc)
    assert re.search(r"model\.hidden\b.*: 0 ", line), line
    assert "Traceback" not in bad_space.proc.stderr
    assert study_names(bad_space.cwd) == [], "no study for a sweep that cannot start"


def test_bad_search_space_creates_no_mlflow_run(bad_space: Finished) -> None:
    client = bad_space.client
    if client is not None:
        runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
        assert runs == [], [r.data.tags for r in runs]


# --- the grid sampler -------------------------------------------------------------------


def test_grid_sampler_runs_every_point_once(tmp_path: Path) -> None:
    grid = sweep(
        tmp_path,
        "grid",
        "hydra/sweeper/sampler=grid",
        "hydra/sweeper/pruner=none",
        "hydra.sweeper.n_trials=5",  # more than the 2 grid points: capped to 2
        "optimizer.lr=choice(0.01,0.03)",
        *TINY_NO_ANIMATION,
        expect=None,
    )
    assert grid.proc.returncode == 0, grid.proc.stderr[-3000:]
    assert sorted(t.params["optimizer.lr"] for t in grid.study.trials) == [0.01, 0.03]
    assert {t.state for t in grid.study.trials} == {TrialState.COMPLETE}, grid.info


# --- parallel trials ----------------------------------------------------------------------


def test_parallel_trials_with_joblib_are_all_linked(tmp_path: Path) -> None:
    """The shipped experiment (its params come from hydra.sweeper.params), two trials at
    a time in joblib worker processes: every trial finishes and links to a child run of
    the sweep's parent."""
    proc = run_learnai(
        tmp_path,
        "-m",
        "experiment=lr_depth_search",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "hydra.sweeper.n_jobs=2",
        "hydra.sweeper.n_trials=4",
        "tracking.experiment=parallel",
        *TINY_NO_ANIMATION,
    )
    parallel = Finished(tmp_path, "parallel", proc)
    study, client, info = parallel.study, parallel.client, parallel.info
    assert [t.number for t in study.trials] == [0, 1, 2, 3], info
    (parent,) = parent_runs(client, "parallel")
    assert parent.info.status == "FINISHED"
    # (the parent's "optuna.trials" tag comes with the study report, moving to the lead)
    children = {r.info.run_id: r for r in child_runs(client, "parallel", parent.info.run_id)}
    assert len(children) == 4
    pids = {r.data.tags["learnai.pid"] for r in children.values()}
    assert parent.data.tags["learnai.pid"] not in pids, "joblib's workers ran the trials"
    for t in study.trials:
        assert t.state in FINISHED_STATES, info
        assert set(t.params) == {"optimizer.lr", "model.depth"}
        run_id = t.user_attrs["mlflow_run_id"]
        assert run_id in children, f"trial {t.number}'s run is not a child of the parent"
        assert children[run_id].data.tags["optuna.trial"] == str(t.number)
    assert {t.user_attrs["mlflow_run_id"] for t in study.trials} == set(children)
