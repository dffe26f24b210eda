"""Runs left RUNNING by a process that is gone (SIGKILL, power loss, the OOM killer):
every run is tagged with its host and pid, and the next run started on that host in the
same experiment ends the dead ones KILLED (tag ``learnai.reaped``).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow import MlflowClient

HOST_TAG = "learnai.host"
PID_TAG = "learnai.pid"


def process_tags() -> dict[str, str]:
    """Who writes a run: the next command on this host can tell whether it is alive."""
    import socket

    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` on this host exists and is not a zombie (a dead process
    its parent has not yet waited for is gone for our purposes)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (macOS): kill(0) said it exists
    return state not in (b"Z", b"X")


def reap_stale_runs(client: MlflowClient, experiment_id: str) -> int:
    """End as KILLED the RUNNING runs whose process on this host is gone (SIGKILL,
    power loss, OOM killer); returns how many. Runs of other hosts are left alone."""
    import socket

    host = socket.gethostname()
    stale = client.search_runs(
        [experiment_id],
        filter_string=f"attributes.status = 'RUNNING' and tags.`{HOST_TAG}` = '{host}'",
        max_results=1000,
    )
    ended = 0
    for run in stale:
        pid = run.data.tags.get(PID_TAG, "")
        if pid.isdigit() and int(pid) != os.getpid() and not process_alive(int(pid)):
            client.set_tag(run.info.run_id, "learnai.reaped", "process gone")
            client.set_terminated(run.info.run_id, "KILLED")
            ended += 1
    return ended
