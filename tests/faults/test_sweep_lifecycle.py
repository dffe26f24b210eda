"""A sweep's parent run: created before any job, reached by every job through its own
config, never shared between sweeps, never left RUNNING, and never silently missing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.cli import TINY, finish, learnai_env, run_learnai, start_learnai
from helpers.polling import wait_for_runs
from helpers.processes import group_is_gone
from helpers.stores import all_runs, child_runs, mlflow_client, parent_runs, tracking_uri

pytestmark = pytest.mark.e2e

# Trains until signalled; metrics reach the store every 0.5 s (what the tests wait for).
LONG = (
    "trainer.epochs=1000000",
    "trainer.progress=false",
    "trainer.animation.enabled=false",
    "tracking.flush_every_s=0.5",
)


def test_two_sweeps_sharing_a_sweep_dir_keep_their_own_children(tmp_path: Path) -> None:
    args = ("-m", "optimizer.lr=0.01,0.02", "hydra.sweep.dir=shared", "tracking.experiment=twin")
    procs = [start_learnai(tmp_path, *args, *TINY) for _ in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
    client = mlflow_client(tmp_path)
    parents = parent_runs(client, "twin")
    assert len(parents) == 2
    for parent in parents:
        assert parent.info.status == "FINISHED"
        assert len(child_runs(client, "twin", parent.info.run_id)) == 2


def test_a_reused_sweep_dir_gets_a_new_parent(tmp_path: Path) -> None:
    args = ("-m", "optimizer.lr=0.01,1", "hydra.sweep.dir=again", "tracking.experiment=again")
    run_learnai(tmp_path, *args, *TINY)
    run_learnai(tmp_path, *args, *TINY)
    client = mlflow_client(tmp_path)
    first, second = parent_runs(client, "again")
    assert len(child_runs(client, "again", first.info.run_id)) == 2
    assert len(child_runs(client, "again", second.info.run_id)) == 2


def test_the_parent_reaches_jobs_that_cannot_see_the_launch_dir(tmp_path: Path) -> None:
    """Jobs write their outputs elsewhere and get no file from the sweep: the parent id
    is in each job's config (the override Hydra passes to every launcher)."""
    run_learnai(
        tmp_path,
        "-m",
        "optimizer.lr=0.01,1",
        f"hydra.sweep.dir={tmp_path / 'elsewhere'}",
        "tracking.experiment=far",
        *TINY,
    )
    client = mlflow_client(tmp_path)
    (parent,) = parent_runs(client, "far")
    children = child_runs(client, "far", parent.info.run_id)
    assert len(children) == 2
    assert "parent_run_id" not in " ".join(c.data.tags.get("overrides", "") for c in children)
    assert not any(p.name.startswith(".learnai") for p in (tmp_path / "elsewhere").iterdir())


def test_a_multirun_job_without_a_parent_fails_loudly(tmp_path: Path) -> None:
    """Hydra's app called without learnai's entry point: no orphan, a clear error."""
    code = (
        "import sys; from learnai.cli import _entry; "
        "sys.argv = ['learnai', '-m', 'optimizer.lr=0.01', 'tracking.experiment=orphan', "
        + ", ".join(repr(a) for a in TINY)
        + "]; _entry()"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=learnai_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    assert "no parent run" in proc.stderr
    if (tmp_path / "mlruns" / "mlflow.db").exists():
        client = mlflow_client(tmp_path)
        assert client.get_experiment_by_name("orphan") is None


def test_a_job_cannot_join_a_finished_parent(tmp_path: Path) -> None:
    run_learnai(tmp_path, "-m", "optimizer.lr=0.01", "tracking.experiment=late", *TINY)
    client = mlflow_client(tmp_path)
    (parent,) = parent_runs(client, "late")
    proc = run_learnai(
        tmp_path,
        "-m",
        "optimizer.lr=0.02",
        f"tracking.parent_run_id={parent.info.run_id}",
        "tracking.experiment=late",
        *TINY,
        expect=None,
    )
    assert proc.returncode != 0
    assert "FINISHED, not RUNNING" in proc.stderr
    assert len(child_runs(client, "late", parent.info.run_id)) == 1


def test_no_parent_means_no_job(tmp_path: Path) -> None:
    """The parent cannot be created: one line, exit != 0, and no job ran."""
    proc = run_learnai(
        tmp_path,
        "-m",
        "optimizer.lr=0.01,1",
        "tracking.uri=sqlite:////dev/null/store/mlflow.db",
        *TINY,
        expect=None,
    )
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.startswith("learnai:")]
    assert len(lines) == 1 and "/dev/null/store/mlflow.db" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert "Launching" not in proc.stdout + proc.stderr
    assert not (tmp_path / "multirun").exists()


