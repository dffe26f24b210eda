"""Optuna's notes on heartbeats, which the sweeper uses on purpose, kept off the console.

Optuna marks the heartbeat arguments of its RDB storage and ``fail_stale_trials`` as
experimental (an ``ExperimentalWarning`` each, every sweep), and ``Study.ask`` on a
storage with heartbeats warns that heartbeats are meant for ``Study.optimize``: this
sweeper asks and tells, and beats for its trials itself (:class:`._heartbeat.Heartbeat`).
Neither says anything a user can act on; only these calls are quieted, only these notes.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def heartbeat_notes_quiet() -> Iterator[None]:
    from optuna.exceptions import ExperimentalWarning

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ExperimentalWarning, message=".*heartbeat")
        warnings.filterwarnings("ignore", category=ExperimentalWarning, message=".*stale_trials")
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
        yield
