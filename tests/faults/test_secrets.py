"""No byte that learnai prints or writes holds a store's password, in any mode.

A real PostgreSQL (trust auth accepts any password) backs the MLflow store, so the URL
with its password goes through every path a user's would: Hydra's job overrides and its
error line for a failed job, run tags and params, the parent's name, the reports.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sweep_helpers import TINY, run_learnai

pytestmark = pytest.mark.slow
PASSWORD = "Pw7x:q/z9"  # ':' is escaped by Hydra in override text, '/' ends URL parts


@pytest.fixture
def database() -> Iterator[str]:
    import psycopg

    name = f"learnai_secret_{uuid.uuid4().hex[:8]}"
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=test", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield name
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=test", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _database_text(name: str) -> str:
    """Every value of every table MLflow wrote, as text."""
    import psycopg

    with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={name}") as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "select table_name from information_schema.tables where table_schema='public'"
            )
        ]
        return "\n".join(
            str(row) for table in tables for row in conn.execute(f'select * from "{table}"')
        )


def test_a_password_in_the_tracking_uri_is_never_printed_or_stored(
    tmp_path: Path, database: str
) -> None:
    uri = f"postgresql+psycopg://postgres:{PASSWORD}@127.0.0.1:5432/{database}"
    proc = run_learnai(
        tmp_path,
        "-m",
        f"tracking.uri={uri}",
        "optimizer.lr=0.01,1",
        "trainer.device=cpu,cuda",  # the cuda jobs fail: Hydra prints a failed job's overrides
        f"tracking.artifact_location={(tmp_path / 'artifacts').as_uri()}",
        *[a for a in TINY if not a.startswith("trainer.device")],
        expect=None,
    )
    printed = proc.stdout + proc.stderr
    assert "Error executing job" in printed, printed[-3000:]  # the failure path ran
    assert "postgres:***@" in printed
    assert PASSWORD not in printed
    assert "Pw7x" not in printed
    stored = _database_text(database)
    assert "sweep" in stored and "optimizer.lr" in stored  # the runs are there
    assert "Pw7x" not in stored
    hydra_own = {".hydra", "multirun.yaml"}
    for path in tmp_path.rglob("*"):
        if path.is_file() and not hydra_own & set(path.relative_to(tmp_path).parts):
            assert b"Pw7x" not in path.read_bytes(), path


def test_a_password_in_the_study_storage_is_masked_on_the_parent(
    tmp_path: Path, database: str
) -> None:
    from sweep_helpers import TINY_NO_ANIMATION, mlflow_client, parent_runs

    storage = f"postgresql+psycopg://postgres:{PASSWORD}@127.0.0.1:5432/{database}"
    proc = run_learnai(
        tmp_path,
        "-m",
        "hydra/sweeper=optuna",
        f"hydra.sweeper.storage={storage}",
        "hydra.sweeper.study_name=masked",
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.n_jobs=1",
        "optimizer.lr=interval(0.001,0.01)",
        "tracking.experiment=masked",
        *TINY_NO_ANIMATION,
    )
    printed = proc.stdout + proc.stderr
    assert "Pw7x" not in printed
    (parent,) = parent_runs(mlflow_client(tmp_path), "masked")
    assert parent.data.tags["optuna.storage"].startswith("postgresql+psycopg://postgres:***@")
    assert parent.data.tags["optuna.study"] == "masked"
    hydra_own = {".hydra", "multirun.yaml"}
    for path in tmp_path.rglob("*"):
        if path.is_file() and not hydra_own & set(path.relative_to(tmp_path).parts):
            assert b"Pw7x" not in path.read_bytes(), path
