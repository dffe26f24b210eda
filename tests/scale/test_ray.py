"""Sweeps through hydra-ray-launcher (``hydra/launcher=ray``) on a real local Ray cluster.

The sweeps run with ``.venv-ray``'s Python (``make ray-venv``; see ray_helpers for why a
venv of its own). Two ways the launcher gets its Ray:

- it starts its own (``init.address=local``): the jobs run, and when the command ends no
  Ray process is left;
- it joins a cluster (``init.address=HOST:PORT``) whose head takes no jobs
  (``--num-cpus=0``) and whose only worker runs as another machine: the launch and sweep
  directories are hidden from it. Jobs log to a tracking server and reach their trial in
  a PostgreSQL study, so their runs still land under their parent and their trial.

Token authentication is on throughout (Ray 2.60's default for a cluster that ray.init
starts); the token travels in RAY_AUTH_TOKEN, so no test writes ~/.ray/auth_token.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from ray_helpers import (
    RAY_PYTHON,
    RayCluster,
    processes_mentioning,
    ray_env,
    require_ray_venv,
    wait_gone,
)
from scale_helpers import TINY, as_another_machine
from sweep_helpers import PARENT_TAG, TIMEOUT_S, describe_trials

pytestmark = pytest.mark.slow
APPS = Path(__file__).resolve().parent.parent / "sweeper" / "apps"
# Ray's tiny jobs: TINY without its thread count, which the tests check comes from Ray.
RAY_TINY = tuple(o for o in TINY if not o.startswith("trainer.num_threads"))
# Joining a cluster: the launcher's default init sets object_store_memory, which ray.init
# refuses when it connects to a running cluster.
JOIN = ("+hydra.launcher.ray.init.object_store_memory=null",)


def run(
    cwd: Path, env: dict[str, str], *argv: str, expect: int = 0
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(RAY_PYTHON), *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert proc.returncode == expect, (
        f"{' '.join(argv)} exited {proc.returncode}\n"
        f"--- stdout\n{proc.stdout[-5000:]}\n--- stderr\n{proc.stderr[-5000:]}"
    )
    return proc


def learnai_sweep(
    cwd: Path, env: dict[str, str], *args: str, expect: int = 0
) -> subprocess.CompletedProcess[str]:
    return run(cwd, env, "-m", "learnai", "-m", "hydra/launcher=ray", *args, expect=expect)


def store_runs(tracking: str, experiment: str) -> tuple[object, list]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"no experiment {experiment!r}"
    return client, client.search_runs([exp.experiment_id])


def sweep_runs(tracking: str, experiment: str) -> tuple[object, list, list]:
    """The experiment's parents and children; every child under the one parent."""
    client, runs = store_runs(tracking, experiment)
    parents = [r for r in runs if PARENT_TAG not in r.data.tags]
    children = [r for r in runs if PARENT_TAG in r.data.tags]
    assert len(parents) == 1, [r.info.run_name for r in runs]
    assert {c.data.tags[PARENT_TAG] for c in children} == {parents[0].info.run_id}
    assert {r.info.status for r in runs} == {"FINISHED"}  # nothing left RUNNING
    return client, parents, children


def test_a_grid_sweep_starts_its_own_ray_and_leaves_no_process(tmp_path: Path) -> None:
    require_ray_venv()
    temp_dir = Path(tempfile.mkdtemp(prefix="ray-"))  # short: Ray's socket paths
    env = ray_env(secrets.token_hex(32))
    env.pop("RAY_AUTH_MODE")  # ray.init's default for a new cluster: token auth
    launch = tmp_path / "launch"
    launch.mkdir()
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    try:
        learnai_sweep(
            launch,
            env,
            "optimizer.lr=0.01,1",
            "hydra.launcher.ray.init.address=local",  # never a cluster found on the machine
            f"+hydra.launcher.ray.init._temp_dir={temp_dir}",
            "+hydra.launcher.ray.init.num_cpus=2",
            "+hydra.launcher.ray.init.include_dashboard=false",
            "+hydra.launcher.ray.remote.num_cpus=2",
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
            f"tracking.uri={tracking}",
            "tracking.experiment=own",
            *RAY_TINY,
        )
        # The command has returned: Ray's atexit shutdown ended what ray.init started.
        assert processes_mentioning(str(temp_dir)) == []
        _, _, children = sweep_runs(tracking, "own")
        assert len(children) == 2
        # Ray has no n_jobs: each job's threads are its task's CPUs (remote.num_cpus).
        assert {c.data.tags["torch_threads"] for c in children} == {"2"}
        assert list(launch.iterdir()) == []
    finally:
        left = wait_gone(str(temp_dir), timeout_s=5)
        shutil.rmtree(temp_dir, ignore_errors=True)
        assert left == [], f"Ray processes outlived the command: {left}"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RayCluster, Path]]:
    """A token-auth cluster whose one worker cannot see ``hidden`` (launch + sweep dirs)."""
    require_ray_venv()
    hidden = tmp_path_factory.mktemp("hidden")
    prefix = as_another_machine([hidden])
    ray = RayCluster(tmp_path_factory.mktemp("ray-logs"))
    try:
        ray.start_head(num_cpus=0).add_worker(num_cpus=2, prefix=prefix)
        yield ray, hidden
    finally:
        left = ray.stop()
        assert left == [], f"Ray processes left after stopping the cluster: {left}"


