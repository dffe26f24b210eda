"""Reading what learnai recorded: the MLflow store and the Optuna study a command
launched from a folder wrote to, and fresh PostgreSQL databases."""

from __future__ import annotations

import csv
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import optuna
    from mlflow import MlflowClient
    from mlflow.entities import Run

PARENT_TAG = "mlflow.parentRunId"
PG = "postgresql://postgres@127.0.0.1:5432"  # the machine's PostgreSQL: trust auth


def tracking_uri(cwd: Path) -> str:
    """The default store of a command launched from ``cwd``."""
    return f"sqlite:///{(cwd / 'mlruns' / 'mlflow.db').resolve()}"


def optuna_storage(cwd: Path) -> str:
    """The URL the sweeper's default storage resolves to when launched from ``cwd``."""
    return "sqlite:///" + str((cwd / "mlruns" / "optuna.db").resolve())


def mlflow_client(cwd: Path) -> MlflowClient:
    """A client on the store a command launched from ``cwd`` wrote to."""
    from mlflow import MlflowClient

    db = cwd / "mlruns" / "mlflow.db"
    assert db.is_file(), f"no MLflow store at {db}"
    return MlflowClient(tracking_uri=tracking_uri(cwd))


def all_runs(client: MlflowClient, experiment: str) -> list[Run]:
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"experiment {experiment!r} was not created"
    return list(client.search_runs([exp.experiment_id], max_results=1000))


def only_run(client: MlflowClient, experiment: str) -> Run:
    """The single run of ``experiment``; fails if there is not exactly one."""
    runs = all_runs(client, experiment)
    assert len(runs) == 1, f"expected one run in {experiment!r}, found {len(runs)}"
    return runs[0]


def parent_runs(client: MlflowClient, experiment: str) -> list[Run]:
    """The sweeps' parent runs of ``experiment``, oldest first."""
    runs = [r for r in all_runs(client, experiment) if r.data.tags.get("learnai.sweep") == "true"]
    return sorted(runs, key=lambda r: r.info.start_time)


def child_runs(client: MlflowClient, experiment: str, parent_id: str) -> list[Run]:
    return [r for r in all_runs(client, experiment) if r.data.tags.get(PARENT_TAG) == parent_id]


def artifact_names(client: MlflowClient, run_id: str) -> set[str]:
    return {a.path for a in client.list_artifacts(run_id)}


def download(client: MlflowClient, run_id: str, name: str, dst: Path) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    return Path(client.download_artifacts(run_id, name, str(dst)))


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def load_study(cwd: Path, name: str) -> optuna.Study:
    import optuna

    return optuna.load_study(study_name=name, storage=optuna_storage(cwd))


def study_names(cwd: Path) -> list[str]:
    import optuna

    if not (cwd / "mlruns" / "optuna.db").exists():
        return []
    return list(optuna.get_all_study_names(optuna_storage(cwd)))


def describe_trials(study: optuna.Study) -> str:
    """One line per trial, for assertion messages."""
    return "\n".join(
        f"  #{t.number} {t.state.name} value={t.value} params={t.params} attrs={t.user_attrs}"
        for t in study.trials
    )


def pg_admin(sql: str) -> None:
    """Run ``sql`` as PostgreSQL's superuser, outside a transaction."""
    import psycopg

    with psycopg.connect(f"{PG}/test", autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql)


@contextmanager
def pg_databases() -> Iterator[callable]:
    """``new()`` gives the URI of a fresh, empty database; all are dropped at the end."""
    made: list[str] = []

    def new() -> str:
        name = f"learnai_test_{uuid.uuid4().hex[:12]}"
        pg_admin(f'CREATE DATABASE "{name}"')
        made.append(name)
        return f"{PG}/{name}"

    try:
        yield new
    finally:
        for name in made:
            pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
