"""Sweeps through hydra-ray-launcher (``hydra/launcher=ray``) on a real local Ray cluster.

The sweeps run with the Ray venv's Python (``make ray-venv``; see helpers.ray for why a
venv of its own). Two ways the launcher gets its Ray:

- it starts its own (``init.address=local``): the jobs run, and when the command ends no
  Ray process is left;
- it joins a cluster (``init.address=HOST:PORT``) whose head takes no jobs
  (``--num-cpus=0``) and whose only worker runs as another machine: the launch and sweep
  directories are hidden from it. Jobs log to a tracking server and reach their trial in
  a PostgreSQL study, so their runs still land under their parent and their trial.

Token authentication is on throughout (Ray 2.60's default for a cluster that ray.init
starts); the token travels in RAY_AUTH_TOKEN, so no test writes ~/.ray/auth_token.

One cluster and one tracking server serve every test of this module (each takes 10-25 s
to start on two cores). The tests share the
``xdist_group`` "ray": under ``pytest -n 2 --dist loadgroup`` they run on one worker, so
one cluster is started, and Ray never competes with Ray for the two cores.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.cli import TIMEOUT_S, TINY_NO_ANIMATION, check_exit
from helpers.polling import wait_until
from helpers.processes import as_another_machine
from helpers.ray import RAY, RAY_PYTHON, RayCluster, processes_mentioning, ray_env, wait_gone
from helpers.servers import Server
from helpers.stores import PARENT_TAG, all_runs, describe_trials, pg_databases

pytestmark = [pytest.mark.e2e, pytest.mark.ray, pytest.mark.xdist_group("ray")]
SPHERE = Path(__file__).resolve().parents[1] / "sweeper" / "apps" / "sphere.py"
# Ray's tiny jobs: without a thread count, which the tests check comes from Ray.
RAY_TINY = tuple(o for o in TINY_NO_ANIMATION if not o.startswith("trainer.num_threads"))
# Joining a cluster: the launcher's default init sets object_store_memory, which ray.init
# refuses when it connects to a running cluster.
JOIN = ("+hydra.launcher.ray.init.object_store_memory=null",)


def ray_python(
    cwd: Path, env: dict[str, str], *argv: str, expect: int | None = 0
) -> subprocess.CompletedProcess[str]:
    """``python <argv>`` with the Ray venv's Python; fail unless it exits ``expect``."""
    proc = subprocess.run(
        [str(RAY_PYTHON), *argv], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=TIMEOUT_S,
    )  # fmt: skip
    return check_exit(proc, expect, " ".join(argv))


def learnai_sweep(
    cwd: Path, env: dict[str, str], *args: str, expect: int = 0
) -> subprocess.CompletedProcess[str]:
    return ray_python(cwd, env, "-m", "learnai", "-m", "hydra/launcher=ray", *args, expect=expect)


def sweep_runs(tracking: str, experiment: str) -> tuple[object, list, list]:
    """The experiment's parents and children; every child under the one parent."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking)
    runs = all_runs(client, experiment)
    parents = [r for r in runs if PARENT_TAG not in r.data.tags]
    children = [r for r in runs if PARENT_TAG in r.data.tags]
    assert len(parents) == 1, [r.info.run_name for r in runs]
    assert {c.data.tags[PARENT_TAG] for c in children} == {parents[0].info.run_id}
    assert {r.info.status for r in runs} == {"FINISHED"}  # nothing left RUNNING
    return client, parents, children


def test_a_sweep_that_starts_its_own_ray_leaves_no_process(tmp_path: Path) -> None:
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
            "optimizer.lr=0.01",  # one job: a task that takes both of Ray's CPUs
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
        _, _, (child,) = sweep_runs(tracking, "own")
        # Ray has no n_jobs: a job's threads are its task's CPUs (remote.num_cpus).
        assert child.data.tags["torch_threads"] == "2"
        assert list(launch.iterdir()) == []
    finally:
        left = wait_gone(str(temp_dir), timeout_s=5)
        shutil.rmtree(temp_dir, ignore_errors=True)
        assert left == [], f"Ray processes outlived the command: {left}"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RayCluster, Path]]:
    """A token-auth cluster whose one worker cannot see ``hidden`` (launch + sweep dirs)."""
    hidden = tmp_path_factory.mktemp("hidden")
    prefix = as_another_machine([hidden])
    ray = RayCluster(tmp_path_factory.mktemp("ray-logs"))
    try:
        ray.start_head(num_cpus=0).add_worker(num_cpus=2, prefix=prefix)
        yield ray, hidden
    finally:
        left = ray.stop()
        assert left == [], f"Ray processes left after stopping the cluster: {left}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A team's tracking server on PostgreSQL: what the cluster's jobs log to."""
    with pg_databases() as new:
        root = tmp_path_factory.mktemp("server")
        srv = Server.learnai(root, new())
        try:
            yield srv.start()
        finally:
            srv.kill()