def test_grid_jobs_on_a_node_without_the_launch_directory_join_their_parent(
    cluster: tuple[RayCluster, Path], server
) -> None:
    ray, hidden = cluster
    launch, sweep = hidden / "grid-launch", hidden / "grid-sweep"
    launch.mkdir()
    learnai_sweep(
        launch,
        ray.env,
        "optimizer.lr=0.01,1",
        f"hydra.launcher.ray.init.address={ray.address}",
        *JOIN,
        f"hydra.sweep.dir={sweep}",
        f"tracking.uri={server.uri}",
        "tracking.experiment=grid",
        *RAY_TINY,
    )
    _, _, children = sweep_runs(server.uri, "grid")
    assert len(children) == 2
    assert {c.data.tags["torch_threads"] for c in children} == {"1"}  # Ray's 1 CPU a task
    # The jobs ran on the worker: their output folders are on its disk, not this one.
    assert [p.name for p in sweep.iterdir() if p.is_dir()] == []
    assert list(launch.iterdir()) == []


def test_jobs_that_cannot_reach_the_launchers_store_fail_loudly(
    cluster: tuple[RayCluster, Path],
) -> None:
    """A store under the launch directory: the worker sees an empty folder there, so each
    job finds no parent in it and fails, naming it; no job becomes an orphan."""
    ray, hidden = cluster
    launch = hidden / "local-store"
    launch.mkdir()
    proc = learnai_sweep(
        launch,
        ray.env,
        "optimizer.lr=0.01,1",
        f"hydra.launcher.ray.init.address={ray.address}",
        *JOIN,
        f"hydra.sweep.dir={hidden / 'local-store-sweep'}",
        "tracking.experiment=local",
        *RAY_TINY,
        expect=1,
    )
    assert "is not in this store" in proc.stdout + proc.stderr, proc.stderr[-5000:]
    _, runs = store_runs(f"sqlite:///{launch / 'mlruns' / 'mlflow.db'}", "local")
    assert [r.info.status for r in runs] == ["FAILED"]  # the parent alone, ended


def test_optuna_trials_on_a_node_without_the_launch_directory_link_to_their_runs(
    cluster: tuple[RayCluster, Path], server, pg_database
) -> None:
    import optuna

    ray, hidden = cluster
    launch, sweep = hidden / "optuna-launch", hidden / "optuna-sweep"
    launch.mkdir()
    storage = pg_database().replace("postgresql://", "postgresql+psycopg://", 1)
    learnai_sweep(
        launch,
        ray.env,
        "experiment=lr_depth_search",
        f"hydra.launcher.ray.init.address={ray.address}",
        *JOIN,
        f"hydra.sweep.dir={sweep}",
        f"hydra.sweeper.storage={storage}",
        "hydra.sweeper.study_name=on-ray",
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.n_jobs=2",
        f"tracking.uri={server.uri}",
        *RAY_TINY,
    )
    study = optuna.load_study(study_name="on-ray", storage=storage)
    states = [t.state.name for t in study.trials]
    assert len(states) == 2 and set(states) <= {"COMPLETE", "PRUNED"}, describe_trials(study)
    client, parents, children = sweep_runs(server.uri, "lr_depth_search")
    assert parents[0].data.tags.get("optuna.study") == "on-ray"
    assert len(children) == 2
    for t in study.trials:
        run = client.get_run(t.user_attrs["mlflow_run_id"])
        assert run.data.tags["optuna.trial"] == str(t.number)
        assert run.data.tags["optuna.study"] == "on-ray"
        assert run.data.tags[PARENT_TAG] == parents[0].info.run_id
    assert [p.name for p in sweep.iterdir() if p.is_dir()] == []  # job folders: the worker's
    assert list(launch.iterdir()) == []


def test_any_hydra_app_sweeps_with_optuna_on_ray(
    cluster: tuple[RayCluster, Path], pg_database
) -> None:
    """The sphere app knows nothing of learnai: learnai's sweeper, Ray's launcher."""
    import optuna

    ray, hidden = cluster
    launch = hidden / "sphere-launch"
    launch.mkdir()
    storage = pg_database().replace("postgresql://", "postgresql+psycopg://", 1)
    run(
        launch,
        ray.env,
        str(APPS / "sphere.py"),
        "-m",
        "hydra/sweeper=optuna",
        "hydra/launcher=ray",
        f"hydra.launcher.ray.init.address={ray.address}",
        *JOIN,
        f"hydra.sweep.dir={hidden / 'sphere-sweep'}",
        f"hydra.sweeper.storage={storage}",
        "hydra.sweeper.study_name=sphere",
        "hydra.sweeper.n_trials=4",
        "hydra.sweeper.n_jobs=2",
        "hydra.sweeper.sampler.seed=1",
    )
    study = optuna.load_study(study_name="sphere", storage=storage)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 4, describe_trials(study)
    for t in study.trials:
        assert t.value == t.params["x"] ** 2 + t.params["y"] ** 2
