"""Processes as the kernel sees them (``/proc``): children, command lines, states, groups,
and running a command as if on another machine."""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# shared/ lies beside the checkout (and beside CI's clone); the environment may name it.
AS_ANOTHER_MACHINE = os.environ.get(
    "LEARNAI_AS_ANOTHER_MACHINE", str(REPO.parent / "shared" / "tools" / "as-another-machine")
)


def children(pid: int) -> list[int]:
    """``pid``'s children, then their children, depth first (the deepest last)."""
    try:
        direct = [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
    return [g for c in direct for g in children(c)] + direct


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def proc_stat(pid: int | str) -> list[str]:
    """The fields of /proc/PID/stat after the command name, the state (field 3) first:
    split after the last ")", as the name itself may hold spaces and parentheses."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def group_is_gone(pgid: int, timeout: float = 10) -> bool:
    """Whether every process of group ``pgid`` has exited within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def as_another_machine(hidden: list[Path]) -> list[str]:
    """The argv prefix that runs a command with ``hidden`` directories empty."""
    if not (os.path.exists(AS_ANOTHER_MACHINE) and shutil.which("unshare")):
        pytest.skip(f"{AS_ANOTHER_MACHINE} (and unshare) are needed")
    return [AS_ANOTHER_MACHINE, *map(str, hidden), "--"]


def group_stopped(pgid: int) -> bool:
    """Whether every process of group ``pgid`` is stopped (SIGSTOP: state T) or dead."""
    states = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            fields = proc_stat(proc.name)
        except OSError:  # gone meanwhile
            continue
        if int(fields[2]) == pgid:
            states.append(fields[0])
    return bool(states) and all(state in "tTZX" for state in states)


def stop_group(pgid: int, timeout: float = 10) -> None:
    """SIGSTOP every process of group ``pgid``; return once the kernel has stopped them
    all (SIGCONT resumes them)."""
    from helpers.polling import wait_until

    os.killpg(pgid, signal.SIGSTOP)
    wait_until(lambda: group_stopped(pgid), f"process group {pgid} stopped", timeout, every=0.001)


def asleep(pid: int, quiet_s: float = 1.0) -> Callable[[], bool]:
    """A check for :func:`helpers.polling.wait_until`: true once the main thread of
    ``pid`` has been asleep (state S, next to no CPU time) at every poll for ``quiet_s``
    seconds: blocked on a lock, a socket or a timer, no longer starting up (imports keep
    a process running). False while it runs, and once it is gone."""
    quiet_since: list[tuple[float, int]] = []  # (when, CPU ticks) at the first quiet poll

    def check() -> bool:
        try:
            fields = proc_stat(f"{pid}/task/{pid}")
        except OSError:
            return False
        now, ticks = time.monotonic(), int(fields[11]) + int(fields[12])  # utime + stime
        if fields[0] != "S":
            quiet_since.clear()
            return False
        if not quiet_since:
            quiet_since.append((now, ticks))
            return False
        since, ticks_then = quiet_since[0]
        if ticks - ticks_then > 2 + 5 * (now - since):  # more than ~5 % of a core
            quiet_since[:] = [(now, ticks)]
            return False
        return now - since >= quiet_s

    return check
