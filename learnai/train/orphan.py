"""A job whose launching command is gone stops, instead of training on as an orphan.

joblib's workers (loky) and other launchers' job processes outlive a launcher that was
SIGKILLed (the OOM killer, ``kill -9``): nothing tells them, and they would train on for
minutes and end their runs FINISHED under a sweep that no longer exists. Every sweep job
is told its launcher (``host:pid``, through ``hydra.job.env_set``, see
:mod:`learnai.train.context`); between chunks the loop asks whether that process still
lives, and a job that finds it gone stops as a cancel would: its run ends KILLED. No
signal or ``prctl`` is involved: a notebook calling :func:`learnai.train.run.run` is
untouched, and a job on another host (where the pid means nothing) is not checked.
"""

from __future__ import annotations

import os
import socket
import time
from typing import TYPE_CHECKING

from learnai.tracking.reaping import process_alive

if TYPE_CHECKING:
    from learnai.train.loop import TrainState

CHECK_EVERY_S = 1.0  # a liveness check is one syscall; once a second is plenty


class LauncherGone(SystemExit):
    """The command that launched this job is gone: the job ends as a cancelled one does
    (a ``SystemExit``, so its run ends KILLED and nothing catches it as an error)."""


def launcher_id() -> str:
    """``host:pid`` of this process: what a sweep hands its jobs."""
    return f"{socket.gethostname()}:{os.getpid()}"


class LauncherWatch:
    """Training callback: raise :class:`LauncherGone` once the launcher has died."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.next_check = 0.0

    @classmethod
    def of(cls, launcher: str | None) -> LauncherWatch | None:
        """A watch on ``launcher`` (``host:pid``), or None when there is nothing to watch:
        no launcher named, another host's, or this very process (the basic launcher)."""
        host, _, pid = (launcher or "").rpartition(":")
        if not pid.isdigit() or host != socket.gethostname() or int(pid) == os.getpid():
            return None
        return cls(int(pid))

    def on_chunk(self, state: TrainState) -> None:
        now = time.monotonic()
        if now < self.next_check:
            return
        self.next_check = now + CHECK_EVERY_S
        if not process_alive(self.pid):
            pid = self.pid
            raise LauncherGone(f"learnai: the command that launched this job (pid {pid}) is gone")