def test_long_run_names_stay_within_mlflow_limits(tmp_path: Path) -> None:
    name = "n" * 400
    run_learnai(
        tmp_path,
        "-m",
        "optimizer.lr=0.01",
        f"tracking.run_name={name}",
        "tracking.experiment=long",
        *TINY,
    )
    client = mlflow_client(tmp_path)
    runs = all_runs(client, "long")
    assert len(runs) == 2
    assert all(len(r.info.run_name) <= 250 for r in runs)


def test_sigterm_to_a_joblib_sweeps_process_group_leaves_nothing_running(tmp_path: Path) -> None:
    proc = start_learnai(
        tmp_path,
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "optimizer.lr=0.01,0.02",
        "tracking.experiment=group",
        "trainer.num_threads=1",
        *LONG,
    )
    try:
        # Both jobs training in their joblib workers (their runs have logged metrics).
        wait_for_runs(tracking_uri(tmp_path), "group", 2, running=True, training=True, job=proc)
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    os.killpg(proc.pid, signal.SIGTERM)  # what SLURM's scancel and `kill -- -PGID` do
    output = finish(proc, timeout=120)
    assert proc.returncode != 0
    assert group_is_gone(proc.pid), "a worker outlived the sweep"
    client = mlflow_client(tmp_path)
    runs = all_runs(client, "group")
    assert len(runs) == 3, output[-3000:]
    assert {r.info.status for r in runs} == {"KILLED"}, output[-3000:]


def test_after_sigkill_the_next_command_reaps_the_dead_run(tmp_path: Path) -> None:
    proc = start_learnai(tmp_path, "tracking.experiment=reap", *LONG)
    try:
        wait_for_runs(
            tracking_uri(tmp_path), "reap", children=False, running=True, training=True, job=proc
        )
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # no handler runs: the run stays RUNNING
        proc.communicate()
    client = mlflow_client(tmp_path)
    (dead,) = all_runs(client, "reap")
    assert dead.info.status == "RUNNING"
    proc = run_learnai(tmp_path, "tracking.experiment=reap", *TINY)
    assert "left RUNNING by a process that is gone" in proc.stderr + proc.stdout
    assert client.get_run(dead.info.run_id).info.status == "KILLED"


def test_a_failing_grid_job_ends_the_parent_failed(tmp_path: Path) -> None:
    proc = run_learnai(
        tmp_path,
        "-m",
        "trainer.device=cpu,cuda",  # no CUDA here: the second job raises
        "tracking.experiment=broken",
        *[a for a in TINY if not a.startswith("trainer.device")],
        expect=None,
    )
    assert proc.returncode != 0
    client = mlflow_client(tmp_path)
    (parent,) = parent_runs(client, "broken")
    assert parent.info.status == "FAILED"
    assert parent.data.tags["sweep.state"] == "failed"
    children = child_runs(client, "broken", parent.info.run_id)
    assert sorted(c.info.status for c in children) == ["FINISHED"]  # the cuda job made no run


def test_sigterm_while_hydra_composes_ends_the_parent_killed(tmp_path: Path) -> None:
    """SIGTERM to the group as Hydra starts the multirun (the parent exists, no job has
    started): the parent ends KILLED, no job ran, no process is left."""
    env = learnai_env()
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent), env.get("PYTHONPATH", "")])
    proc = start_learnai(
        tmp_path,
        "-m",
        "optimizer.lr=0.01,1",
        "tracking.experiment=early",
        "+hydra.callbacks.term._target_=term_callback.TermOnMultirunStart",
        *TINY,
        env=env,
    )
    output = finish(proc)
    assert proc.returncode == 128 + signal.SIGTERM, output[-3000:]
    assert group_is_gone(proc.pid), "a worker outlived the sweep"
    client = mlflow_client(tmp_path)
    (parent,) = parent_runs(client, "early")
    assert parent.info.status == "KILLED", output[-3000:]
    assert parent.data.tags["sweep.state"] == "aborted"
    assert [r.info.run_id for r in all_runs(client, "early")] == [parent.info.run_id], "a job ran"
