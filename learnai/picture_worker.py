"""A sweep's pictures drawn on another core while its next job trains.

Drawing a run's loss curve, fit plot and GIF takes ~0.3 s of matplotlib and Pillow,
longer than training one of the tutorial's models. A sweep whose jobs run one after
another in the process that started it (Hydra's basic launcher) hands each run's
:class:`~learnai.artifacts.RunFiles` to one worker process instead, and goes on to the
next job. The run is logged and ended when its files are written: at most one run
waits at a time (memory stays flat), and :func:`drain` settles the last one before the
sweep reports. Jobs in other processes (joblib, submitit, Ray) draw their own pictures.

What can go wrong stays recorded: a worker that dies is replaced by drawing here; a
run whose files cannot be logged ends FAILED with one line; a sweep stopped while a run
waits still logs it (Ctrl-C and SIGTERM reach the worker's group too, so the worker
ignores both and is shut down by this process; see learnai.worker_process).
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from concurrent.futures import Future, ProcessPoolExecutor

    from learnai.artifacts import RunFiles
    from learnai.tracking import RunRecorder

log = logging.getLogger("learnai")

DRAW_TIMEOUT_S = 300  # one run's pictures take well under a second; longer is a hang
KEEP_PANELS = 64  # runs whose animation panel the worker keeps for the sweep's report


@dataclass
class _Waiting:
    recorder: RunRecorder
    uri: str  # the run's store, named when it fails
    files: RunFiles
    folder: tempfile.TemporaryDirectory
    drawn: Future | None  # None: the worker was gone, this process draws them
    done_at_ms: int  # the run's end time: when its job finished, not when it was logged


_pool: ProcessPoolExecutor | None = None
_waiting: _Waiting | None = None
_kept: dict[str, Any] = {}  # in the worker: run id -> the Panel of its predictions.npz


def _warm() -> None:
    """In the worker: import what drawing needs, before the first run arrives."""
    from learnai import heap
    from learnai.animation import pyplot

    pyplot()
    heap.settle_once()


def _draw(files: RunFiles, folder: str, run_id: str | None) -> None:
    """In the worker: write the run's files, and keep its panel (given a ``run_id``) as
    its predictions.npz gives it, so the sweep's side-by-side animation need not
    download it again."""
    from learnai.artifacts import PREDICTIONS, panel_from_npz

    files.write(Path(folder))
    if run_id is None:
        return
    _kept[run_id] = panel_from_npz(Path(folder) / PREDICTIONS)
    while len(_kept) > KEEP_PANELS:
        del _kept[next(iter(_kept))]


def kept_panel(run_id: str) -> Any | None:
    """The panel of a run this process drew (in the worker), if it still keeps it."""
    return _kept.get(run_id)


def _held(run_ids: list[str]) -> list[str]:
    return [r for r in run_ids if r in _kept]


def held(run_ids: list[str]) -> set[str]:
    """Which of these runs' panels the worker keeps: none without a worker."""
    if _pool is None:
        return set()
    try:
        return set(_pool.submit(_held, run_ids).result(timeout=DRAW_TIMEOUT_S))
    except Exception:  # a worker gone: the panels are downloaded instead
        return set()


def start() -> None:
    """Start the worker (it imports matplotlib meanwhile); this process's jobs use it."""
    global _pool
    if _pool is not None:
        return
    from learnai.worker_process import spawn_pool, start_worker

    _pool = spawn_pool(start_worker)
    _pool.submit(_warm)


def active() -> bool:
    return _pool is not None


def submit(recorder: RunRecorder, uri: str, files: RunFiles, keep: bool = True) -> None:
    """Draw ``files`` in the worker; log them and end ``recorder``'s run FINISHED once
    drawn. Settles the run submitted before first, so at most one waits. ``keep``: the
    worker keeps the run's panel for the sweep's report."""
    global _waiting
    settle()
    folder = tempfile.TemporaryDirectory(prefix="learnai-")
    done_at = int(time.time() * 1000)
    try:
        drawn = _pool.submit(_draw, files, folder.name, recorder.run_id if keep else None)
    except Exception:  # the worker is gone: draw here
        _stop_pool()
        _finish(_Waiting(recorder, uri, files, folder, None, done_at), draw_here=True)
        return
    _waiting = _Waiting(recorder, uri, files, folder, drawn, done_at)


def settle(strict: bool = False) -> None:
    """Log and end the run that waits for its pictures, if any. A run whose files cannot
    be saved ends FAILED; ``strict`` (a single run: the command's only work) then raises
    why, as one line, instead of logging it."""
    global _waiting
    waiting, _waiting = _waiting, None
    if waiting is None:
        return
    from concurrent.futures.process import BrokenProcessPool

    draw_here = False
    try:
        waiting.drawn.result(timeout=DRAW_TIMEOUT_S)  # type: ignore[union-attr]
    except BrokenProcessPool:  # killed, out of memory: draw here instead
        _stop_pool()
        draw_here = True
    except Exception as exc:
        _fail(waiting, exc, strict)
        return
    except BaseException:  # stopped while waiting: the run's metrics are in, keep them
        waiting.folder.cleanup()
        waiting.recorder.end_despite("KILLED", waiting.done_at_ms)
        raise
    _finish(waiting, draw_here, strict)


def call(
    fn: Callable[..., None], *args: Any, here: Callable[[], None] | None = None
) -> Callable[[], None]:
    """Start ``fn(*args)`` in the worker; return what waits for it. Without a worker (or
    if it dies) ``here`` (default: ``fn(*args)``) runs in this process instead, so the
    picture is drawn either way."""
    here = here or (lambda: fn(*args))
    if _pool is None:
        here()
        return lambda: None
    try:
        future = _pool.submit(fn, *args)
    except Exception:  # the worker is gone
        _stop_pool()
        here()
        return lambda: None

    def wait() -> None:
        from concurrent.futures.process import BrokenProcessPool

        try:
            future.result(timeout=DRAW_TIMEOUT_S)
        except BrokenProcessPool:
            _stop_pool()
            here()

    return wait


def drain() -> None:
    """Settle the waiting run and stop the worker: before a sweep reports or ends."""
    try:
        settle()
    finally:
        _stop_pool()


def _finish(waiting: _Waiting, draw_here: bool, strict: bool = False) -> None:
    try:
        if draw_here:
            waiting.files.write(Path(waiting.folder.name))
        waiting.recorder.log_artifacts(Path(waiting.folder.name))
        waiting.recorder.end("FINISHED", end_time=waiting.done_at_ms)
    except Exception as exc:
        _fail(waiting, exc, strict)
    finally:
        waiting.folder.cleanup()


def _fail(waiting: _Waiting, exc: Exception, strict: bool = False) -> None:
    """The run's metrics are in; its files are not: end it FAILED and say why, once
    (a full disk or a lost store as the single-run path words it)."""
    from learnai.secrets import mask_secrets
    from learnai.store_failures import explain_failure

    known = explain_failure(exc, waiting.uri)
    waiting.folder.cleanup()
    waiting.recorder.end_despite("FAILED", waiting.done_at_ms)
    if strict:
        raise known if known is not None else exc
    reason = str(known) if known is not None else str(exc).strip() or type(exc).__name__
    name = waiting.recorder.run_name or waiting.recorder.run_id
    log.error(
        "run %s: its files could not be saved: %s", name, mask_secrets(reason.splitlines()[0])
    )


def _stop_pool() -> None:
    global _pool
    pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)
