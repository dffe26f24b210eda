"""Every MLflow call of learnai lives here.

Runs are written through an explicit ``MlflowClient`` bound to ``tracking.uri`` (never
the process-global fluent state), with batched writes: params in one call, metrics
buffered and flushed every few seconds, artifacts copied in one call at the end.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock

# Opening stores and masking secrets live in their own modules; re-exported here
# because callers reach them through ``tracking``.
from learnai.reaping import process_tags, reap_stale_runs
from learnai.secrets import mask_secrets
from learnai.stores import open_store, prepare_in_background, sqlite_path

__all__ = ["mask_secrets", "open_store", "prepare_in_background", "sqlite_path"]

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from learnai.loop import TrainState

log = logging.getLogger("learnai")

PARENT_TAG = "mlflow.parentRunId"
RUN_NAME_TAG = "mlflow.runName"
# The experiment kind MLflow 3's UI reads (its kind selector writes it): learnai's
# experiments hold model-training runs, not GenAI traces. MLflow 3.17's UI picks its
# landing view from the browser's GenAI / Model training switch, so links add
# ``?workflowType=machine_learning`` as well (see learnai.ui_links).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
MAX_BATCH = 1000  # MLflow's limit on metrics per log_batch call
MAX_NAME = 250  # MLflow's limit on run names (PostgreSQL enforces it)
MAX_TAG = 5000  # MLflow's limit on tag values in its SQL stores is 8000: stay well inside


def mask_overrides(overrides: Iterable[str]) -> str:
    """Overrides as one line, secrets masked on the parsed values (Hydra escapes ':' in
    override text, so masking the text alone would miss ``user\\:PW@host``)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    out = []
    for line in overrides:
        try:
            (o,) = OverridesParser.create().parse_overrides([line])
            value = o.value() if not o.is_sweep_override() else None
        except Exception:
            value = None
        if isinstance(value, str) and mask_secrets(value) != value:
            out.append(f"{line.split('=', 1)[0]}={mask_secrets(value)}")
        else:
            out.append(mask_secrets(line))
    return " ".join(out)


def limit_name(name: str) -> str:
    """A run name within MLflow's 250 characters."""
    return name if len(name) <= MAX_NAME else name[: MAX_NAME - 3] + "..."


def limit_tag(value: str) -> str:
    """A tag value well within MLflow's limit."""
    return value if len(value) <= MAX_TAG else value[: MAX_TAG - 3] + "..."


def resolve_uri(uri: str, base: Path) -> str:
    """Make a relative SQLite path absolute against ``base`` (the launch directory).

    ``sqlite:///mlruns/mlflow.db`` would otherwise follow whatever directory a job
    happens to run in.
    """
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        path = uri[len("sqlite:///") :]
        if path and path != ":memory:":
            return "sqlite:///" + str((base / path).resolve())
    return uri


def ensure_experiment(client: MlflowClient, name: str, artifact_location: str | None = None) -> str:
    """The id of experiment ``name``, created (race-free) if it does not exist yet.

    New experiments get the model-training kind tag; older ones get it on first use.
    """
    found = client.get_experiment_by_name(name)
    if found is not None:
        if found.lifecycle_stage == "deleted":  # MLflow refuses runs in it: say so, once
            from learnai.config import ConfigError

            raise ConfigError(
                f"invalid value for tracking.experiment: {name!r} (deleted in this store: "
                "restore it, e.g. from the MLflow UI's trash, or choose another name)"
            )
        if EXPERIMENT_KIND_TAG not in found.tags:
            try:
                client.set_experiment_tag(found.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
            except Exception as err:  # e.g. a server that only lets this user log runs
                import logging

                logging.getLogger("learnai").warning(
                    "could not tag experiment %r as model training: %s", name, err
                )
        return found.experiment_id
    db = sqlite_path(client.tracking_uri)
    if artifact_location is None and db is not None:
        artifact_location = (db.parent / "artifacts").as_uri()
    lock = FileLock(str(db) + ".lock") if db is not None else None
    if lock is not None:
        lock.acquire()
    try:
        found = client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        try:
            return client.create_experiment(
                name,
                artifact_location=artifact_location,
                tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND},
            )
        except Exception:  # another process (without a shared lock) created it first
            found = client.get_experiment_by_name(name)
            if found is None:
                raise
            return found.experiment_id
    finally:
        if lock is not None:
            lock.release()


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": "1"}``, secrets masked: MLflow params are strings."""
    out: dict[str, str] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "."))
        else:
            out[name] = mask_secrets(str(value))
    return out


