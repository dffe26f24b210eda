"""Waiting for something to become true, instead of sleeping: every wait has a deadline
and says what it waited for."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import pytest

if TYPE_CHECKING:
    from mlflow.entities import Run

T = TypeVar("T")


def wait_until(
    check: Callable[[], T],
    what: str,
    timeout: float = 60,
    job: subprocess.Popen[str] | None = None,
    every: float = 0.1,
) -> T:
    """``check()``'s first truthy value, polled every ``every`` s; the test fails after
    ``timeout`` s, or at once if ``job`` (a process the wait depends on) ends first."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if job is not None and job.poll() is not None:
            pytest.fail(f"the process ended before {what}: {job.communicate()}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout} s")
        time.sleep(every)


def wait_for_runs(
    uri: str,
    experiment: str,
    count: int = 1,
    *,
    children: bool = True,
    running: bool = False,
    training: bool = False,
    job: subprocess.Popen[str] | None = None,
    timeout: float = 120,
) -> list[Run]:
    """Poll the store at ``uri`` until ``count`` runs of ``experiment`` exist (sweep
    jobs' child runs with ``children``, RUNNING ones with ``running``, ones that have
    logged metrics, i.e. are training, with ``training``); return them.

    The store is opened as learnai opens it, under its schema lock: a plain MlflowClient
    polling a new store would create its tables beside learnai.
    """
    from learnai.tracking.recorder import PARENT_TAG
    from learnai.tracking.stores import open_store
    from learnai.tracking.uris import sqlite_path

    def runs() -> list[Run]:
        db = sqlite_path(uri)
        if db is not None and not db.exists():
            return []
        client = open_store(uri)
        exp = client.get_experiment_by_name(experiment)
        found = client.search_runs([exp.experiment_id]) if exp else []
        found = [r for r in found if not children or PARENT_TAG in r.data.tags]
        found = [r for r in found if not running or r.info.status == "RUNNING"]
        found = [r for r in found if not training or r.data.metrics]
        return found if len(found) >= count else []

    kind = ("RUNNING " if running else "") + ("training " if training else "")
    kind += "child " if children else ""
    return wait_until(runs, f"{count} {kind}runs of {experiment!r}", timeout, job, every=0.2)
