"""Grid multiruns and their MLflow record: one parent run per sweep, a child per job,
each child FINISHED before the next job starts, and what a sweep prints.

Each sweep runs ``python -m learnai -m ...`` in a subprocess launched from a temporary
directory, and the tests read back that directory's ``mlruns/mlflow.db``. The grid and
the joblib sweep are recorded once per module and shared by the tests that read them.
"""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

import pytest
from helpers.cli import TINY, TINY_NO_ANIMATION, error_line, finish, run_learnai, start_learnai
from helpers.polling import wait_for_runs
from helpers.stores import (
    PARENT_TAG,
    all_runs,
    artifact_names,
    child_runs,
    download,
    mlflow_client,
    parent_runs,
    read_csv,
    tracking_uri,
)
from PIL import Image

pytestmark = pytest.mark.e2e

SWEEP_ARTIFACTS = {"children.csv", "children.json", "comparison.png", "side_by_side.gif"}


class Sweep:
    """What one sweep launched from ``cwd`` recorded in ``experiment``."""

    def __init__(self, cwd: Path, experiment: str, output: str) -> None:
        self.cwd = cwd
        self.experiment = experiment
        self.output = output
        self.client = mlflow_client(cwd)
        parents = parent_runs(self.client, experiment)
        assert len(parents) == 1, f"expected one parent run, found {len(parents)}"
        self.parent = parents[0]
        self.children = sorted(
            child_runs(self.client, experiment, self.parent.info.run_id),
            key=lambda r: r.info.start_time,
        )

    def child_by_lr(self, lr: float):
        (run,) = [c for c in self.children if float(c.data.params["optimizer.lr"]) == lr]
        return run


def launch(cwd: Path, experiment: str, *overrides: str) -> Sweep:
    proc = run_learnai(cwd, "-m", *overrides, f"tracking.experiment={experiment}", *TINY)
    return Sweep(cwd, experiment, proc.stdout + proc.stderr)


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> Sweep:
    """The tutorial's lesson as a sweep: lr 0.01 converges, lr 1 diverges. The `+hydra.`
    override is one learnai's checks once applied twice ("An item is already at ...")."""
    return launch(
        tmp_path_factory.mktemp("grid"),
        "grid",
        "optimizer.lr=0.01,1",
        "+hydra.job.env_set.LEARNAI_TEST=1",
    )


@pytest.fixture(scope="module")
def parallel(tmp_path_factory: pytest.TempPathFactory) -> Sweep:
    return launch(
        tmp_path_factory.mktemp("parallel"),
        "parallel",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "optimizer.lr=0.01,1",
    )


def test_grid_has_one_parent_and_a_child_per_job(grid: Sweep) -> None:
    parent_id = grid.parent.info.run_id
    assert grid.parent.data.tags["learnai.sweep"] == "true"
    assert PARENT_TAG not in grid.parent.data.tags
    assert len(grid.children) == 2
    for child in grid.children:
        assert child.data.tags[PARENT_TAG] == parent_id
        assert child.info.status == "FINISHED"
        assert "learnai.sweep" not in child.data.tags
    epoch = grid.child_by_lr(1.0).data.tags["diverged_epoch"]
    assert [c.info.run_name for c in grid.children] == [
        "lr=0.01 \u00b7 converged",
        f"lr=1 \u00b7 diverged at epoch {epoch}",
    ]
    assert [c.data.tags["learnai.name"] for c in grid.children] == ["lr=0.01", "lr=1"]
    # Nothing else in the experiment: exactly the parent and its children.
    assert len(all_runs(grid.client, "grid")) == 3


def test_grid_runs_end_before_the_next_job_starts(grid: Sweep) -> None:
    first, second = grid.children
    assert first.info.end_time <= second.info.start_time
    assert second.info.end_time <= grid.parent.info.end_time
    assert grid.parent.info.start_time <= first.info.start_time


def test_grid_parent_is_finished_with_a_summary(grid: Sweep) -> None:
    tags = grid.parent.data.tags
    assert grid.parent.info.status == "FINISHED"
    assert tags["sweep.runs"] == "2"
    outcomes = [c.data.tags["outcome"] for c in grid.children]
    for outcome in set(outcomes):
        assert tags[f"sweep.{outcome}"] == str(outcomes.count(outcome))
    assert grid.child_by_lr(1.0).data.tags["outcome"] == "diverged"
    assert tags["sweep.best_run_id"] == grid.child_by_lr(0.01).info.run_id
    assert "optimizer.lr=0.01,1" in tags["sweep.overrides"]
    assert len(re.findall(r"sweep: 2 runs: 1 converged, 1 diverged", grid.output)) == 1


