"""End to end: Hydra apps that know nothing of learnai, swept with ``hydra/sweeper=optuna``
and the published plugin's keys, checked against what users look at: the exit code, the
study in its storage and ``optimization_results.yaml`` in the sweep directory."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from helpers.polling import wait_until
from omegaconf import OmegaConf
from optuna.trial import TrialState
from sweeper_helpers import APPS, run_app

pytestmark = pytest.mark.e2e

SPHERE = APPS / "sphere.py"


def storage(cwd: Path) -> str:
    return f"sqlite:///{cwd / 'study.db'}"


def persisted(cwd: Path, name: str = "sphere") -> tuple[str, ...]:
    return (f"hydra.sweeper.storage={storage(cwd)}", f"hydra.sweeper.study_name={name}")


def load(cwd: Path, name: str = "sphere") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=storage(cwd))


def results(cwd: Path):
    return OmegaConf.load(cwd / "multirun" / "optimization_results.yaml")


def describe(study: optuna.Study) -> str:
    return "\n".join(
        f"  #{t.number} {t.state.name} {t.values} {t.params}" for t in study.get_trials()
    )


# --- the published plugin's example runs ---------------------------------------------------


@pytest.mark.parametrize("with_commandline", [True, False])
def test_sphere_writes_the_best_trial_to_optimization_results(tmp_path, with_commandline) -> None:
    args = [
        "hydra.job.chdir=True",
        "hydra.sweeper.n_trials=20",
        "hydra/sweeper/sampler=tpe",
        "hydra.sweeper.sampler.seed=123",
        "~z",
        *persisted(tmp_path),
    ]
    if with_commandline:
        args += ["x=choice(0, 1, 2)", "y=0"]  # y is fixed
    run_app(SPHERE, tmp_path, *args)
    study, returns = load(tmp_path), results(tmp_path)
    assert returns.name == "optuna"
    assert returns.best_params == study.best_trial.params
    assert returns.best_value == study.best_value
    assert len(study.trials) == 20
    if with_commandline:
        assert "y" not in returns.best_params
        assert all(t.user_attrs["y"] == "0" for t in study.trials), "fixed values as in 1.3"
        assert {t.params["x"] for t in study.trials} <= {0, 1, 2}
    else:
        # the published config's range(-5.5, 5.5, step=0.5): both ends included
        dist = study.trials[0].distributions["x"]
        assert dist == optuna.distributions.FloatDistribution(-5.5, 5.5, step=0.5)
    assert returns.best_value <= 2.27  # the published test's bound for TPE on this space


def test_direction_maximize(tmp_path) -> None:
    run_app(
        SPHERE,
        tmp_path,
        "hydra.sweeper.direction=maximize",
        "hydra.sweeper.n_trials=6",
        "hydra.sweeper.n_jobs=3",
        "hydra/sweeper/sampler=random",
        "hydra.sweeper.sampler.seed=1",
        *persisted(tmp_path),
    )
    study = load(tmp_path)
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE
    values = [t.value for t in study.trials]
    assert results(tmp_path).best_value == max(values) == study.best_value


def test_in_memory_storage_is_the_default(tmp_path) -> None:
    proc = run_app(SPHERE, tmp_path, "hydra.sweeper.n_trials=3", "x=choice(1)", "y=choice(2)")
    assert results(tmp_path).best_value == 5.0
    assert "Storage: in memory" in proc.stdout + proc.stderr
    assert not list(tmp_path.glob("*.db")), "nothing persisted"


def test_multi_objective_writes_the_pareto_front(tmp_path) -> None:
    app = APPS / "multi_objective.py"
    run_app(app, tmp_path, "hydra.sweeper.n_trials=20", *persisted(tmp_path, "mo"))
    study = load(tmp_path, "mo")
    assert [d.name for d in study.directions] == ["MINIMIZE", "MINIMIZE"]
    solutions = results(tmp_path).solutions
    assert len(solutions) == len(study.best_trials) >= 1
    front = {tuple(t.values) for t in study.best_trials}
    assert {tuple(s["values"]) for s in solutions} == front
    for s in solutions:
        assert s.params.x % 0.5 == 0 and s.params.y % 0.5 == 0
        for other in solutions:  # no solution dominates another
            better_or_equal = all(a <= b for a, b in zip(s["values"], other["values"], strict=True))
            assert not (better_or_equal and list(s["values"]) != list(other["values"]))


def test_custom_search_space(tmp_path) -> None:
    run_app(
        APPS / "custom_space.py",
        tmp_path,
        "hydra.sweeper.n_trials=10",
        "hydra/sweeper/sampler=random",
        "max_z_difference_from_x=0.3",
    )
    best = results(tmp_path).best_params
    assert abs(best.x - best.z) <= 0.3
    assert 0 <= best["+w"] <= 1


def test_joblib_launcher_runs_batches_in_worker_processes(tmp_path) -> None:
    proc = run_app(
        SPHERE,
        tmp_path,
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "hydra.sweeper.n_jobs=2",
        "hydra.sweeper.n_trials=4",
        *persisted(tmp_path),
    )
    assert "Joblib" in proc.stdout + proc.stderr
    study = load(tmp_path)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 4, describe(study)
    assert results(tmp_path).best_value == study.best_value


def test_submitit_launcher_runs_each_trial_as_its_own_job(tmp_path) -> None:
    """submitit_local, the stand-in for submitit_slurm: a process per trial, its result
    pickled back through the sweep directory."""
    run_app(
        SPHERE,
        tmp_path,
        "hydra/launcher=submitit_local",
        "hydra.launcher.timeout_min=5",
        "hydra.sweeper.n_jobs=2",
        "hydra.sweeper.n_trials=4",
        *persisted(tmp_path),
    )
    study = load(tmp_path)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 4, describe(study)
    for trial in study.trials:
        assert trial.value == trial.params["x"] ** 2 + trial.params["y"] ** 2
    logs = list((tmp_path / "multirun" / ".submitit").rglob("*_result.pkl"))
    assert len(logs) == 4, logs  # each trial came back from its own submitit job
    assert results(tmp_path).best_value == study.best_value


# --- failures ------------------------------------------------------------------------------


def test_max_failure_rate_zero_reraises_the_jobs_error(tmp_path) -> None:
    """The published default: the first failing batch stops the sweep, exit non-zero."""
    proc = run_app(
        SPHERE,
        tmp_path,
        "error=true",
        "hydra.sweeper.n_jobs=2",
        *persisted(tmp_path),
        expect=1,
    )
    assert "RuntimeError: cfg.error is True" in proc.stderr
    study = load(tmp_path)
    assert [t.state for t in study.trials] == [TrialState.FAIL] * 2, "stopped after one batch"
    assert not (tmp_path / "multirun" / "optimization_results.yaml").exists()


def test_max_failure_rate_one_goes_on(tmp_path) -> None:
    proc = run_app(
        SPHERE,
        tmp_path,
        "hydra.sweeper.max_failure_rate=1.0",
        "hydra.sweeper.n_trials=6",
        "hydra/sweeper/sampler=grid",
        "x=choice(0, 1, 2)",
        "y=choice(0, 1)",
        "fail_at=[1,1]",
        *persisted(tmp_path),
    )
    assert "ValueError: fail_at" not in proc.stderr
    study = load(tmp_path)
    failed = [t.params for t in study.trials if t.state == TrialState.FAIL]
    assert failed == [{"x": 1, "y": 1}], describe(study)
    assert results(tmp_path).best_value == 0


def test_max_failure_rate_half_stops_when_a_batch_fails_more(tmp_path) -> None:
    proc = run_app(
        SPHERE,
        tmp_path,
        "error=true",
        "hydra.sweeper.max_failure_rate=0.5",
        "hydra.sweeper.n_jobs=2",
        *persisted(tmp_path),
        expect=1,
    )
    assert "RuntimeError: cfg.error is True" in proc.stderr
    assert len(load(tmp_path).trials) == 2


def test_every_trial_failing_exits_nonzero_with_one_line(tmp_path) -> None:
    proc = run_app(
        SPHERE,
        tmp_path,
        "error=true",
        "hydra.sweeper.max_failure_rate=1.0",
        "hydra.sweeper.n_trials=2",
        *persisted(tmp_path),
        expect=1,
    )
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("optuna sweeper: study 'sphere' has no completed trial (states: FAIL)")


@pytest.mark.parametrize(
    ("policy", "state"), [("optuna", TrialState.FAIL), ("prune", TrialState.PRUNED)]
)
def test_non_finite_objective_policy(tmp_path, policy, state) -> None:
    run_app(
        SPHERE,
        tmp_path,
        f"hydra.sweeper.non_finite={policy}",
        "hydra/sweeper/sampler=grid",
        "x=choice(0, 1)",
        "y=0",
        "nan_at=[1,0]",
        *persisted(tmp_path),
    )
    study = load(tmp_path)
    by_x = {t.params["x"]: t for t in study.trials}
    assert by_x[1].state == state, describe(study)
    assert by_x[0].state == TrialState.COMPLETE
    assert results(tmp_path).best_params == {"x": 0}


# --- refused before any study exists ------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["hydra/sweeper/sampler=grid", "x=interval(0, 1)"],
            "optuna sweeper: invalid sweep param x=interval(0, 1): the grid sampler needs "
            "discrete values (choice or range), not a continuous interval",
        ),
        (
            ["hydra.sweeper.direction=sideways"],
            "optuna sweeper: invalid value for hydra.sweeper.direction: 'sideways' "
            "(minimize or maximize)",
        ),
        (
            ["hydra.sweeper.max_failure_rate=2"],
            "optuna sweeper: invalid value for hydra.sweeper.max_failure_rate: 2.0 "
            "(must be in [0, 1])",
        ),
    ],
)
def test_bad_sweeps_are_refused_with_one_line(tmp_path, args, line) -> None:
    proc = run_app(SPHERE, tmp_path, *args, *persisted(tmp_path), expect=2)
    assert proc.stderr.strip().splitlines() == [line]
    assert not (tmp_path / "study.db").exists(), "no study for a sweep that cannot start"


def test_deprecated_search_space_key_is_migrated(tmp_path) -> None:
    proc = run_app(
        SPHERE,
        tmp_path,
        "hydra.sweeper.params=null",
        "hydra.sweeper.search_space={x: {type: int, low: -2, high: 2}, "
        "y: {type: categorical, choices: [0, 1]}}",
        "hydra.sweeper.n_trials=4",
        *persisted(tmp_path),
    )
    assert "hydra.sweeper.search_space is deprecated: migrated" in proc.stderr + proc.stdout
    for t in load(tmp_path).trials:
        assert t.distributions["x"] == optuna.distributions.IntDistribution(-2, 2)
        assert t.params["y"] in (0, 1)


# --- resume -------------------------------------------------------------------------------

GRID = ("hydra/sweeper/sampler=grid", "x=choice(-1, 1)", "y=range(-1.0, 1.0, step=1)")


def points(study: optuna.Study, state: TrialState = TrialState.COMPLETE) -> list[tuple]:
    return sorted((t.params["x"], t.params["y"]) for t in study.trials if t.state == state)


def test_grid_runs_the_published_grid_once(tmp_path) -> None:
    run_app(SPHERE, tmp_path, *GRID, "hydra.sweeper.n_trials=10", *persisted(tmp_path))
    assert points(load(tmp_path)) == [(-1, -1.0), (-1, 0.0), (1, -1.0), (1, 0.0)]
    assert results(tmp_path).best_value == 1


def test_resumed_grid_reruns_a_failed_point(tmp_path) -> None:
    args = (*GRID, "hydra.sweeper.max_failure_rate=1.0", *persisted(tmp_path))
    run_app(SPHERE, tmp_path, *args, "fail_at=[1,0.0]")
    assert points(load(tmp_path), TrialState.FAIL) == [(1, 0.0)]
    run_app(SPHERE, tmp_path, *args)
    study = load(tmp_path)
    assert points(study) == [(-1, -1.0), (-1, 0.0), (1, -1.0), (1, 0.0)], describe(study)


def test_resumed_grid_reruns_a_point_left_running_by_a_killed_sweep(tmp_path) -> None:
    args = (*GRID, "hydra.sweeper.n_jobs=1", *persisted(tmp_path))
    crash = ("crash_at=[1,-1.0]", f"crash_once={tmp_path / 'crashed'}")
    proc = run_app(SPHERE, tmp_path, *args, *crash, "hydra.sweeper.sampler.seed=0", expect=None)
    assert proc.returncode == -9, proc.stderr[-2000:]  # SIGKILL: nothing cleaned up
    assert points(load(tmp_path), TrialState.RUNNING) == [(1, -1.0)]
    run_app(SPHERE, tmp_path, *args, *crash, "hydra.sweeper.sampler.seed=0")
    study = load(tmp_path)
    assert points(study) == [(-1, -1.0), (-1, 0.0), (1, -1.0), (1, 0.0)], describe(study)
    run_app(SPHERE, tmp_path, *args)  # a third run finds nothing left to do
    assert len(points(load(tmp_path))) == 4


def test_resume_with_reseeding_draws_new_points(tmp_path) -> None:
    args = (
        "hydra/sweeper/sampler=random",
        "hydra.sweeper.sampler.seed=7",
        "hydra.sweeper.n_trials=3",
        "x=interval(-5, 5)",
        *persisted(tmp_path),
    )
    run_app(SPHERE, tmp_path, *args)
    run_app(SPHERE, tmp_path, *args, "hydra.sweeper.reseed_on_resume=true")
    run_app(SPHERE, tmp_path, *args)  # the published behaviour: the seed repeats
    xs = [t.params["x"] for t in load(tmp_path).trials]
    assert len(xs) == 9
    assert xs[3:6] != xs[0:3], "re-seeded: new points"
    assert xs[6:9] == xs[0:3], "not re-seeded: the same points again, as 1.3 does"


def test_stale_trial_is_failed_and_retried_with_heartbeats(tmp_path) -> None:
    args = (
        "hydra.sweeper.heartbeat_interval=1",
        "hydra.sweeper.grace_period=2",
        "hydra.sweeper.max_retry=1",
        "hydra.sweeper.n_jobs=1",
        "hydra.sweeper.n_trials=1",
        "x=choice(3)",
        "y=choice(0)",
        "crash_at=[3,0]",
        f"crash_once={tmp_path / 'crashed'}",
        *persisted(tmp_path),
    )
    proc = run_app(SPHERE, tmp_path, *args, expect=None)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert [t.state for t in load(tmp_path).trials] == [TrialState.RUNNING]
    # The next sweep fails the trial once its heartbeat is older than the grace period:
    # wait for that, by Optuna's own rule, as the next sweep applies it.
    beats = optuna.storages.RDBStorage(storage(tmp_path), heartbeat_interval=1, grace_period=2)
    study_id = beats.get_study_id_from_name("sphere")
    wait_until(lambda: beats._get_stale_trial_ids(study_id), "a stale heartbeat", timeout=30)
    run_app(SPHERE, tmp_path, *args)
    study = load(tmp_path)
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.COMPLETE]
    retry = study.trials[1]
    assert optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(retry) == 0
    assert retry.params == {"x": 3, "y": 0}
