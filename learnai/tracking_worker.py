"""A sweep's MLflow calls made by one worker process, so the sweep never imports MLflow.

Importing MLflow and opening its store cost a sweep's process ~1.7 s before its first
job could run, and every write was a SQL transaction between two jobs' training. A
sweep whose jobs run one after another in its own process (Hydra's basic launcher)
therefore starts this worker first: it imports MLflow and creates the store on another
core while the sweep imports torch, and from then on every store call of the sweep's
process runs there. Calls stay synchronous (a run's id comes back before training
starts, an error is raised where the call was made, in order), so everything the
in-process path guarantees still holds; see README "What survives what".

- :func:`call` runs a module-level function in the worker and returns its value; what
  the function logs is logged here too. :func:`in_worker` marks functions that always
  go there when a worker runs.
- :class:`RemoteRecorder` is a :class:`~learnai.tracking.RunRecorder` whose writes are
  such calls; :meth:`RunRecorder.start <learnai.tracking.RunRecorder.start>` returns one
  while the worker runs.
- A worker that dies (killed, out of memory) is replaced by this process: the call is
  made here and so is every one after it.
- The worker ignores Ctrl-C and SIGTERM: the sweep process ends its runs KILLED through
  it, then stops it (:func:`stop`); it exits if the sweep process is killed
  (learnai.worker_process).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from learnai.tracking import RunRecorder

if TYPE_CHECKING:
    from concurrent.futures import Future, ProcessPoolExecutor

log = logging.getLogger("learnai")

T = TypeVar("T")

_pool: ProcessPoolExecutor | None = None
_records: list[logging.LogRecord] = []  # in the worker: what the current call logged


class _Keep(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        record.msg, record.args = record.getMessage(), None  # args may not pickle
        record.exc_info = record.exc_text = None
        _records.append(record)


def _init() -> None:
    """In the worker: learnai's worker set-up; learnai's log lines go back to the caller."""
    from learnai.worker_process import start_worker

    start_worker()
    logger = logging.getLogger("learnai")
    logger.handlers[:] = [_Keep()]
    logger.setLevel(logging.INFO)
    logger.propagate = False


def _capture(fn: Callable[..., T], args: tuple, kwargs: dict) -> tuple[bool, Any, list]:
    """In the worker: ``fn``'s value or exception, and what it logged."""
    _records.clear()
    try:
        return True, fn(*args, **kwargs), list(_records)
    except Exception as exc:
        return False, exc, list(_records)


def start(uri: str | None = None) -> None:
    """Start the worker; it imports MLflow meanwhile, and opens (or creates) ``uri`` if
    given (else when :func:`prepare` names it: once nothing can refuse the config)."""
    global _pool
    if _pool is None:
        from learnai.worker_process import spawn_pool

        _pool = spawn_pool(_init)
        _pool.submit(_capture, _import, (), {})
    if uri is not None:
        prepare(uri)


def prepare(uri: str) -> None:
    """Open (or create) the store in the worker, without waiting; a failure is raised by
    the first call that needs it."""
    if _pool is not None:
        _pool.submit(_capture, _open, (uri,), {})


def _import() -> None:
    # A new store's "Creating initial MLflow database tables" lines are not the sweep's news.
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from learnai.stores import bound_waits, quiet_mlflow

    quiet_mlflow()  # before the import: MLflow reads it then
    bound_waits()
    import mlflow  # noqa: F401


def _open(uri: str) -> None:
    from learnai import heap
    from learnai.stores import open_store

    open_store(uri)
    heap.settle_once()  # MLflow's heap: see learnai.heap


def active() -> bool:
    return _pool is not None


