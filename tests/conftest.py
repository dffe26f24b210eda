"""Shared helpers: run ``python -m learnai`` the way a user does and read its MLflow store.

End-to-end tests launch the CLI in a subprocess whose working directory is the test's
``tmp_path``, so the default ``tracking.uri`` (``sqlite:///mlruns/mlflow.db``) lands in
``tmp_path/mlruns`` and Hydra's ``outputs/`` stays there too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

# Generous: a tiny run takes ~10 s on two CPU cores, most of it importing torch and MLflow.
TIMEOUT_S = 300


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # A developer's shell must not change what the tests see: Hydra would print a full
    # traceback, MLflow would follow another store.
    for key in ("HYDRA_FULL_ERROR", "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME"):
        env.pop(key, None)
    env["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    return env


def run_learnai(cwd: Path, *overrides: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``python -m learnai <overrides>`` in ``cwd``; with ``check``, demand exit 0."""
    proc = subprocess.run(
        [sys.executable, "-m", "learnai", *overrides],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    if check and proc.returncode != 0:
        pytest.fail(
            f"learnai {' '.join(overrides)} exited {proc.returncode}\n"
            f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        )
    return proc


def tracking_uri(cwd: Path) -> str:
    """The URI the default config resolves to when launched from ``cwd``."""
    return f"sqlite:///{(cwd / 'mlruns' / 'mlflow.db').resolve()}"


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
