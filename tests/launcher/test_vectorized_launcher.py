"""``hydra/launcher=vectorized`` against Hydra's basic launcher: the same sweep gives the
same runs (names, params, outcomes, metrics within float tolerance, artifacts) and the
same job folders; an Optuna sweep's trials are linked and pruned member by member; a
job that cannot be stacked trains alone. Each sweep is ``python -m learnai -m ...`` in a
subprocess, as a user runs it."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from helpers.cli import TINY, TINY_NO_ANIMATION, error_line, run_learnai
from helpers.stores import (
    artifact_names,
    child_runs,
    describe_trials,
    load_study,
    mlflow_client,
    parent_runs,
)
from optuna.trial import TrialState

pytestmark = pytest.mark.e2e

GRID = ("-m", "optimizer.lr=0.003,0.03,1", "trainer.seed=0,1", *TINY)
SAME_TAGS = ("outcome", "epochs_run", "diverged_epoch", "device", "overrides")


def _runs(cwd: Path) -> dict[str, object]:
    """The sweep's child runs by name."""
    client = mlflow_client(cwd)
    (parent,) = parent_runs(client, "learnai")
    runs = child_runs(client, "learnai", parent.info.run_id)
    return {r.info.run_name: r for r in runs}


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same grid sweep through each launcher, each in its own folder."""
    dirs = {}
    for launcher in ("basic", "vectorized"):
        cwd = tmp_path_factory.mktemp(launcher)
        proc = run_learnai(cwd, *GRID, f"hydra/launcher={launcher}")
        if launcher == "vectorized":
            assert "training 6 runs as one stacked model" in proc.stderr + proc.stdout
        dirs[launcher] = cwd
    return dirs


def test_both_launchers_record_the_same_runs(both: dict[str, Path]) -> None:
    basic, stacked = _runs(both["basic"]), _runs(both["vectorized"])
    assert sorted(basic) == sorted(stacked) and len(basic) == 6
    client_b, client_v = mlflow_client(both["basic"]), mlflow_client(both["vectorized"])
    outcomes = set()
    for name, b in basic.items():
        v = stacked[name]
        assert v.info.status == b.info.status == "FINISHED"
        assert v.data.params == b.data.params, name
        for tag in SAME_TAGS:
            assert v.data.tags.get(tag) == b.data.tags.get(tag), (name, tag)
        outcomes.add(b.data.tags["outcome"])
        assert set(v.data.metrics) == set(b.data.metrics), name
        for key, value in b.data.metrics.items():
            assert _close(v.data.metrics[key], value), (name, key, v.data.metrics[key], value)
        for key in ("train_loss", "val_loss"):
            hb = client_b.get_metric_history(b.info.run_id, key)
            hv = client_v.get_metric_history(v.info.run_id, key)
            assert [m.step for m in hv] == [m.step for m in hb], (name, key)
            assert all(_close(x.value, y.value) for x, y in zip(hv, hb, strict=True)), name
        assert artifact_names(client_v, v.info.run_id) == artifact_names(client_b, b.info.run_id)
    assert {"converged", "diverged"} <= outcomes, "the grid covers both ends"


def test_every_job_keeps_its_folder_and_hydra_files(both: dict[str, Path]) -> None:
    def files(cwd: Path) -> list[str]:
        (sweep,) = [p for p in (cwd / "multirun").glob("*/*") if p.is_dir()]
        return sorted(str(p.relative_to(sweep)) for p in sweep.rglob("*") if p.is_file())

    expected = files(both["basic"])
    assert "5/.hydra/overrides.yaml" in expected
    assert files(both["vectorized"]) == expected


def _close(a: float, b: float) -> bool:
    if not (math.isfinite(a) and math.isfinite(b)):
        return math.isnan(a) == math.isnan(b) and (math.isnan(a) or a == b)
    return math.isclose(a, b, rel_tol=1e-3, abs_tol=1e-5)


OPTUNA = (
    "-m",
    "hydra/sweeper=optuna",
    "hydra/launcher=vectorized",
    "hydra.sweeper.storage=sqlite:///mlruns/optuna.db",
    "hydra.sweeper.study_name=stacked",
    "hydra.sweeper.non_finite=prune",
    "hydra.sweeper.max_failure_rate=1.0",
    "hydra/sweeper/sampler=random",
    "hydra.sweeper.sampler.seed=0",
    "hydra/sweeper/pruner=median",
    "hydra.sweeper.pruner.n_startup_trials=2",
    "hydra.sweeper.pruner.n_warmup_steps=0",
    "trainer.report_every=5",
    "hydra.sweeper.n_jobs=2",
    *TINY_NO_ANIMATION,
)


def test_an_optuna_batch_is_one_group_and_prunes_member_by_member(tmp_path: Path) -> None:
    """Two good trials complete as one stacked group; then a batch of two hopeless ones
    (lr ~1e-6) is stacked and the median pruner stops each through its own trial."""
    good = run_learnai(
        tmp_path, *OPTUNA, "hydra.sweeper.n_trials=2", "optimizer.lr=tag(log,interval(0.01,0.03))"
    )
    assert "training 2 runs as one stacked model" in good.stderr + good.stdout
    run_learnai(
        tmp_path, *OPTUNA, "hydra.sweeper.n_trials=2", "optimizer.lr=tag(log,interval(1e-6,2e-6))"
    )
    study = load_study(tmp_path, "stacked")
    states = [t.state for t in study.trials]
    assert states == [TrialState.COMPLETE] * 2 + [TrialState.PRUNED] * 2, describe_trials(study)
    client = mlflow_client(tmp_path)
    for trial in study.trials:
        run = client.get_run(trial.user_attrs["mlflow_run_id"])
        assert run.info.status == "FINISHED"
        assert run.data.tags["optuna.trial"] == str(trial.number)
        assert run.data.tags["outcome"] == trial.user_attrs["outcome"]
        lr = float(run.data.params["optimizer.lr"])
        assert math.isclose(lr, trial.params["optimizer.lr"], rel_tol=1e-9)
        if trial.state == TrialState.PRUNED:
            assert run.data.tags["outcome"] == "pruned"
            assert int(run.data.tags["epochs_run"]) < 20, "a pruned member stops early"
            assert max(trial.intermediate_values) == int(run.data.tags["epochs_run"])
        else:
            assert sorted(trial.intermediate_values) == [5, 10, 15, 20]


def test_a_job_that_cannot_be_stacked_trains_alone(tmp_path: Path) -> None:
    """An optimizer the stacked update does not know (RMSprop) trains as the basic
    launcher trains it, one job after the other."""
    proc = run_learnai(
        tmp_path,
        "-m",
        "hydra/launcher=vectorized",
        "optimizer=sgd",
        "optimizer._target_=torch.optim.RMSprop",
        "optimizer.lr=0.001,0.002",
        *TINY_NO_ANIMATION,
    )
    assert "trains alone: optimizer 'torch.optim.RMSprop'" in proc.stderr + proc.stdout
    assert "stacked model" not in proc.stderr + proc.stdout
    runs = _runs(tmp_path)
    assert len(runs) == 2
    assert {r.info.status for r in runs.values()} == {"FINISHED"}


def test_a_bad_max_group_is_refused_before_anything_exists(tmp_path: Path) -> None:
    proc = run_learnai(
        tmp_path,
        "-m",
        "hydra/launcher=vectorized",
        "hydra.launcher.max_group=0",
        "optimizer.lr=0.01,0.1",
        *TINY_NO_ANIMATION,
        expect=2,
    )
    assert error_line(proc) == (
        "learnai: invalid value for hydra.launcher.max_group: 0 (must be >= 1)"
    )
    assert not (tmp_path / "mlruns").exists()