def test_grid_parent_describes_the_sweep_and_logs_the_best_run(grid: Sweep) -> None:
    """As MLflow's hyperparameter-tuning examples do: the best child's params and loss on
    the parent, under names no child has; a description with counts and links."""
    parent, best = grid.parent, grid.child_by_lr(0.01)
    exp = parent.info.experiment_id
    assert parent.data.params == {"best.optimizer.lr": "0.01"}
    assert parent.data.metrics["best_val_loss"] == best.data.metrics["final_val_loss"]
    assert not {k for k in parent.data.metrics if k.startswith("final_")}
    note = parent.data.tags["mlflow.note.content"]
    assert note.startswith("**Sweep of 2 runs: 1 converged, 1 diverged.**")
    assert f"Best: [lr=0.01](#/experiments/{exp}/runs/{best.info.run_id})" in note
    comparison = f"[comparison.png](#/experiments/{exp}/runs/{parent.info.run_id}/artifacts/"
    assert comparison + "comparison.png)" in note
    for child in grid.children:
        assert child.data.tags["mlflow.note.content"].startswith("**")
    for key in ("mlflow.source.name", "mlflow.source.git.commit"):  # the Source column
        assert parent.data.tags[key] == best.data.tags[key]


def test_the_printed_link_opens_the_sweeps_view_best_first(grid: Sweep) -> None:
    """The view the link names is stored on the experiment, as MLflow's Share button
    stores one: sorted by final_val_loss (children listed flat), swept params shown."""
    from learnai.tracking.links import VIEW_TAG_PREFIX

    (key,) = re.findall(r"\?viewStateShareKey=(learnai-[0-9a-f]+)&workflowType=", grid.output)
    tags = grid.client.get_experiment(grid.parent.info.experiment_id).tags
    view = json.loads(tags[VIEW_TAG_PREFIX + key])
    assert view["orderByKey"] == "metrics.`final_val_loss`" and view["orderByAsc"] is True
    assert "params.`optimizer.lr`" in view["selectedColumns"]
    assert "attributes.`Models`" in view["selectedColumns"]


def test_grid_parent_has_the_report_artifacts(grid: Sweep, tmp_path: Path) -> None:
    parent_id = grid.parent.info.run_id
    assert artifact_names(grid.client, parent_id) >= SWEEP_ARTIFACTS

    rows = read_csv(download(grid.client, parent_id, "children.csv", tmp_path))
    assert len(rows) == 2
    by_id = {c.info.run_id: c for c in grid.children}
    assert {r["run_id"] for r in rows} == set(by_id)
    for row in rows:
        assert row["outcome"] == by_id[row["run_id"]].data.tags["outcome"]
        assert row["status"] == "FINISHED"
    assert "optimizer.lr" in rows[0], "the swept param is a column"

    table = json.loads(download(grid.client, parent_id, "children.json", tmp_path).read_text())
    assert {r["run_id"] for r in table} == set(by_id)

    # Both runs' animations side by side: two panels of 360 x 270.
    with Image.open(download(grid.client, parent_id, "side_by_side.gif", tmp_path)) as gif:
        assert gif.n_frames > 1
        assert gif.size == (720, 270)
    with Image.open(download(grid.client, parent_id, "comparison.png", tmp_path)) as png:
        assert png.format == "PNG"


def test_grid_jobs_learn_the_parent_from_their_own_config(grid: Sweep) -> None:
    """Each job's config names its parent in ``hydra.job.env_set`` (beside the user's
    own entries); the command line the jobs record is the user's, untouched."""
    from omegaconf import OmegaConf

    jobs = sorted(grid.cwd.glob("multirun/*/*/[0-9]/.hydra"))
    assert len(jobs) == 2, jobs
    for job in jobs:
        hydra = OmegaConf.load(job / "hydra.yaml").hydra
        env_set = OmegaConf.to_container(hydra.job.env_set)
        assert env_set["LEARNAI_PARENT_RUN_ID"] == grid.parent.info.run_id
        assert str(env_set["LEARNAI_TEST"]) == "1"  # the user's own entry kept
        recorded = [*hydra.overrides.hydra, *hydra.overrides.task]
        assert not [o for o in recorded if "PARENT" in o or "parent" in o], recorded
        task = list(OmegaConf.load(job / "overrides.yaml"))
        assert task == list(hydra.overrides.task)
        assert task[0] in ("optimizer.lr=0.01", "optimizer.lr=1")


