"""No byte that learnai prints or writes holds a store's password, in any mode.

A real PostgreSQL (trust auth accepts any password) backs the MLflow store, so the URL
with its password goes through every path a user's would: the jobs' configs, run tags
and params, the parent's name, the reports, learnai's own console lines.

Hydra's own files (``.hydra/``, ``multirun.yaml``) and its failed-job line are included:
the ``learnai`` command moves a password typed in a URL into the environment before
Hydra composes, so what Hydra writes names an ``${oc.env:...}`` variable instead. The
password holds '@', ':' and '/', which the URL needs percent-encoded: the command does it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from helpers.cli import TINY, TINY_NO_ANIMATION, run_learnai
from helpers.stores import parent_runs, pg_databases

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]
PASSWORD = "Pw7x:q/z@9"  # ':' is escaped by Hydra in override text, '/' ends URL parts
HYDRAS_FAILED_JOB_LINE = "Error executing job with overrides:"


class Sweep(NamedTuple):
    cwd: Path  # where it was launched
    proc: subprocess.CompletedProcess[str]
    tracking: str  # the MLflow database, without the password
    storage: str  # the study's database, without the password


def _plain(url: str) -> str:
    """``url`` as this test's own connections use it (trust auth: no password)."""
    return "postgresql://postgres@" + url.rsplit("@", 1)[1]


def _database_text(uri: str) -> str:
    """Every value of every table MLflow wrote, as text."""
    import psycopg

    with psycopg.connect(uri) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "select table_name from information_schema.tables where table_schema='public'"
            )
        ]
        return "\n".join(
            str(row) for table in tables for row in conn.execute(f'select * from "{table}"')
        )


def _files_with_the_password(root: Path) -> list[Path]:
    """Every file under ``root`` (Hydra's own included) that holds the password."""
    return [p for p in root.rglob("*") if p.is_file() and b"Pw7x" in p.read_bytes()]


def test_a_password_in_the_tracking_uri_is_never_printed_or_stored(
    tmp_path: Path, pg_database
) -> None:
    db = pg_database()
    uri = db.replace("postgresql://postgres@", f"postgresql+psycopg://postgres:{PASSWORD}@")
    proc = run_learnai(
        tmp_path,
        "-m",
        f"tracking.uri={uri}",
        "optimizer.lr=0.01,1",
        "trainer.device=cpu,cuda",  # the cuda jobs fail: the failure path runs too
        f"tracking.artifact_location={(tmp_path / 'artifacts').as_uri()}",
        *[a for a in TINY if not a.startswith("trainer.device")],
        expect=None,
    )
    printed = proc.stdout + proc.stderr
    assert HYDRAS_FAILED_JOB_LINE in printed, printed[-4000:]  # Hydra's line is there too
    assert "postgres:***@" in printed  # learnai's own lines name the store, masked
    assert "Pw7x" not in printed
    stored = _database_text(db)
    assert "sweep" in stored and "optimizer.lr" in stored  # the runs are there
    assert "Pw7x" not in stored
    assert (tmp_path / "multirun").is_dir()
    assert _files_with_the_password(tmp_path) == []


@pytest.fixture(scope="module")
def optuna_sweep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sweep]:
    """An Optuna sweep whose study storage URL carries the password (run once for the
    tests below)."""
    cwd = tmp_path_factory.mktemp("study")
    with pg_databases() as new_database:
        storage = new_database().replace(
            "postgresql://postgres@", f"postgresql+psycopg://postgres:{PASSWORD}@"
        )
        tracking = new_database().replace(
            "postgresql://postgres@", f"postgresql://postgres:{PASSWORD}@"
        )
        proc = run_learnai(
            cwd,
            "-m",
            "hydra/sweeper=optuna",
            f"hydra.sweeper.storage={storage}",
            f"tracking.uri={tracking}",
            f"tracking.artifact_location={(cwd / 'artifacts').as_uri()}",
            "hydra.sweeper.study_name=masked",
            "hydra.sweeper.n_trials=2",
            "hydra.sweeper.n_jobs=1",
            "optimizer.lr=interval(0.001,0.01)",
            "tracking.experiment=masked",
            *TINY_NO_ANIMATION,
        )
        yield Sweep(cwd, proc, _plain(tracking), _plain(storage))


def test_a_password_in_the_study_storage_is_masked_on_the_parent(optuna_sweep: Sweep) -> None:
    from mlflow import MlflowClient

    (parent,) = parent_runs(MlflowClient(tracking_uri=optuna_sweep.tracking), "masked")
    assert parent.data.tags["optuna.storage"].startswith("postgresql+psycopg://postgres:***@")
    assert "Pw7x" not in parent.data.tags["optuna.storage"]
    assert parent.data.tags["optuna.study"] == "masked"
    assert _files_with_the_password(optuna_sweep.cwd) == []


def test_no_password_in_the_study_or_the_mlflow_store(optuna_sweep: Sweep) -> None:
    """Every trial's user and system attributes (optuna-dashboard shows them: the fixed
    overrides, tracking.uri among them), and every value of both databases."""
    import optuna

    study = optuna.load_study(study_name="masked", storage=optuna_sweep.storage)
    assert len(study.trials) == 2
    for trial in study.trials:
        assert "tracking.uri" in trial.user_attrs, trial.user_attrs
        assert "Pw7x" not in repr(trial.user_attrs) + repr(trial.system_attrs)
    assert "Pw7x" not in repr(study.user_attrs)  # system attributes: in the database text
    stored = _database_text(optuna_sweep.storage)
    assert "tracking.uri" in stored and "Pw7x" not in stored
    stored = _database_text(optuna_sweep.tracking)
    assert "masked" in stored and "Pw7x" not in stored


def test_a_password_in_the_study_storage_is_never_printed(optuna_sweep: Sweep) -> None:
    printed = optuna_sweep.proc.stdout + optuna_sweep.proc.stderr
    assert "postgres:***@" in printed  # the sweeper's lines name the storage, masked
    assert "Pw7x" not in printed
