"""Sweeps through hydra-submitit-launcher: ``submitit_local`` stands in for
``submitit_slurm`` (same launcher code; jobs are separate processes that unpickle their
job from ``hydra.sweep.dir/.submitit``, as on a cluster node).

A job reaches its parent run and its trial from its own config, so the launch directory
plays no part: the sweep directory is elsewhere, the stores are absolute, and a whole
command run with the launch directory hidden still lands its runs under their parent.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers.cli import TIMEOUT_S, TINY_NO_ANIMATION, check_exit, learnai_env, run_learnai
from helpers.processes import as_another_machine
from helpers.stores import PARENT_TAG, all_runs, describe_trials

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]
SUBMITIT = ("hydra/launcher=submitit_local", "hydra.launcher.cpus_per_task=1")


def _stores(tmp_path: Path, pg_database) -> tuple[str, str]:
    tracking = pg_database()
    return tracking, f"tracking.artifact_location={(tmp_path / 'artifacts').as_uri()}"


def test_a_grid_sweep_runs_its_jobs_through_submitit(tmp_path: Path, pg_database) -> None:
    from mlflow import MlflowClient

    tracking, artifacts = _stores(tmp_path, pg_database)
    launch, sweep = tmp_path / "launch", tmp_path / "sweep"
    launch.mkdir()
    run_learnai(
        launch,
        "-m",
        "optimizer.lr=0.01,1",
        *SUBMITIT,
        f"hydra.sweep.dir={sweep}",
        f"tracking.uri={tracking}",
        artifacts,
        "tracking.experiment=grid",
        *(
            o
            for o in TINY_NO_ANIMATION
            if not o.startswith(("trainer.num_threads", "trainer.device"))
        ),
    )
    assert list(launch.iterdir()) == [], "the sweep wrote into the launch directory"
    runs = all_runs(MlflowClient(tracking_uri=tracking), "grid")
    parents = [r for r in runs if PARENT_TAG not in r.data.tags]
    children = [r for r in runs if PARENT_TAG in r.data.tags]
    assert len(parents) == 1 and len(children) == 2
    parent_id = parents[0].info.run_id
    assert {c.data.tags[PARENT_TAG] for c in children} == {parent_id}
    assert {r.info.status for r in runs} == {"FINISHED"}  # nothing left RUNNING
    # No n_jobs on this launcher: each job's threads are its cpus_per_task (1), not the
    # machine's cores, and trainer.device=auto on a CPU machine stays on the CPU.
    assert {c.data.tags["torch_threads"] for c in children} == {"1"}
    assert {c.data.tags["device_name"] for c in children} == {"cpu"}
    # What each job read its parent from: its own config (hydra.job.env_set), saved
    # beside it in the sweep directory, not a file of the launch directory.
    for job in ("0", "1"):
        hydra_cfg = yaml.safe_load((sweep / job / ".hydra" / "hydra.yaml").read_text())
        assert hydra_cfg["hydra"]["job"]["env_set"]["LEARNAI_PARENT_RUN_ID"] == parent_id
    # submitit ran them as their own processes (its job folders), not in the launcher.
    assert any((sweep / ".submitit").iterdir())


@pytest.mark.root
def test_jobs_that_cannot_see_the_launch_directory_join_their_parent(
    tmp_path: Path, pg_database
) -> None:
    """The whole command (launcher and jobs) with the launch directory hidden: a worker on
    another machine adding jobs to a parent it was given (tracking.parent_run_id)."""
    from mlflow import MlflowClient

    tracking, artifacts = _stores(tmp_path, pg_database)
    launch = tmp_path / "launch"
    (launch / "mlruns").mkdir(parents=True)  # a decoy store a job must not need
    client = MlflowClient(tracking_uri=tracking)
    exp_id = client.create_experiment("pool", artifact_location=(tmp_path / "artifacts").as_uri())
    parent = client.create_run(exp_id, run_name="worker pool").info.run_id
    try:
        proc = subprocess.run(
            [
                *as_another_machine([launch]),
                sys.executable,
                "-m",
                "learnai",
                "-m",
                "optimizer.lr=0.1,0.5",
                *SUBMITIT,
                f"hydra.sweep.dir={tmp_path / 'sweep'}",
                f"tracking.uri={tracking}",
                artifacts,
                "tracking.experiment=pool",
                f"tracking.parent_run_id={parent}",
                *TINY_NO_ANIMATION,
            ],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            env=learnai_env(),
        )
        check_exit(proc, 0, "learnai -m ... (the launch directory hidden)")
        runs = all_runs(client, "pool")
        children = [r for r in runs if r.data.tags.get(PARENT_TAG) == parent]
        assert len(children) == 2, [r.info.run_name for r in runs]
        assert {c.info.status for c in children} == {"FINISHED"}
        assert client.get_run(parent).info.status == "RUNNING"  # a joined parent stays open
        assert list((launch / "mlruns").iterdir()) == []
    finally:
        client.set_terminated(parent, "FINISHED")


def test_an_optuna_sweep_runs_its_trials_through_submitit(tmp_path: Path, pg_database) -> None:
    import optuna
    from mlflow import MlflowClient

    tracking, artifacts = _stores(tmp_path, pg_database)
    storage = pg_database().replace("postgresql://", "postgresql+psycopg://", 1)
    launch = tmp_path / "launch"
    launch.mkdir()
    run_learnai(
        launch,
        "-m",
        "experiment=lr_depth_search",
        *SUBMITIT,
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        f"hydra.sweeper.storage={storage}",
        "hydra.sweeper.study_name=remote",
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.n_jobs=2",
        f"tracking.uri={tracking}",
        artifacts,
        *TINY_NO_ANIMATION,
    )
    assert list(launch.iterdir()) == []
    study = optuna.load_study(study_name="remote", storage=storage)
    # Finished, each: COMPLETE, or PRUNED when a drawn lr diverges (non_finite: prune).
    states = [t.state.name for t in study.trials]
    assert len(states) == 2 and set(states) <= {"COMPLETE", "PRUNED"}, describe_trials(study)
    client = MlflowClient(tracking_uri=tracking)
    runs = all_runs(client, "lr_depth_search")
    parents = [r for r in runs if PARENT_TAG not in r.data.tags]
    assert len(parents) == 1
    assert parents[0].data.tags.get("optuna.study") == "remote"
    for t in study.trials:
        run = client.get_run(t.user_attrs["mlflow_run_id"])
        assert run.data.tags["optuna.trial"] == str(t.number)
        assert run.data.tags[PARENT_TAG] == parents[0].info.run_id
    assert {r.info.status for r in runs} == {"FINISHED"}
