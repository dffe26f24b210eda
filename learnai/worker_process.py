"""What a learnai worker process (tracking, pictures) does as it starts.

A worker serves the command that started it and must never outlive it:

- Ctrl-C and a scheduler's SIGTERM reach the whole process group, workers included;
  they are the command's to handle (it ends its runs KILLED through the workers, then
  stops them), so a worker ignores both.
- A command killed outright (SIGKILL, the OOM killer) cannot stop its workers: each one
  watches its parent's sentinel and exits when the parent is gone. A worker left behind
  would keep the command's output pipes open, and its caller waiting for them.
- Its exit does not walk its libraries' heap (learnai.heap).
"""

from __future__ import annotations

import atexit
import os
import signal
import threading


def start_worker() -> None:
    """A ProcessPoolExecutor ``initializer`` for learnai's workers."""
    from learnai import heap

    atexit.register(heap.before_exit)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, name="learnai-parent", daemon=True).start()


def _exit_with_parent() -> None:
    import multiprocessing
    from multiprocessing.connection import wait

    parent = multiprocessing.parent_process()
    if parent is None:
        return
    wait([parent.sentinel])  # ready when the parent process has ended, however it ended
    # Killed without stopping its workers: there is no one left to hand work back to.
    os._exit(1)