def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` in the worker (here, without one); its value or its error.

    ``fn`` must be a module-level function; its arguments and value must pickle.
    """
    future = _submit(fn, args, kwargs)
    if future is None:
        return fn(*args, **kwargs)
    return _outcome(future, fn, args, kwargs)


def _submit(fn: Callable[..., Any], args: tuple, kwargs: dict) -> Future | None:
    """Hand ``fn`` to the worker; None when there is none (any more)."""
    from concurrent.futures.process import BrokenProcessPool

    if _pool is None:
        return None
    try:
        return _pool.submit(_capture, fn, args, kwargs)
    except (BrokenProcessPool, RuntimeError):  # it died between two calls
        _worker_gone()
        return None


def _worker_gone() -> None:
    log.warning("learnai's tracking worker stopped; this process writes to the store")
    stop()


def _outcome(future: Future, fn: Callable[..., T], args: tuple, kwargs: dict) -> T:
    """What a submitted call gave: its value, its error raised here, its log lines
    logged here; made here instead if the worker died meanwhile."""
    from concurrent.futures.process import BrokenProcessPool

    try:
        ok, value, records = future.result()
    except (BrokenProcessPool, RuntimeError):  # the worker is gone: work here from now on
        _worker_gone()
        return fn(*args, **kwargs)
    for record in records:
        logging.getLogger(record.name).handle(record)
    if not ok:
        raise value
    return value


def in_worker(fn: Callable[..., T]) -> Callable[..., T]:
    """Make ``fn`` run in the worker whenever this process has one."""

    @functools.wraps(fn)
    def forward(*args: Any, **kwargs: Any) -> T:
        if _pool is None:
            return fn(*args, **kwargs)
        return call(forward, *args, **kwargs)  # there, no worker: fn runs

    return forward


def stop() -> None:
    """Let the worker finish what it was given, then end it."""
    global _pool
    pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


class _AfterStart:
    """What the worker's start of a run gives (its id, name, experiment): reading it
    waits for a run that is still being created."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = "_" + name

    def __get__(self, recorder: Any, owner: type | None = None) -> Any:
        if recorder is None:
            return self
        recorder._resolve()
        return getattr(recorder, self.slot)

    def __set__(self, recorder: Any, value: Any) -> None:
        setattr(recorder, self.slot, value)


class RemoteRecorder(RunRecorder):
    """A run recorded through the worker: the same batching, the writes made there.

    A run started without waiting (:func:`start_run` with ``wait=False``) trains while
    the worker still creates it: its writes are held until it exists, in order, and go
    out with the first write after that, a flush, its files or its end; reading its
    ``run_id`` waits for it. If it could not be created, that error is raised there.
    """

    def __init__(
        self,
        uri: str,
        run_id: str,
        flush_every_s: float = 5.0,
        starting: tuple[Future, tuple] | None = None,
    ) -> None:
        # the worker's answer to _start while it is pending, and what _start was given
        self._starting, self._start_args = starting or (None, ())
        self._start_error: Exception | None = None
        self._run_name: str | None = None
        self._experiment_id: str | None = None
        self._held: list[tuple[list, list, list]] = []  # writes made before the run existed
        super().__init__(None, run_id, flush_every_s)
        self.uri = uri

    run_id = _AfterStart()
    run_name = _AfterStart()
    experiment_id = _AfterStart()

    @property
    def started(self) -> bool:
        """Whether the run exists (or failed to): nothing about it waits any more."""
        return self._starting is None or self._starting.done()

    def _resolve(self) -> None:
        if self._start_error is not None:
            raise self._start_error
        starting, self._starting = self._starting, None
        if starting is None:
            return
        try:
            self._run_id, self._run_name, self._experiment_id = _outcome(
                starting, _start, self._start_args, {}
            )
        except Exception as exc:
            self._start_error = exc
            raise
        held, self._held = self._held, []
        for metrics, params, tags in held:
            call(_write, self.uri, self._run_id, metrics, params, tags)

    def _write(
        self,
        metrics: Iterable[tuple[str, float, int, int]] = (),
        params: Iterable[tuple[str, str]] = (),
        tags: Iterable[tuple[str, str]] = (),
    ) -> None:
        if not self.started:  # hold it: the worker is still creating the run
            self._held.append((list(metrics), list(params), list(tags)))
            return
        call(_write, self.uri, self.run_id, list(metrics), list(params), list(tags))

    def flush(self, force: bool = True) -> None:
        if force or self.started:  # a timed flush does not wait for the run to exist
            super().flush(force)

    def log_artifacts(self, local_dir: Path) -> None:
        call(_log_artifacts, self.uri, self.run_id, Path(local_dir))

    def _terminate(self, status: str, end_time: int | None) -> None:
        call(_terminate, self.uri, self.run_id, status, end_time)

    def end_despite(self, status: str, end_time: int | None = None) -> None:
        try:
            self._resolve()
        except Exception:  # no run was created: the error raised is about that
            return
        super().end_despite(status, end_time)


def start_run(
    uri: str,
    experiment: str,
    run_name: str | None,
    tags: Mapping[str, str] | None,
    parent_run_id: str | None,
    artifact_location: str | None,
    flush_every_s: float,
    wait: bool = True,
) -> RemoteRecorder:
    """:meth:`RunRecorder.start` in the worker; the run is tagged with this process, whose
    death (not the worker's) leaves it for the next run to reap. Without ``wait``, the
    recorder comes back at once and the run is created while this process goes on (a
    single run trains while a new store's tables are made)."""
    import time

    from learnai.reaping import process_tags

    tags = {**process_tags(), **(tags or {})}
    started = int(time.time() * 1000)  # now, not when the worker gets to it
    args = (uri, experiment, run_name, tags, parent_run_id, artifact_location, started)
    starting = None if wait else _submit(_start, args, {})
    if starting is None:
        run_id, name, experiment_id = call(_start, *args)
        recorder = RemoteRecorder(uri, run_id, flush_every_s)
        recorder.run_name, recorder.experiment_id = name, experiment_id
        return recorder
    return RemoteRecorder(uri, "", flush_every_s, (starting, args))


# What runs in the worker: RunRecorder's own code, on the worker's client.
def _start(
    uri: str,
    experiment: str,
    run_name: str | None,
    tags: dict[str, str],
    parent_run_id: str | None,
    artifact_location: str | None,
    start_time: int | None = None,
) -> tuple[str, str | None, str | None]:
    recorder = RunRecorder.start(
        uri, experiment, run_name, tags, parent_run_id, artifact_location, start_time=start_time
    )
    return recorder.run_id, recorder.run_name, recorder.experiment_id


def _recorder(uri: str, run_id: str) -> RunRecorder:
    from learnai.stores import open_store

    return RunRecorder(open_store(uri), run_id)


def _write(uri: str, run_id: str, metrics: list, params: list, tags: list) -> None:
    _recorder(uri, run_id)._write(metrics, params, tags)


def _log_artifacts(uri: str, run_id: str, local_dir: Path) -> None:
    _recorder(uri, run_id).log_artifacts(local_dir)


def _terminate(uri: str, run_id: str, status: str, end_time: int | None) -> None:
    _recorder(uri, run_id)._terminate(status, end_time)
