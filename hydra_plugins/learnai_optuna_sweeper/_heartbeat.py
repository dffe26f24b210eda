"""Heartbeats for the trials of a running batch, so a later sweep can tell trials left
RUNNING by a dead sweep (``optuna.storages.fail_stale_trials``) from live ones."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna


class Heartbeat:
    """While a batch runs, beat for its trials (RDB storages with heartbeat_interval)."""

    def __init__(
        self, storage: Any, interval: int | None, study: optuna.Study, trials: list[Any]
    ) -> None:
        self.interval = interval
        self.storage = storage
        self.stop = threading.Event()
        self.ids: list[int] = []
        if self.interval is not None:
            study_id = self.storage.get_study_id_from_name(study.study_name)
            self.ids = [
                self.storage.get_trial_id_from_study_id_trial_number(study_id, t.number)
                for t in trials
            ]
        self.thread = threading.Thread(target=self._run, name="optuna-heartbeat", daemon=True)

    def _beat(self) -> None:
        for trial_id in self.ids:
            self.storage.record_heartbeat(trial_id)

    def _run(self) -> None:
        while not self.stop.wait(self.interval):
            self._beat()

    def __enter__(self) -> Heartbeat:
        if self.ids:
            self._beat()
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join()
