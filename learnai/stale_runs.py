"""Runs left RUNNING by a process that is gone are closed as FAILED on the next start.

A run cannot always close itself: with the disk full or the store unreachable, the
final ``set_terminated`` fails too. Every run therefore records which process owns it
(host, pid, the pid's start time); whenever a run starts in an experiment, runs of that
experiment still RUNNING whose owner on this host no longer exists are ended FAILED and
tagged ``learnai.repaired`` with the reason.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow import MlflowClient

__all__ = ["owner_tags", "repair_stale_runs"]

log = logging.getLogger("learnai")
HOST_TAG, PID_TAG, STARTED_TAG = "learnai.host", "learnai.pid", "learnai.pid_started"
REPAIRED_TAG = "learnai.repaired"


def _started(pid: int) -> str:
    """The process's start time in clock ticks since boot ('' where /proc is missing).

    With the pid, it tells a live owner from a new process that reuses its pid.
    """
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def owner_tags() -> dict[str, str]:
    """Tags naming this process as a run's owner."""
    pid = os.getpid()
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(pid), STARTED_TAG: _started(pid)}


def _owner_alive(pid: int, started: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    return not started or _started(pid) in ("", started)


def repair_stale_runs(client: MlflowClient, experiment_id: str) -> list[str]:
    """End as FAILED the RUNNING runs of this host whose process is gone; their ids."""
    host = socket.gethostname().replace("'", "")
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"attributes.status = 'RUNNING' and tags.`{HOST_TAG}` = '{host}'",
        max_results=1000,
    )
    repaired = []
    for run in runs:
        tags = run.data.tags
        try:
            pid = int(tags.get(PID_TAG, ""))
        except ValueError:
            continue
        if pid == os.getpid() or _owner_alive(pid, tags.get(STARTED_TAG, "")):
            continue
        reason = f"its process {pid} on {host} ended without closing it"
        client.set_tag(run.info.run_id, REPAIRED_TAG, reason)
        client.set_terminated(run.info.run_id, "FAILED")
        log.warning("run %s was left RUNNING (%s): now FAILED", run.info.run_id, reason)
        repaired.append(run.info.run_id)
    return repaired
