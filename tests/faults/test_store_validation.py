"""Fault 8: inputs that used to end in tracebacks: each is one line before anything is
created (or, for an lr beyond float32, a run recorded as diverged)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers.cli import TINY, TINY_NO_ANIMATION, learnai_env, run_learnai
from helpers.stores import tracking_uri


def _one_line_error(proc: subprocess.CompletedProcess[str], *words: str) -> str:
    assert proc.returncode != 0, proc.stdout + proc.stderr  # 2: bad value, 1: bad store
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("learnai:")]
    assert len(lines) == 1, proc.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.mark.e2e
def test_an_lr_beyond_float32_ends_diverged(tmp_path: Path) -> None:
    from mlflow import MlflowClient

    run_learnai(tmp_path, "optimizer.lr=1e38", *TINY_NO_ANIMATION)
    client = MlflowClient(tracking_uri=tracking_uri(tmp_path))
    (recorded,) = client.search_runs([client.get_experiment_by_name("learnai").experiment_id])
    assert recorded.info.status == "FINISHED"
    assert recorded.data.tags["outcome"] == "diverged"


@pytest.mark.e2e
def test_too_many_samples_for_this_machine_is_one_line_with_the_numbers(tmp_path: Path) -> None:
    proc = run_learnai(tmp_path, *TINY, "data.n_samples=100000000", expect=None)
    line = _one_line_error(proc, "data.n_samples", "100000000", "GB", "available")
    assert "training" in line
    assert not (tmp_path / "mlruns").exists()


@pytest.mark.e2e
def test_a_file_uri_is_refused(tmp_path: Path) -> None:
    uri = f"file://{tmp_path / 'mlruns'}"
    proc = run_learnai(tmp_path, f"tracking.uri={uri}", *TINY, expect=None)
    _one_line_error(proc, "tracking.uri", uri, "sqlite:///")


@pytest.mark.e2e
def test_a_store_under_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("not a folder")
    uri = f"sqlite:///{tmp_path / 'blocker' / 'mlflow.db'}"
    proc = run_learnai(tmp_path, f"tracking.uri={uri}", *TINY, expect=None)
    _one_line_error(proc, "tracking.uri", "cannot write")


@pytest.mark.e2e
@pytest.mark.root
def test_a_read_only_store_is_refused(tmp_path: Path, tmpfs: Callable[..., Path]) -> None:
    disk = tmpfs(size="1m", ro=True)
    uri = f"sqlite:///{disk / 'mlflow.db'}"
    proc = run_learnai(tmp_path, f"tracking.uri={uri}", *TINY, expect=None)
    _one_line_error(proc, "tracking.uri", "read-only file system")


@pytest.mark.e2e
@pytest.mark.root
@pytest.mark.parametrize("mode", ["read-only", "full"])
@pytest.mark.parametrize("sweep", [False, True], ids=["run", "sweep"])
def test_a_working_directory_hydra_cannot_write_is_one_line(
    tmp_path: Path, tmpfs: Callable[..., Path], mode: str, sweep: bool
) -> None:
    """Hydra makes ``outputs/`` (``multirun/``) in the working directory before any job:
    read-only or full, that was its OSError traceback for a single run. The store lies
    elsewhere, so only the working directory can refuse."""
    cwd = tmpfs(size="1m", ro=mode == "read-only")
    if mode == "full":
        with open(cwd / "filler", "wb", buffering=0) as f, pytest.raises(OSError):
            while True:
                f.write(b"\0" * 65536)
    store = tmp_path / "store"
    args = ["-m", "optimizer.lr=0.01,0.1"] if sweep else []
    proc = run_learnai(cwd, *args, f"tracking.uri=sqlite:///{store / 'mlflow.db'}", *TINY, expect=2)
    key = "hydra.sweep.dir" if sweep else "hydra.run.dir"
    reason = "read-only file system" if mode == "read-only" else "the disk is full"
    _one_line_error(proc, key, str(cwd), reason)
    assert sorted(p.name for p in cwd.iterdir()) == ([] if mode == "read-only" else ["filler"])
    assert not store.exists()


@pytest.mark.e2e
@pytest.mark.root
@pytest.mark.parametrize("sweep", [False, True], ids=["run", "sweep"])
def test_an_experiments_own_unwritable_artifact_location_is_refused_before_training(
    tmp_path: Path, tmpfs: Callable[..., Path], sweep: bool
) -> None:
    """The experiment was made earlier with its artifacts on a disk now read-only, and
    tracking.artifact_location is not given: the run trained, then failed on its first
    picture with Hydra's traceback. Now one line, and no run."""
    from mlflow import MlflowClient

    disk = tmpfs(size="1m", ro=True)
    client = MlflowClient(tracking_uri=tracking_uri(tmp_path))
    exp = client.create_experiment("old", artifact_location=(disk / "artifacts").as_uri())
    args = ["-m", "optimizer.lr=0.01,0.1"] if sweep else []
    proc = run_learnai(tmp_path, *args, "tracking.experiment=old", *TINY, expect=2)
    _one_line_error(proc, "artifact location of 'old'", str(disk), "read-only file system")
    assert client.search_runs([exp]) == []