_reaped: set[tuple[str, str]] = set()


class ParentRunError(RuntimeError):
    """A sweep job's parent run is missing or already ended: the job would be orphaned."""


def _check_parent(client: MlflowClient, parent_run_id: str) -> None:
    try:
        parent = client.get_run(parent_run_id)
    except Exception as err:
        raise ParentRunError(
            f"the sweep's parent run {parent_run_id} is not in this store "
            f"({err.__class__.__name__})"
        ) from err
    if parent.info.status != "RUNNING":
        raise ParentRunError(
            f"the sweep's parent run {parent_run_id} is {parent.info.status}, not RUNNING: "
            "a job cannot join a sweep that has ended"
        )


class RunRecorder:
    """One MLflow run: created on start, written in batches, ended with a status.

    Metrics wait in plain tuples until :meth:`flush`; every write goes through
    :meth:`_write`, :meth:`log_artifacts` and :meth:`_terminate`, the only methods that
    touch the store (:class:`learnai.tracking_worker.RemoteRecorder` runs those three in
    the sweep's tracking worker instead).
    """

    run_name: str | None = None  # MLflow's (possibly generated) name of the run
    experiment_id: str | None = None

    def __init__(
        self, client: MlflowClient | None, run_id: str, flush_every_s: float = 5.0
    ) -> None:
        self.client = client
        self.run_id = run_id
        self.flush_every_s = flush_every_s
        self._pending: list[tuple[str, float, int, int]] = []  # key, value, ms, step
        self._last_flush = time.monotonic()

    @classmethod
    def start(
        cls,
        uri: str,
        experiment: str,
        run_name: str | None = None,
        tags: Mapping[str, str] | None = None,
        parent_run_id: str | None = None,
        artifact_location: str | None = None,
        flush_every_s: float = 5.0,
        wait: bool = True,
        start_time: int | None = None,
    ) -> RunRecorder:
        """Create the run, started at ``start_time`` (ms since the epoch; default now).
        Without ``wait``, a tracking worker creates it while this process goes on (see
        :class:`learnai.tracking_worker.RemoteRecorder`)."""
        from learnai import tracking_worker

        if tracking_worker.active():  # this sweep's store calls run in its worker
            return tracking_worker.start_run(
                uri,
                experiment,
                run_name,
                tags,
                parent_run_id,
                artifact_location,
                flush_every_s,
                wait,
            )
        client = open_store(uri)
        experiment_id = ensure_experiment(client, experiment, artifact_location)
        if (uri, experiment_id) not in _reaped:
            _reaped.add((uri, experiment_id))
            if reaped := reap_stale_runs(client, experiment_id):
                log.warning(
                    "%d run(s) left RUNNING by a process that is gone: ended KILLED", reaped
                )
        all_tags = {**process_tags(), **(tags or {})}
        if parent_run_id:
            _check_parent(client, parent_run_id)
            all_tags[PARENT_TAG] = parent_run_id
        name = limit_name(run_name) if run_name else None
        run = client.create_run(experiment_id, start_time=start_time, tags=all_tags, run_name=name)
        recorder = cls(client, run.info.run_id, flush_every_s)
        recorder.run_name = run.info.run_name
        recorder.experiment_id = experiment_id
        return recorder

    def log_params(self, params: Mapping[str, str]) -> None:
        items = [(k, str(v)) for k, v in params.items()]
        for i in range(0, len(items), 100):  # MLflow caps params per batch at 100
            self._write(params=items[i : i + 100])

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self._write(tags=[(k, str(v)) for k, v in tags.items()])

    def add_metrics(self, values: Mapping[str, float], step: int = 0) -> None:
        """Queue metrics; they reach the store on the next :meth:`flush`."""
        now = int(time.time() * 1000)
        self._pending += [(k, float(v), now, step) for k, v in values.items()]

    def add_series(self, name: str, values: Iterable[float], start_step: int = 0) -> None:
        now = int(time.time() * 1000)
        self._pending += [(name, float(v), now, start_step + i) for i, v in enumerate(values)]

    def flush(self, force: bool = True) -> None:
        """Write queued metrics; without ``force``, only if ``flush_every_s`` has passed."""
        if not self._pending:
            return
        if not force and time.monotonic() - self._last_flush < self.flush_every_s:
            return
        pending, self._pending = self._pending, []
        for i in range(0, len(pending), MAX_BATCH):
            self._write(metrics=pending[i : i + MAX_BATCH])
        self._last_flush = time.monotonic()

    def end(self, status: str = "FINISHED", end_time: int | None = None) -> None:
        """Flush what is queued and close the run (FINISHED, FAILED or KILLED); its end
        time is now unless ``end_time`` (ms since the epoch) says when it really ended."""
        try:
            self.flush()
        finally:
            self._terminate(status, end_time)

    def end_despite(self, status: str, end_time: int | None = None) -> None:
        """:meth:`end`, but a store that refuses (full disk, gone) is logged in one line
        instead of raised, so the error that is ending the run stays the one reported;
        the run stays RUNNING until the next run in its experiment repairs it."""
        try:
            self.end(status, end_time)
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            log.error("could not end run %s as %s: %s", self.run_id, status, mask_secrets(first))

    # The store's side: one batch, the run's files, its end.
    def _write(
        self,
        metrics: Iterable[tuple[str, float, int, int]] = (),
        params: Iterable[tuple[str, str]] = (),
        tags: Iterable[tuple[str, str]] = (),
    ) -> None:
        from mlflow.entities import Metric, Param, RunTag

        self.client.log_batch(  # type: ignore[union-attr]
            self.run_id,
            metrics=[Metric(*m) for m in metrics],
            params=[Param(*p) for p in params],
            tags=[RunTag(*t) for t in tags],
        )

    def log_artifacts(self, local_dir: Path) -> None:
        self.client.log_artifacts(self.run_id, str(local_dir))  # type: ignore[union-attr]

    def _terminate(self, status: str, end_time: int | None) -> None:
        self.client.set_terminated(self.run_id, status, end_time=end_time)  # type: ignore[union-attr]


