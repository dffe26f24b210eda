"""learnai.heap freezes import-time objects: what Python promises at exit still happens,
and what a job makes after the freeze is still collected."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sweep_helpers import TINY, run_python

AFTER_FREEZE = """
import gc, weakref
from learnai import heap

heap.settle_once()
heap.settle_once()  # once per process: the second call freezes nothing more
frozen = gc.get_freeze_count()

class Node:
    pass

node = Node()
node.self = node  # a cycle: only the collector frees it
weakref.finalize(node, print, "cycle made after the freeze: collected")
del node
gc.collect()
assert gc.get_freeze_count() == frozen, (gc.get_freeze_count(), frozen)
"""

BEFORE_FREEZE = """
import gc, weakref
from learnai import heap

class Node:
    pass

node = Node()
node.self = node  # garbage as the freeze comes: collected, not frozen for good
weakref.finalize(node, print, "cycle dropped before the freeze: collected")
del node
heap.settle_once()
print("settled")
"""

AT_EXIT = """
import atexit, sys, weakref

class Resource:
    pass

kept = Resource()
kept.self = kept
weakref.finalize(kept, print, "weakref.finalize ran")
atexit.register(print, "atexit ran")
sys.argv = ["learnai", *sys.argv[1:]]
from learnai.cli import main
main()
"""


def test_garbage_made_after_the_freeze_is_collected() -> None:
    out = subprocess.run(
        [sys.executable, "-c", AFTER_FREEZE], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "cycle made after the freeze: collected" in out.stdout


def test_garbage_dropped_before_the_freeze_is_not_frozen() -> None:
    out = subprocess.run(
        [sys.executable, "-c", BEFORE_FREEZE], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines == ["cycle dropped before the freeze: collected", "settled"], out.stdout


@pytest.mark.slow
def test_a_run_still_runs_atexit_handlers_and_finalizers(tmp_path: Path) -> None:
    out = run_python(tmp_path, "-c", AT_EXIT, *TINY)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "atexit ran" in out.stdout
    assert "weakref.finalize ran" in out.stdout
