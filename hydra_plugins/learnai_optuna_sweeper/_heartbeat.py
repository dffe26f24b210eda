"""Telling trials left RUNNING by a dead sweep from live ones, so a later sweep fails them.

Two ways. Heartbeats (``heartbeat_interval``, Optuna's ``fail_stale_trials``) work
from any machine, after a grace period. And every trial of an RDB study records the
sweep that asked for it (system attribute ``OWNER_ATTR``: host, pid and the process's
start time); the next sweep on that host fails at once the RUNNING trials whose sweep is
provably gone (SIGKILL, the OOM killer), heartbeat or not.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

log = logging.getLogger(__name__)

OWNER_ATTR = "sweeper_process"  # "host:pid:start": the sweep that asked for the trial


def _start_time(pid: int) -> str:
    """The kernel's start time of ``pid`` (clock ticks since boot), "" where there is no
    /proc or no such process: with the pid, it names one process even after pid reuse."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return ""
    return "" if fields[0] in (b"Z", b"X") else fields[19].decode()


def owner() -> str:
    """This sweep process, as recorded on its trials."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_time(pid)}"


def _gone(recorded: str) -> bool:
    """Whether the sweep ``recorded`` by :func:`owner` is provably gone: same host, and
    its pid is free, a zombie or another process now."""
    host, pid, start = [*recorded.split(":"), "", "", ""][:3]
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    now = _start_time(int(pid))
    return bool(start) and now != start


def fail_orphaned_trials(study: optuna.Study, storage: Any) -> int:
    """FAIL the RUNNING trials of ``study`` whose sweep on this host is gone, and hand
    each to the storage's stale-trial callback (``max_retry``), as Optuna's
    ``fail_stale_trials`` does; how many."""
    from optuna.trial import TrialState

    getter = getattr(storage, "get_heartbeat_stale_trial_callback", None) or getattr(
        storage, "get_failed_trial_callback", None
    )  # Optuna 4.9 renamed it
    callback = getter() if getter is not None else None
    failed = 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        recorded = trial.system_attrs.get(OWNER_ATTR)
        if isinstance(recorded, str) and _gone(recorded):
            study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
            failed += 1
            if callback is not None:
                (frozen,) = [t for t in study.get_trials() if t.number == trial.number]
                callback(study, frozen)
    if failed:
        log.warning("%d trial(s) left RUNNING by a sweep that is gone: failed", failed)
    return failed


class Heartbeat:
    """While a batch runs, beat for its trials (RDB storages with heartbeat_interval);
    first, record this sweep as their owner (any RDB storage)."""

    def __init__(
        self, storage: Any, interval: int | None, study: optuna.Study, trials: list[Any]
    ) -> None:
        self.interval = interval
        self.storage = storage
        self.stop = threading.Event()
        self.ids: list[int] = []
        if hasattr(storage, "record_heartbeat"):  # an RDB storage: it outlives this process
            study_id = self.storage.get_study_id_from_name(study.study_name)
            self.ids = [
                self.storage.get_trial_id_from_study_id_trial_number(study_id, t.number)
                for t in trials
            ]
            me = owner()
            for trial_id in self.ids:
                self.storage.set_trial_system_attr(trial_id, OWNER_ATTR, me)
        self.thread = threading.Thread(target=self._run, name="optuna-heartbeat", daemon=True)

    def _beat(self) -> None:
        for trial_id in self.ids:
            self.storage.record_heartbeat(trial_id)

    def _run(self) -> None:
        while not self.stop.wait(self.interval):
            self._beat()

    def __enter__(self) -> Heartbeat:
        if self.ids and self.interval is not None:
            self._beat()
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join()
