"""No byte that learnai prints or writes holds a store's password, in any mode.

A real PostgreSQL (trust auth accepts any password) backs the MLflow store, so the URL
with its password goes through every path a user's would: the jobs' configs, run tags
and params, the parent's name, the reports, learnai's own console lines.

What Hydra itself writes is not learnai's: its ``.hydra/`` files, ``multirun.yaml`` and
the line it prints for a failed job (``Error executing job with overrides: [...]``)
hold the overrides as typed, and are left out here.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from helpers.cli import TINY, TINY_NO_ANIMATION, run_learnai
from helpers.stores import mlflow_client, parent_runs, pg_databases

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]
PASSWORD = "Pw7x:q/z9"  # ':' is escaped by Hydra in override text, '/' ends URL parts
HYDRAS_FILES = {".hydra", "multirun.yaml"}
HYDRAS_FAILED_JOB_LINE = "Error executing job with overrides:"


class Sweep(NamedTuple):
    cwd: Path  # where it was launched
    proc: subprocess.CompletedProcess[str]


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


def _learnais_files(root: Path) -> list[Path]:
    """Every file under ``root`` but Hydra's own."""
    return [
        path
        for path in root.rglob("*")
        if path.is_file() and not HYDRAS_FILES & set(path.relative_to(root).parts)
    ]


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
    lines = (proc.stdout + proc.stderr).splitlines()
    assert any(line.startswith(HYDRAS_FAILED_JOB_LINE) for line in lines), lines[-40:]
    printed = "\n".join(line for line in lines if not line.startswith(HYDRAS_FAILED_JOB_LINE))
    assert "postgres:***@" in printed  # learnai's own lines name the store, masked
    assert "Pw7x" not in printed
    stored = _database_text(db)
    assert "sweep" in stored and "optimizer.lr" in stored  # the runs are there
    assert "Pw7x" not in stored
    for path in _learnais_files(tmp_path):
        assert b"Pw7x" not in path.read_bytes(), path


@pytest.fixture(scope="module")
def optuna_sweep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sweep]:
    """An Optuna sweep whose study storage URL carries the password (run once for the
    tests below)."""
    cwd = tmp_path_factory.mktemp("study")
    with pg_databases() as new_database:
        storage = new_database().replace(
            "postgresql://postgres@", f"postgresql+psycopg://postgres:{PASSWORD}@"
        )
        proc = run_learnai(
            cwd,
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
        yield Sweep(cwd, proc)


def test_a_password_in_the_study_storage_is_masked_on_the_parent(optuna_sweep: Sweep) -> None:
    (parent,) = parent_runs(mlflow_client(optuna_sweep.cwd), "masked")
    assert parent.data.tags["optuna.storage"].startswith("postgresql+psycopg://postgres:***@")
    assert "Pw7x" not in parent.data.tags["optuna.storage"]
    assert parent.data.tags["optuna.study"] == "masked"
    for path in _learnais_files(optuna_sweep.cwd):
        assert b"Pw7x" not in path.read_bytes(), path


def test_a_password_in_the_study_storage_is_never_printed(optuna_sweep: Sweep) -> None:
    printed = optuna_sweep.proc.stdout + optuna_sweep.proc.stderr
    assert "postgres:***@" in printed  # the sweeper's lines name the storage, masked
    assert "Pw7x" not in printed
