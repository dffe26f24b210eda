"""Every MLflow call of learnai lives here.

Runs are written through an explicit ``MlflowClient`` bound to ``tracking.uri`` (never
the process-global fluent state), with batched writes: params in one call, metrics
buffered and flushed every few seconds, artifacts copied in one call at the end.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from learnai.train import TrainState

PARENT_TAG = "mlflow.parentRunId"
RUN_NAME_TAG = "mlflow.runName"
# The experiment kind MLflow 3's UI reads (its kind selector writes it): learnai's
# experiments hold model-training runs, not GenAI traces. MLflow 3.17's UI picks its
# landing view from the browser's GenAI / Model training switch, so links add
# ``?workflowType=machine_learning`` as well (see learnai.ui_links).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
MAX_BATCH = 1000  # MLflow's limit on metrics per log_batch call
# The password may contain '/' (base64 secrets do); it ends at the last '@' of the URL.
_SECRET = re.compile(r"(?P<scheme>[a-zA-Z][\w+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^\s]+)@")


def mask_secrets(value: str) -> str:
    """Hide the password of any ``scheme://user:password@host`` URL inside ``value``."""
    return _SECRET.sub(lambda m: f"{m['scheme']}{m['user']}:***@", value)


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


def sqlite_path(uri: str) -> Path | None:
    """The database file behind a ``sqlite:///`` URI, or None for other stores."""
    if uri.startswith("sqlite:///") and ":memory:" not in uri:
        return Path(uri[len("sqlite:///") :].split("?")[0])
    return None


_clients: dict[str, MlflowClient] = {}


def open_store(uri: str) -> MlflowClient:
    """A client for ``uri``; a fresh SQLite store is created once, under a file lock.

    Several processes creating one SQLite schema at the same moment race (both run the
    migrations); the lock makes the first one create it and the others wait.
    """
    if uri in _clients:
        return _clients[uri]
    # Progress bars for local artifact copies only clutter the sweep's console output.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # MLflow 3 sends usage telemetry from every logging call; off unless the user opts in
    # (MLFLOW_DISABLE_TELEMETRY=false): it costs time and a tracker should not phone home.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from mlflow import MlflowClient

    db = sqlite_path(uri)
    if db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(db) + ".lock"):
            client = MlflowClient(tracking_uri=uri)
            client.search_experiments(max_results=1)  # creates or upgrades the schema
    else:
        client = MlflowClient(tracking_uri=uri)
    _clients[uri] = client
    return client


def ensure_experiment(client: MlflowClient, name: str, artifact_location: str | None = None) -> str:
    """The id of experiment ``name``, created (race-free) if it does not exist yet.

    New experiments get the model-training kind tag; older ones get it on first use.
    """
    found = client.get_experiment_by_name(name)
    if found is not None:
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


class RunRecorder:
    """One MLflow run: created on start, written in batches, ended with a status."""

    def __init__(self, client: MlflowClient, run_id: str, flush_every_s: float = 5.0) -> None:
        self.client = client
        self.run_id = run_id
        self.flush_every_s = flush_every_s
        self._pending: list[Any] = []
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
        client = open_store(uri)
        experiment_id = ensure_experiment(client, experiment, artifact_location)
        all_tags = dict(tags or {})
        if parent_run_id:
            all_tags[PARENT_TAG] = parent_run_id
        run = client.create_run(experiment_id, tags=all_tags, run_name=run_name)
        return cls(client, run.info.run_id, flush_every_s)

    def log_params(self, params: Mapping[str, str]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)) for k, v in params.items()]
        for i in range(0, len(items), 100):  # MLflow caps params per batch at 100
            self.client.log_batch(self.run_id, params=items[i : i + 100])

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        from mlflow.entities import RunTag

        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def add_metrics(self, values: Mapping[str, float], step: int = 0) -> None:
        """Queue metrics; they reach the store on the next :meth:`flush`."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self._pending += [Metric(k, float(v), now, step) for k, v in values.items()]

    def add_series(self, name: str, values: Iterable[float], start_step: int = 0) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self._pending += [Metric(name, float(v), now, start_step + i) for i, v in enumerate(values)]

    def flush(self, force: bool = True) -> None:
        """Write queued metrics; without ``force``, only if ``flush_every_s`` has passed."""
        if not self._pending:
            return
        if not force and time.monotonic() - self._last_flush < self.flush_every_s:
            return
        pending, self._pending = self._pending, []
        for i in range(0, len(pending), MAX_BATCH):
            self.client.log_batch(self.run_id, metrics=pending[i : i + MAX_BATCH])
        self._last_flush = time.monotonic()

    def log_artifacts(self, local_dir: Path) -> None:
        self.client.log_artifacts(self.run_id, str(local_dir))

    def end(self, status: str = "FINISHED") -> None:
        """Flush what is queued and close the run (FINISHED, FAILED or KILLED)."""
        try:
            self.flush()
        finally:
            self.client.set_terminated(self.run_id, status)


class EpochMetrics:
    """Training callback: queue each chunk's epoch losses, flush every few seconds."""

    def __init__(self, recorder: RunRecorder) -> None:
        self.recorder = recorder

    def on_chunk(self, state: TrainState) -> None:
        start = state.new_from
        self.recorder.add_series("train_loss", state.train_loss[start:], start)
        self.recorder.add_series("val_loss", state.val_loss[start:], start)
        self.recorder.flush(force=False)


# --- reading runs back (sweep summaries) -------------------------------------------------


def child_runs(uri: str, parent_run_id: str) -> list[Any]:
    """All runs whose ``mlflow.parentRunId`` is ``parent_run_id``, oldest first."""
    client = open_store(uri)
    parent = client.get_run(parent_run_id)
    runs = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.`{PARENT_TAG}` = '{parent_run_id}'",
        max_results=5000,
        order_by=["attributes.start_time ASC"],
    )
    return list(runs)


def metric_history(uri: str, run_id: str, key: str) -> list[float]:
    """A metric's values ordered by step."""
    history = open_store(uri).get_metric_history(run_id, key)
    return [m.value for m in sorted(history, key=lambda m: m.step)]


def download_artifact(uri: str, run_id: str, path: str, dst: Path) -> Path | None:
    """Fetch one artifact of a run into ``dst``; None if the run does not have it."""
    try:
        local = open_store(uri).download_artifacts(run_id, path, str(dst))
    except Exception:
        return None
    return Path(local)


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
