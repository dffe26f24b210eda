"""One MLflow run, written through an explicit ``MlflowClient`` bound to ``tracking.uri``
(never the process-global fluent state): params in one call, metrics in batches every
few seconds, artifacts in one call at the end, and an end status whatever happens.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from learnai.config import ConfigError
from learnai.secrets import mask_secrets
from learnai.tracking.reaping import process_tags, reap_stale_runs
from learnai.tracking.stores import open_store
from learnai.tracking.uris import sqlite_path

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger("learnai")

PARENT_TAG = "mlflow.parentRunId"
# The experiment kind MLflow 3's UI reads (its kind selector writes it): learnai's
# experiments hold model-training runs, not GenAI traces. MLflow 3.17's UI picks its
# landing view from the browser's GenAI / Model training switch, so links add
# ``?workflowType=machine_learning`` as well (see learnai.tracking.links).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
MAX_BATCH = 1000  # MLflow's limit on metrics per log_batch call
MAX_PARAMS = 100  # MLflow's limit on params per log_batch call
MAX_NAME = 250  # MLflow's limit on run names (PostgreSQL enforces it)
MAX_TAG = 5000  # MLflow's limit on tag values in its SQL stores is 8000: stay well inside


def limit_name(name: str) -> str:
    """A run name within MLflow's 250 characters."""
    return name if len(name) <= MAX_NAME else name[: MAX_NAME - 3] + "..."


def limit_tag(value: str) -> str:
    """A tag value well within MLflow's limit."""
    return value if len(value) <= MAX_TAG else value[: MAX_TAG - 3] + "..."


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


def ensure_experiment(client: MlflowClient, name: str, artifact_location: str | None = None) -> str:
    """The id of experiment ``name``, created (race-free) if it does not exist yet.

    New experiments get the model-training kind tag; older ones get it on first use. An
    experiment deleted in the store is a :class:`ConfigError`: MLflow refuses runs in it.
    """
    found = client.get_experiment_by_name(name)
    if found is not None:
        _check_live(found, name)
        if EXPERIMENT_KIND_TAG not in found.tags:
            try:
                client.set_experiment_tag(found.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
            except Exception as err:  # e.g. a server that only lets this user log runs
                # (a user who may not even do that hears it once, from creating the run)
                denied = getattr(err, "error_code", "") in ("PERMISSION_DENIED", "UNAUTHENTICATED")
                level = logging.DEBUG if denied else logging.WARNING
                log.log(level, "could not tag experiment %r as model training: %s", name, err)
        return found.experiment_id
    db = sqlite_path(client.tracking_uri)
    if artifact_location is None and db is not None:
        artifact_location = (db.parent / "artifacts").as_uri()
    try:
        return client.create_experiment(
            name, artifact_location=artifact_location, tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND}
        )
    except Exception:  # another process created it first
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def _check_live(experiment: Any, name: str) -> None:
    if experiment.lifecycle_stage == "deleted":
        raise ConfigError(
            f"invalid value for tracking.experiment: {name!r} (deleted in this store: "
            "restore it, e.g. from the MLflow UI's trash, or choose another name)"
        )


class ParentRunError(RuntimeError):
    """A sweep job's parent run is missing or already ended: the job would be orphaned."""


def check_parent(client: MlflowClient, parent_run_id: str) -> None:
    """Refuse to join a parent that is not in the store or not RUNNING."""
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


_reaped: set[tuple[str, str]] = set()  # (store, experiment) already reaped by this process


def experiment_for_run(uri: str, experiment: str, artifact_location: str | None = None) -> str:
    """The experiment a new run goes into, with runs left RUNNING by dead processes of
    this host ended first (once per process and experiment)."""
    client = open_store(uri)
    experiment_id = ensure_experiment(client, experiment, artifact_location)
    if (uri, experiment_id) not in _reaped:
        _reaped.add((uri, experiment_id))
        if reaped := reap_stale_runs(client, experiment_id):
            log.warning("%d run(s) left RUNNING by a process that is gone: ended KILLED", reaped)
    return experiment_id


