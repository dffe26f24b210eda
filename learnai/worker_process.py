"""What a learnai worker process (tracking, pictures) is, and does as it starts.

A worker serves the command that started it and must never outlive it:

- Ctrl-C and a scheduler's SIGTERM reach the whole process group, workers included;
  they are the command's to handle (it ends its runs KILLED through the workers, then
  stops them), so a worker ignores both.
- A command killed outright (SIGKILL, the OOM killer) cannot stop its workers: each one
  watches its parent's sentinel and, when the parent is gone, leaves through a normal
  interpreter exit (``SystemExit`` in its main thread: atexit handlers and finalizers
  run). A worker left behind would keep the command's output pipes open, and its caller
  waiting for them.
- Its exit does not walk its libraries' heap (learnai.heap).
"""

from __future__ import annotations

import atexit
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

_LEAVE = signal.SIGUSR1  # from the watcher thread to the main thread: the parent is gone


def spawn_pool(initializer: Callable[[], None]) -> ProcessPoolExecutor:
    """One worker process; ``initializer`` must call :func:`start_worker` first."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn: the command may already run torch's threads, which fork does not survive
    context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(1, mp_context=context, initializer=initializer)


def start_worker() -> None:
    """A ProcessPoolExecutor ``initializer`` for learnai's workers."""
    from learnai import heap

    atexit.register(heap.before_exit)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(_LEAVE, _leave)
    threading.Thread(target=_exit_with_parent, name="learnai-parent", daemon=True).start()


def _leave(signum: int, frame: object) -> None:
    raise SystemExit(1)


def _exit_with_parent() -> None:
    import multiprocessing
    from multiprocessing.connection import wait

    parent = multiprocessing.parent_process()
    if parent is None:
        return
    wait([parent.sentinel])  # ready when the parent process has ended, however it ended
    # Killed without stopping its workers: no one is left to hand work back to. Asked
    # again each second: a task running when the first request came may swallow it.
    while True:
        os.kill(os.getpid(), _LEAVE)
        time.sleep(1.0)