@pytest.mark.e2e
@pytest.mark.root
def test_a_read_only_artifact_location_is_refused(
    tmp_path: Path, tmpfs: Callable[..., Path]
) -> None:
    disk = tmpfs(size="1m", ro=True)
    proc = run_learnai(
        tmp_path, f"tracking.artifact_location={disk / 'artifacts'}", *TINY, expect=None
    )
    _one_line_error(proc, "tracking.artifact_location", "read-only file system")
    assert not (tmp_path / "mlruns").exists()


@pytest.mark.e2e
def test_postgresql_without_psycopg3_names_the_driver(tmp_path: Path) -> None:
    """psycopg 3 made unimportable in the child (``sys.modules['psycopg'] = None`` is how
    Python marks a module as absent); everything else is the real CLI."""
    script = (
        "import sys; sys.modules['psycopg'] = None; "
        "sys.argv = ['learnai', *sys.argv[1:]]; "
        "from learnai.cli import main; main()"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, "tracking.uri=postgresql://postgres@127.0.0.1/x", *TINY],
        cwd=tmp_path,
        env=learnai_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    _one_line_error(proc, "'psycopg'", "learnai[postgres]")


@pytest.mark.e2e
def test_postgresql_psycopg2_without_psycopg2_names_the_driver(tmp_path: Path) -> None:
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("psycopg2 is installed here")
    uri = "postgresql+psycopg2://postgres@127.0.0.1/x"
    proc = run_learnai(tmp_path, f"tracking.uri={uri}", *TINY, expect=None)
    _one_line_error(proc, "'psycopg2'", "psycopg2-binary")


@pytest.mark.e2e
def test_mlflow_and_optuna_in_one_database_is_refused(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'shared.db'}"
    proc = run_learnai(
        tmp_path,
        "-m",
        "hydra/sweeper=optuna",
        "hydra.sweeper.n_trials=1",
        f"hydra.sweeper.storage={db}",
        f"tracking.uri={db}",
        "optimizer.lr=tag(log, interval(0.001, 0.1))",
        *TINY,
        expect=None,
    )
    _one_line_error(proc, "same database")
    assert not (tmp_path / "shared.db").exists()


def test_check_distinct_stores_sees_through_spelling() -> None:
    from learnai.tracking.checks import check_distinct_stores
    from learnai.tracking.uris import StoreError

    with pytest.raises(StoreError):
        check_distinct_stores(
            "postgresql://u:a@db.example:5432/runs", "postgresql+psycopg://u:b@db.example/runs"
        )
    check_distinct_stores("postgresql://u@h/runs", "postgresql://u@h/studies")
    check_distinct_stores("sqlite:///a/mlflow.db", "sqlite:///a/optuna.db")
    check_distinct_stores("sqlite:///a/mlflow.db", None)


@pytest.mark.e2e
def test_an_optuna_database_given_as_the_tracking_store_is_refused(tmp_path: Path) -> None:
    import optuna

    study_db = f"sqlite:///{tmp_path / 'optuna.db'}"
    optuna.create_study(storage=study_db, study_name="s")
    proc = run_learnai(tmp_path, f"tracking.uri={study_db}", *TINY, expect=None)
    _one_line_error(proc, "holds an Optuna study storage")


@pytest.mark.e2e
@pytest.mark.parametrize("sweep", [False, True], ids=["single", "sweep"])
def test_an_experiment_deleted_in_the_store_is_one_line(tmp_path: Path, sweep: bool) -> None:
    """MLflow refuses runs in a deleted experiment: the run (a single run's is created
    while it trains) or the sweep's parent is refused in one line naming it, exit 2."""
    from mlflow import MlflowClient

    run_learnai(tmp_path, "tracking.experiment=gone", *TINY)
    client = MlflowClient(tracking_uri=tracking_uri(tmp_path))
    experiment = client.get_experiment_by_name("gone").experiment_id
    client.delete_experiment(experiment)
    multirun = ["-m", "optimizer.lr=0.01,1"] if sweep else []
    proc = run_learnai(tmp_path, *multirun, "tracking.experiment=gone", *TINY, expect=2)
    _one_line_error(proc, "tracking.experiment", "'gone'", "deleted")
    runs = client.search_runs([experiment], run_view_type=3)  # active and deleted
    assert len(runs) == 1, "only the first command's run"
    assert runs[0].info.status == "FINISHED"