@pytest.mark.root
def test_the_cluster_refuses_a_wrong_token(
    cluster: tuple[RayCluster, Path], tmp_path: Path
) -> None:
    """Token auth is really on, on the cluster's side: ``ray status`` with another token
    is turned away by the head; with the cluster's, it shows both nodes."""
    ray, _ = cluster

    def status(token: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(RAY), "status", f"--address={ray.address}"],
            cwd=tmp_path,
            env={**ray.env, "RAY_AUTH_TOKEN": token},
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )

    refused = status(secrets.token_hex(32))
    assert refused.returncode != 0, refused.stdout
    assert "InvalidAuthToken" in refused.stderr, refused.stderr[-3000:]

    def both_nodes_active() -> bool:  # the autoscaler's report lags a node's start
        ok = check_exit(status(ray.token), 0, "ray status")
        active = ok.stdout.split("Active:", 1)[1].split("Pending:", 1)[0]
        return active.count("node_") == 2  # the head and the worker

    wait_until(both_nodes_active, "ray status with the cluster's token shows both nodes", 60)


@pytest.mark.root
@pytest.mark.postgres
def test_trials_on_a_node_without_the_launch_directory_join_their_parent_and_study(
    cluster: tuple[RayCluster, Path], server: Server, pg_database
) -> None:
    """Each job reads its parent run (hydra.job.env_set) and its trial from its own
    config, on a node that sees neither the launch nor the sweep directory."""
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
    assert {c.data.tags["torch_threads"] for c in children} == {"1"}  # Ray's 1 CPU a task
    # The jobs ran on the worker: their output folders are on its disk, not this one.
    assert [p.name for p in sweep.iterdir() if p.is_dir()] == []
    assert list(launch.iterdir()) == []


@pytest.mark.root
def test_jobs_that_cannot_reach_the_launchers_store_fail_loudly(
    cluster: tuple[RayCluster, Path],
) -> None:
    """A store under the launch directory: the worker sees an empty folder there, so the
    job finds no parent in it and fails, naming it; no job becomes an orphan."""
    ray, hidden = cluster
    launch = hidden / "local-store"
    launch.mkdir()
    proc = learnai_sweep(
        launch,
        ray.env,
        "optimizer.lr=0.01",
        f"hydra.launcher.ray.init.address={ray.address}",
        *JOIN,
        f"hydra.sweep.dir={hidden / 'local-store-sweep'}",
        "tracking.experiment=local",
        *RAY_TINY,
        expect=1,
    )
    assert "is not in this store" in proc.stdout + proc.stderr, proc.stderr[-5000:]
    from mlflow import MlflowClient

    local = MlflowClient(tracking_uri=f"sqlite:///{launch / 'mlruns' / 'mlflow.db'}")
    assert [r.info.status for r in all_runs(local, "local")] == [
        "FAILED"
    ]  # the parent alone, ended


@pytest.mark.root
@pytest.mark.postgres
def test_any_hydra_app_sweeps_with_optuna_on_ray(
    cluster: tuple[RayCluster, Path], pg_database
) -> None:
    """The sphere app knows nothing of learnai: learnai's sweeper, Ray's launcher."""
    import optuna

    ray, hidden = cluster
    launch = hidden / "sphere-launch"
    launch.mkdir()
    storage = pg_database().replace("postgresql://", "postgresql+psycopg://", 1)
    ray_python(
        launch,
        ray.env,
        str(SPHERE),
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
