"""Grid multiruns and their MLflow record: one parent run per sweep, a child per job.

Each sweep runs ``python -m learnai -m ...`` in a subprocess launched from a temporary
directory, and the tests read back that directory's ``mlruns/mlflow.db``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PIL import Image
from sweep_helpers import (
    PARENT_TAG,
    TINY,
    Scenarios,
    all_runs,
    artifact_names,
    child_runs,
    download,
    error_line,
    has_joblib_launcher,
    mlflow_client,
    needs_joblib,
    parent_runs,
    read_csv,
    run_learnai,
    tracking_uri,
)

pytestmark = pytest.mark.slow

SWEEP_ARTIFACTS = {"children.csv", "children.json", "comparison.png", "side_by_side.gif"}


class Sweep:
    def __init__(self, cwd: Path, experiment: str, stdout: str) -> None:
        self.cwd = cwd
        self.experiment = experiment
        self.stdout = stdout
        self.client = mlflow_client(cwd)
        parents = parent_runs(self.client, experiment)
        assert len(parents) == 1, f"expected one parent run, found {len(parents)}"
        self.parent = parents[0]
        self.children = child_runs(self.client, experiment, self.parent.info.run_id)

    def child_by_lr(self, lr: float):
        (run,) = [c for c in self.children if float(c.data.params["optimizer.lr"]) == lr]
        return run


def launch(cwd: Path, experiment: str, *overrides: str) -> Sweep:
    proc = run_learnai(cwd, "-m", *overrides, f"tracking.experiment={experiment}", *TINY)
    return Sweep(cwd, experiment, proc.stdout + proc.stderr)


def run_grid(cwd: Path) -> Sweep:
    """The tutorial's lesson as a sweep: lr 0.01 converges, lr 1 diverges. The `+hydra.`
    override is one learnai's checks once applied twice ("An item is already at ...")."""
    return launch(cwd, "grid", "optimizer.lr=0.01,1", "+hydra.job.env_set.LEARNAI_TEST=1")


def run_parallel(cwd: Path) -> Sweep:
    return launch(
        cwd,
        "parallel",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "optimizer.lr=0.01,0.03",
    )


SCENARIOS = {
    "grid": run_grid,
    **({"parallel": run_parallel} if has_joblib_launcher() else {}),
}


@pytest.fixture(scope="module", autouse=True)
def scenarios(request, tmp_path_factory):
    """Both sweeps start at once (see sweep_helpers.Scenarios)."""
    runner = Scenarios(SCENARIOS, tmp_path_factory)
    runner.start(request)
    yield runner
    runner.close()


@pytest.fixture(scope="module")
def grid(scenarios) -> Sweep:
    return scenarios.result("grid")


@pytest.fixture(scope="module")
def parallel(scenarios) -> Sweep:
    return scenarios.result("parallel")


def test_grid_has_one_parent_and_a_child_per_job(grid: Sweep) -> None:
    parent_id = grid.parent.info.run_id
    assert grid.parent.data.tags["learnai.sweep"] == "true"
    assert PARENT_TAG not in grid.parent.data.tags
    assert len(grid.children) == 2
    for child in grid.children:
        assert child.data.tags[PARENT_TAG] == parent_id
        assert child.info.status == "FINISHED"
        assert "learnai.sweep" not in child.data.tags
    lrs = sorted(float(c.data.params["optimizer.lr"]) for c in grid.children)
    assert lrs == [0.01, 1.0]
    # Nothing else in the experiment: exactly the parent and its children.
    assert len(all_runs(grid.client, "grid")) == 3


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

    with Image.open(download(grid.client, parent_id, "side_by_side.gif", tmp_path)) as gif:
        assert gif.n_frames > 1
    with Image.open(download(grid.client, parent_id, "comparison.png", tmp_path)) as png:
        assert png.format == "PNG"


def test_grid_side_by_side_is_the_one_the_stored_runs_give(grid: Sweep, tmp_path: Path) -> None:
    """The picture worker draws the side-by-side from the panels it kept while drawing
    each run: the GIF equals the one drawn from the runs' predictions.npz in the store."""
    from learnai import sweep_report

    uri = tracking_uri(grid.cwd)
    parent_id = grid.parent.info.run_id
    logged = download(grid.client, parent_id, "side_by_side.gif", tmp_path).read_bytes()

    children = sweep_report.collect(uri, parent_id)
    labels = sweep_report._labels(children)
    chosen = sweep_report._panel_children(children)
    runs = [(c.run_id, f"{labels[c.run_id]} [{c.outcome}]") for c in chosen]
    (tmp_path / "again").mkdir()
    stored = sweep_report.gather_panels(uri, chosen)
    assert len(stored) == 2
    sweep_report.draw_side_by_side(runs, stored, tmp_path / "again")
    assert (tmp_path / "again" / "side_by_side.gif").read_bytes() == logged


def test_grid_jobs_get_the_parent_created_while_hydra_composed(grid: Sweep) -> None:
    """In-process jobs: the parent is made while Hydra composes, and each job's config
    names it through learnai's resolver, which gave each job the parent's id."""
    from omegaconf import OmegaConf

    (hydra_yaml,) = [p for p in grid.cwd.glob("multirun/*/*/0/.hydra/hydra.yaml")]
    env_set = OmegaConf.load(hydra_yaml).hydra.job.env_set
    assert OmegaConf.to_container(env_set)["LEARNAI_PARENT_RUN_ID"] == "${learnai.parent_run_id:}"
    assert len(grid.children) == 2
    assert {c.data.tags[PARENT_TAG] for c in grid.children} == {grid.parent.info.run_id}


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


@needs_joblib
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