def recorder_for(uri: str, run_id: str) -> RunRecorder:
    """A recorder for an existing run (a sweep's parent, adding its study report)."""
    from learnai import tracking_worker

    if tracking_worker.active():
        return tracking_worker.RemoteRecorder(uri, run_id)
    return RunRecorder(open_store(uri), run_id)


class EpochMetrics:
    """Training callback: queue each chunk's epoch losses, flush every few seconds."""

    def __init__(self, recorder: RunRecorder) -> None:
        self.recorder = recorder

    def on_chunk(self, state: TrainState) -> None:
        start = state.new_from  # steps are epochs counted from 1, as plots and console show
        self.recorder.add_series("train_loss", state.train_loss[start:], start + 1)
        self.recorder.add_series("val_loss", state.val_loss[start:], start + 1)
        self.recorder.flush(force=False)


def ui_command(uri: str, experiment_id: str | None = None) -> str:
    """The shell command that opens the MLflow UI on this store, and, given the
    experiment, the link that opens its runs (not MLflow 3's default GenAI view)."""
    from learnai.ui_links import DEFAULT_UI, experiment_url

    if uri.startswith(("http://", "https://")):
        target = experiment_url(uri, experiment_id) if experiment_id else uri
        return f"open {mask_secrets(target)} in a browser"
    import sys

    # The mlflow script next to this interpreter: works without activating the venv.
    script = Path(sys.executable).parent / "mlflow"
    if script.exists():
        try:
            command = str(script.relative_to(Path.cwd()))
        except ValueError:
            command = str(script)
    else:
        command = "mlflow"
    text = f"{command} ui --backend-store-uri {mask_secrets(uri)}"
    if experiment_id:
        text += f" then open {experiment_url(DEFAULT_UI, experiment_id)}"
    return text