def test_invalid_grid_value_stops_before_any_run(tmp_path: Path) -> None:
    proc = run_learnai(
        tmp_path, "-m", "optimizer.lr=0.01,0", "tracking.experiment=bad", *TINY, expect=2
    )
    line = error_line(proc)
    assert re.search(r"optimizer\.lr\b.*: 0(\.0)? ", line), line
    assert len([x for x in proc.stderr.splitlines() if x.strip()]) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    db = tmp_path / "mlruns" / "mlflow.db"
    if db.exists():  # the store may exist, but hold no run
        client = mlflow_client(tmp_path)
        runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
        assert runs == []
    assert not (tmp_path / "multirun").exists(), "no job was launched"


def test_joblib_jobs_in_other_processes_link_to_the_parent(parallel: Sweep) -> None:
    sweep = parallel
    pids = {c.data.tags["learnai.pid"] for c in sweep.children}
    assert sweep.parent.data.tags["learnai.pid"] not in pids, "joblib's workers ran the jobs"
    assert sweep.parent.info.status == "FINISHED"
    assert sweep.parent.data.tags["sweep.runs"] == "2"
    assert len(sweep.children) == 2
    assert len(all_runs(sweep.client, "parallel")) == 3, "no unlinked runs"
    for child in sweep.children:
        assert child.data.tags[PARENT_TAG] == sweep.parent.info.run_id
        assert child.info.status == "FINISHED"


def test_a_joblib_sweep_prints_one_line_per_job_and_one_summary(parallel: Sweep) -> None:
    """What the console shows: no plumbing, no leaked-resource warnings from joblib (the
    interpreter exits normally, so joblib cleans up)."""
    printed = parallel.output
    job_lines = [line for line in printed.splitlines() if re.search(r" - lr=(0\.01|1): ", line)]
    assert len(job_lines) == 2, printed[-3000:]
    assert any("lr=0.01: converged" in line for line in job_lines)
    assert any("lr=1: diverged" in line for line in job_lines)
    assert len(re.findall(r"sweep: 2 runs: 1 converged, 1 diverged", printed)) == 1, printed
    assert len(re.findall(r"best: lr=0\.01 \| val_loss ", printed)) == 1, printed
    for plumbing in ("LEARNAI_", "env_set", "parent_run_id", "Launching"):
        assert plumbing not in printed, plumbing
    assert "leaked" not in printed and "resource_tracker" not in printed
    assert "Traceback" not in printed and "Warning" not in printed, printed
    assert not re.search(r"\d\.\d{9,}", printed), "no floats printed with 17 digits"


def test_a_job_is_finished_while_the_next_one_trains(tmp_path: Path) -> None:
    """Watched live: once the second job's run exists, the first is FINISHED and the
    parent still RUNNING. A SIGTERM then ends the second KILLED, the parent KILLED, and
    starts no third job; the first stays FINISHED."""
    short = tuple(o for o in TINY_NO_ANIMATION if not o.startswith("trainer.epochs="))
    proc = start_learnai(
        tmp_path,
        "-m",
        "trainer.epochs=20,1000000,20",  # the second job trains until signalled
        "tracking.experiment=live",
        *short,
    )
    try:
        uri = tracking_uri(tmp_path)
        children = wait_for_runs(uri, "live", 2, job=proc)
        first, second = sorted(children, key=lambda r: r.info.start_time)
        assert first.info.status == "FINISHED"
        assert first.info.run_name.startswith("epochs=20 \u00b7 ")  # and its verdict
        assert second.info.status == "RUNNING"
        (parent,) = parent_runs(mlflow_client(tmp_path), "live")
        assert parent.info.status == "RUNNING"
        os.killpg(proc.pid, signal.SIGTERM)
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    output = finish(proc, timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, output[-3000:]

    sweep = Sweep(tmp_path, "live", output)
    assert [(c.info.run_id, c.info.status) for c in sweep.children] == [
        (first.info.run_id, "FINISHED"),
        (second.info.run_id, "KILLED"),
    ]
    assert sweep.parent.info.status == "KILLED"
