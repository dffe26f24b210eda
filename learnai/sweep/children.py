"""A sweep's child runs in MLflow: read back for the parent's report, and ended KILLED
when the sweep is over and no job will end them any more."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from learnai.tracking.recorder import PARENT_TAG
from learnai.tracking.stores import open_store


def end_running_children(uri: str, parent_run_id: str, status: str = "KILLED") -> int:
    """End a finished sweep's children that no job will end any more; returns how many."""
    client = open_store(uri)
    ended = 0
    for run in child_runs(uri, parent_run_id):
        if run.info.status == "RUNNING":
            client.set_terminated(run.info.run_id, status)
            ended += 1
    return ended


def child_runs(uri: str, parent_run_id: str) -> list[Any]:
    """All runs whose ``mlflow.parentRunId`` is ``parent_run_id``, oldest first."""
    client = open_store(uri)
    parent = client.get_run(parent_run_id)
    runs = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.`{PARENT_TAG}` = '{parent_run_id}'",
        max_results=5000,
        order_by=["attributes.start_time ASC"],
    )
    return list(runs)


def metric_history(uri: str, run_id: str, key: str) -> list[float]:
    """A metric's values ordered by step."""
    history = open_store(uri).get_metric_history(run_id, key)
    return [m.value for m in sorted(history, key=lambda m: m.step)]


def download_artifact(uri: str, run_id: str, path: str, dst: Path) -> Path | None:
    """Fetch one artifact of a run into ``dst``; None if the run does not have it."""
    try:
        local = open_store(uri).download_artifacts(run_id, path, str(dst))
    except Exception:
        return None
    return Path(local)
