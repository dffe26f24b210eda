"""Shared helpers: run ``python -m learnai`` the way a user does and read its MLflow store.

End-to-end tests launch the CLI in a subprocess whose working directory is the test's
``tmp_path``, so the default ``tracking.uri`` (``sqlite:///mlruns/mlflow.db``) lands in
``tmp_path/mlruns`` and Hydra's ``outputs/`` stays there too.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

from sweep_helpers import run_learnai as _run_learnai
from sweep_helpers import tracking_uri


def run_learnai(cwd: Path, *overrides: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``python -m learnai <overrides>`` in ``cwd``; with ``check``, demand exit 0."""
    return _run_learnai(cwd, *overrides, expect=0 if check else None)


def mlflow_client(cwd: Path) -> MlflowClient:
    """A client on the store a run launched from ``cwd`` wrote to."""
    from mlflow import MlflowClient

    db = cwd / "mlruns" / "mlflow.db"
    assert db.is_file(), f"no MLflow store at {db}"
    return MlflowClient(tracking_uri=tracking_uri(cwd))


def only_run(client: MlflowClient, experiment: str) -> Run:
    """The single run of ``experiment``; fails if there is not exactly one."""
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"experiment {experiment!r} was not created"
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 1, f"expected one run in {experiment!r}, found {len(runs)}"
    return runs[0]


# The helpers as fixtures, so test modules need no imports from conftest (which would
# depend on pytest's import mode). Session scope lets module-scoped fixtures use them.


@pytest.fixture(scope="session", name="run_learnai")
def _run_learnai_fixture() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_learnai


@pytest.fixture(scope="session", name="mlflow_client")
def _mlflow_client_fixture() -> Callable[[Path], MlflowClient]:
    return mlflow_client


@pytest.fixture(scope="session", name="only_run")
def _only_run_fixture() -> Callable[[MlflowClient, str], Run]:
    return only_run
