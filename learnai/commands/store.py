"""Opening a tracking store to read it, for ``learnai runs`` and ``learnai rerun``.

Reading must not create anything: MLflow creates a fresh SQLite file (and its folder)
for any ``sqlite:///`` URI it opens, so a typo would leave a stray empty ``mlflow.db``.
A missing SQLite file is reported in one line instead. Server calls get a bounded wait.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow import MlflowClient

DEFAULT_URI = "sqlite:///mlruns/mlflow.db"
HTTP_TIMEOUT_S = "15"  # per request; MLflow's default is 120 s with 7 retries
HTTP_RETRIES = "2"


class StoreError(Exception):
    """A store that cannot be read; the message names it (passwords masked)."""


def store_uri(uri: str | None) -> str:
    """``uri``, else ``$MLFLOW_TRACKING_URI``, else learnai's default store, with a
    relative SQLite path made absolute against the current directory."""
    from learnai import tracking

    chosen = uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI
    return tracking.resolve_uri(chosen, Path.cwd())


def open_existing(uri: str) -> MlflowClient:
    """A client on an existing store; :class:`StoreError` if a SQLite file is missing."""
    from learnai import tracking

    db = tracking.sqlite_path(uri)
    if db is not None and not db.is_file():
        raise StoreError(
            f"no MLflow store at {db} (nothing recorded there, and it is not created "
            "by reading; give --tracking-uri)"
        )
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", HTTP_TIMEOUT_S)
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", HTTP_RETRIES)
    try:
        return tracking.open_store(uri)
    except Exception as err:
        raise StoreError(
            f"cannot open tracking store {tracking.mask_secrets(uri)}: {_first(err)}"
        ) from err


def _first(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0][:300] if lines else type(err).__name__