class RunRecorder:
    """One MLflow run: created by :meth:`start`, written in batches, ended with a status."""

    def __init__(
        self,
        client: MlflowClient,
        run_id: str,
        flush_every_s: float = 5.0,
        run_name: str = "",
        experiment_id: str | None = None,
    ) -> None:
        self.client = client
        self.run_id = run_id
        self.run_name = run_name
        self.experiment_id = experiment_id
        self.flush_every_s = flush_every_s
        self._pending: list[tuple[str, float, int, int]] = []  # key, value, ms, step
        self.params: dict[str, str] = {}  # as logged: the run's model carries them too
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
    ) -> RunRecorder:
        """Create the run (in ``experiment``, under ``parent_run_id`` if given)."""
        from learnai.tracking.checks import check_experiment_artifacts, permission_error

        client = open_store(uri)
        try:
            experiment_id = experiment_for_run(uri, experiment, artifact_location)
            location = client.get_experiment(experiment_id).artifact_location
            check_experiment_artifacts(location, experiment)  # before the run, not after
            all_tags = {**process_tags(), **(tags or {})}
            if parent_run_id:
                check_parent(client, parent_run_id)
                all_tags[PARENT_TAG] = parent_run_id
            name = limit_name(run_name) if run_name else None
            run = client.create_run(experiment_id, tags=all_tags, run_name=name)
        except Exception as err:  # a READ-only user: one line, before any training
            if (refusal := permission_error(err, uri, experiment)) is not None:
                raise refusal from None
            raise
        return cls(client, run.info.run_id, flush_every_s, run.info.run_name or "", experiment_id)

    @classmethod
    def attach(cls, uri: str, run_id: str) -> RunRecorder:
        """A recorder for an existing run (a sweep's parent, adding its report)."""
        return cls(open_store(uri), run_id)

    def log_params(self, params: Mapping[str, str]) -> None:
        items = [(k, str(v)) for k, v in params.items()]
        self.params.update(items)
        for i in range(0, len(items), MAX_PARAMS):
            self._write(params=items[i : i + MAX_PARAMS])

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

    def log_artifacts(self, local_dir: Path) -> None:
        self.client.log_artifacts(self.run_id, str(local_dir))

    def rename(self, name: str) -> None:
        """Give the run its final name (its verdict is known only after training)."""
        name = limit_name(name)
        self.client.update_run(self.run_id, name=name)
        self.run_name = name

    def log_model(
        self, model: Any, example: Any, step: int = 0, metrics: Iterable[str] = ()
    ) -> str | None:
        """Log the trained ``model`` with MLflow's PyTorch flavour (``example``: a few
        input rows), with the run's params and its ``metrics`` at ``step`` (the final
        values, logged already); returns its LoggedModel id (see
        :mod:`learnai.tracking.models`)."""
        from learnai.tracking.models import log_torch_model

        self.flush()  # the model's metrics follow the run's
        if self.experiment_id is None:
            self.experiment_id = self.client.get_run(self.run_id).info.experiment_id
        return log_torch_model(
            self.client,
            self.experiment_id,
            self.run_id,
            model,
            example,
            step,
            params=self.params,
            metrics=metrics,
        )

    def share_view(self, state: Mapping[str, Any]) -> str | None:
        """Store a runs-table view on the run's experiment; returns the key a link opens
        it with (see :func:`learnai.tracking.links.view_key`), or None when the store
        refuses experiment tags (e.g. a server that only lets this user log runs): one
        line, and links then sort best first without it."""
        from learnai.tracking.links import VIEW_TAG_PREFIX, view_key

        text, key = view_key(state)
        if self.experiment_id is None:
            self.experiment_id = self.client.get_run(self.run_id).info.experiment_id
        try:
            self.client.set_experiment_tag(self.experiment_id, VIEW_TAG_PREFIX + key, text)
        except Exception as err:
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            log.warning("could not store the runs-table view: %s", mask_secrets(first)[:200])
            return None
        return key

    def end(self, status: str = "FINISHED") -> None:
        """Flush what is queued and close the run (FINISHED, FAILED or KILLED)."""
        try:
            self.flush()
        finally:
            self.client.set_terminated(self.run_id, status)

    def end_despite(self, status: str) -> bool:
        """:meth:`end`, but a store that refuses (full disk, gone) is logged in one line
        instead of raised, so the error that is ending the run stays the one reported;
        the run stays RUNNING until the next run in its experiment repairs it. Whether
        the run was ended."""
        try:
            self.end(status)
        except Exception as exc:
            from learnai.tracking.failures import explain_failure

            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            if explain_failure(exc, "") is not None:  # gone or full: its own line says which
                first = "the store failed; the next command on it ends it KILLED"
            log.error("could not end run %s as %s: %s", self.run_id, status, mask_secrets(first))
            return False
        return True

    def _write(
        self,
        metrics: Iterable[tuple[str, float, int, int]] = (),
        params: Iterable[tuple[str, str]] = (),
        tags: Iterable[tuple[str, str]] = (),
    ) -> None:
        from mlflow.entities import Metric, Param, RunTag

        self.client.log_batch(
            self.run_id,
            metrics=[Metric(*m) for m in metrics],
            params=[Param(*p) for p in params],
            tags=[RunTag(*t) for t in tags],
        )


class LossChunk(Protocol):
    """What :class:`EpochMetrics` reads of the training loop's state."""

    new_from: int  # the first epoch (0-based) not reported yet
    train_loss: list[float]
    val_loss: list[float]


def log10_losses(values: Iterable[float]) -> list[tuple[int, float]]:
    """(index, log10 value) of the positive finite losses: a blow-up to 1e19 is 19, not a
    spike that flattens a converged run's 0.01 to zero on the same chart."""
    return [(i, math.log10(v)) for i, v in enumerate(values) if 0 < v < math.inf]


class EpochMetrics:
    """Training callback: queue each chunk's epoch losses (and their log10, which charts
    well next to a diverged run), flush every few seconds."""

    def __init__(self, recorder: RunRecorder) -> None:
        self.recorder = recorder

    def on_chunk(self, state: LossChunk) -> None:
        start = state.new_from  # steps are epochs counted from 1, as plots and console show
        self.recorder.add_series("train_loss", state.train_loss[start:], start + 1)
        self.recorder.add_series("val_loss", state.val_loss[start:], start + 1)
        for key, losses in (("train_loss", state.train_loss), ("val_loss", state.val_loss)):
            for i, value in log10_losses(losses[start:]):
                self.recorder.add_metrics({f"log10_{key}": value}, step=start + 1 + i)
        self.recorder.flush(force=False)
