"""Helpers for the sweep tests: launch ``python -m learnai -m ...`` and read back what it
recorded, in MLflow (the parent run, its children) and in the Optuna study.

Every sweep runs in a subprocess whose working directory is a fresh temporary directory,
so the default stores (``sqlite:///mlruns/mlflow.db``, ``sqlite:///mlruns/optuna.db``)
and Hydra's ``multirun/`` folder land there. Imported as a plain module: ``tests/`` has
no ``__init__.py``, so pytest's default import mode puts it on ``sys.path``.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import optuna
    from mlflow import MlflowClient
    from mlflow.entities import Run

TIMEOUT_S = 300
PARENT_TAG = "mlflow.parentRunId"

# Small enough that a job takes about a second, big enough for outcomes to mean
# something (lr 0.01 converges on the default problem in 20 epochs, lr 1 diverges).
TINY = (
    "data.n_samples=200",
    "trainer.epochs=20",
    "trainer.progress=false",
    "trainer.device=cpu",
    "trainer.num_threads=1",  # sweeps run side by side: one core each
    "trainer.animation.frames=5",
    "trainer.animation.width=160",
    "trainer.animation.height=120",
)
# Optuna tests do not look at animations: skip rendering them in every trial.
TINY_NO_ANIMATION = (*TINY, "trainer.animation.enabled=false")


def learnai_env() -> dict[str, str]:
    env = dict(os.environ)
    # A developer's shell must not change what the tests see.
    for key in ("HYDRA_FULL_ERROR", "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME"):
        env.pop(key, None)
    env["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    return env


def run_python(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python <args>`` in ``cwd`` (environment: :func:`learnai_env`), output captured."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=learnai_env() if env is None else env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )


def check_exit(
    proc: subprocess.CompletedProcess[str], expect: int | None, what: str
) -> subprocess.CompletedProcess[str]:
    """``proc``, or a test failure with its output's tail unless it exited ``expect``."""
    if expect is not None and proc.returncode != expect:
        pytest.fail(
            f"{what} exited {proc.returncode}, expected {expect}\n"
            f"--- stdout\n{proc.stdout[-6000:]}\n--- stderr\n{proc.stderr[-6000:]}"
        )
    return proc


def start_learnai(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """``python -m learnai <args>`` in the background, in its own process group as a
    scheduler's job is (signal it with ``os.killpg(proc.pid, ...)``)."""
    return subprocess.Popen(
        [sys.executable, "-m", "learnai", *args],
        cwd=cwd,
        env=learnai_env() if env is None else env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def run_learnai(cwd: Path, *args: str, expect: int | None = 0) -> subprocess.CompletedProcess[str]:
    """Run ``python -m learnai <args>`` in ``cwd``; fail unless it exits with ``expect``."""
    return check_exit(run_python(cwd, "-m", "learnai", *args), expect, f"learnai {' '.join(args)}")


def tracking_uri(cwd: Path) -> str:
    return f"sqlite:///{(cwd / 'mlruns' / 'mlflow.db').resolve()}"


def optuna_storage(cwd: Path) -> str:
    """The URL the sweeper's default storage resolves to when launched from ``cwd``."""
    return "sqlite:///" + str((cwd / "mlruns" / "optuna.db").resolve())


def mlflow_client(cwd: Path) -> MlflowClient:
    from mlflow import MlflowClient

    db = cwd / "mlruns" / "mlflow.db"
    assert db.is_file(), f"no MLflow store at {db}"
    return MlflowClient(tracking_uri=tracking_uri(cwd))


def all_runs(client: MlflowClient, experiment: str) -> list[Run]:
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"experiment {experiment!r} was not created"
    return list(client.search_runs([exp.experiment_id], max_results=1000))


def parent_runs(client: MlflowClient, experiment: str) -> list[Run]:
    """The sweeps' parent runs of ``experiment``, oldest first."""
    runs = [r for r in all_runs(client, experiment) if r.data.tags.get("learnai.sweep") == "true"]
    return sorted(runs, key=lambda r: r.info.start_time)


def child_runs(client: MlflowClient, experiment: str, parent_id: str) -> list[Run]:
    return [r for r in all_runs(client, experiment) if r.data.tags.get(PARENT_TAG) == parent_id]


def wait_for_runs(
    uri: str,
    experiment: str,
    count: int = 1,
    *,
    children: bool = True,
    running: bool = False,
    job: subprocess.Popen[str] | None = None,
    timeout: float = 120,
) -> list[Run]:
    """Poll the SQLite store at ``uri`` until ``count`` runs of ``experiment`` exist
    (sweep jobs' child runs with ``children``, RUNNING ones with ``running``); return them.

    The store is opened as learnai opens it, under its schema lock: a plain MlflowClient
    polling a new store would create its tables beside learnai. ``job``, the learnai
    process: if it ends first, the test fails at once with its output.
    """
    from learnai.stores import open_store, sqlite_path

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if job is not None and job.poll() is not None:
            pytest.fail(f"learnai ended before its runs showed up: {job.communicate()}")
        if sqlite_path(uri).exists():
            client = open_store(uri)
            exp = client.get_experiment_by_name(experiment)
            runs = client.search_runs([exp.experiment_id]) if exp else []
            runs = [r for r in runs if not children or PARENT_TAG in r.data.tags]
            runs = [r for r in runs if not running or r.info.status == "RUNNING"]
            if len(runs) >= count:
                return runs
        time.sleep(0.2)
    kind = ("RUNNING " if running else "") + ("child " if children else "")
    pytest.fail(f"{count} {kind}runs of {experiment!r} never showed up")


def wait_for_child_runs(
    cwd: Path, experiment: str, count: int, running: bool = False, timeout: float = 120
) -> list[Run]:
    """:func:`wait_for_runs` for the child runs of a sweep started in ``cwd``."""
    return wait_for_runs(tracking_uri(cwd), experiment, count, running=running, timeout=timeout)


def artifact_names(client: MlflowClient, run_id: str) -> set[str]:
    return {a.path for a in client.list_artifacts(run_id)}


def download(client: MlflowClient, run_id: str, name: str, dst: Path) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    return Path(client.download_artifacts(run_id, name, str(dst)))


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def load_study(cwd: Path, name: str) -> optuna.Study:
    import optuna

    return optuna.load_study(study_name=name, storage=optuna_storage(cwd))


def study_names(cwd: Path) -> list[str]:
    import optuna

    if not (cwd / "mlruns" / "optuna.db").exists():
        return []
    return list(optuna.get_all_study_names(optuna_storage(cwd)))


def error_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The last non-empty line of stderr: where learnai prints a config error."""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines, f"nothing on stderr; stdout:\n{proc.stdout}"
    return lines[-1]


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def proc_stat(pid: int | str) -> list[str]:
    """The fields of /proc/PID/stat after the command name, the state (field 3) first:
    split after the last ")", as the name itself may hold spaces and parentheses."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _started(pid: int) -> int:
    """When ``pid`` started, in clock ticks since boot (field 22 of /proc/PID/stat)."""
    try:
        return int(proc_stat(pid)[19])
    except (OSError, IndexError, ValueError):
        return 0


def wait_for_workers(proc: subprocess.Popen[str], timeout: float = 120) -> tuple[int, int]:
    """The pids of a sweep's tracking worker and picture worker (spawned processes, not
    the resource tracker), found among its children; the tracking worker starts first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        spawned = [
            pid
            for pid in _children(proc.pid)
            if "spawn_main" in (line := _cmdline(pid)) and "resource_tracker" not in line
        ]
        if len(spawned) == 2:
            tracking, picture = sorted(spawned, key=lambda pid: (_started(pid), pid))
            return tracking, picture
        time.sleep(0.05)
    pytest.fail("the sweep did not start its two workers")


def group_is_gone(pgid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def finish(proc: subprocess.Popen[str]) -> str:
    """Wait for a sweep started by :func:`start_learnai`; its stdout and stderr. Its
    group is killed if it hangs."""
    try:
        out, err = proc.communicate(timeout=TIMEOUT_S)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return out + err


def sweep_losing_a_worker(cwd: Path, experiment: str, worker: str) -> tuple[int, str]:
    """A 4-job sweep whose ``worker`` ("tracking" or "picture") is SIGKILLed (the OOM
    killer) once its first job's run exists; the sweep's exit code and output."""
    proc = start_learnai(
        cwd, "-m", "optimizer.lr=0.01,0.02,0.03,1", f"tracking.experiment={experiment}", *TINY
    )
    tracking, picture = wait_for_workers(proc)
    wait_for_child_runs(cwd, experiment, 1)
    os.kill(tracking if worker == "tracking" else picture, signal.SIGKILL)
    output = finish(proc)
    return proc.returncode, output


def has_joblib_launcher() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("hydra_plugins.hydra_joblib_launcher") is not None
    except ModuleNotFoundError:
        return False


needs_joblib = pytest.mark.skipif(
    not has_joblib_launcher(), reason="hydra-joblib-launcher is not installed"
)


def describe_trials(study: optuna.Study) -> str:
    """One line per trial, for assertion messages."""
    return "\n".join(
        f"  #{t.number} {t.state.name} value={t.value} params={t.params} attrs={t.user_attrs}"
        for t in study.trials
    )


class Scenarios:
    """Run a test module's end-to-end sweeps side by side, before its tests ask for them.

    A scenario is a function of a fresh directory (it launches one or more sweeps there
    and returns what the tests check). Most of a sweep's time is process start-up and
    single-threaded Python, so running them concurrently (one per core) cuts wall time.
    :meth:`start` submits the scenarios that the module's *selected* tests use, through
    fixtures named like the scenarios; :meth:`result` waits for one, or runs it on the
    spot if it was not started.
    """

    def __init__(self, functions: dict[str, Callable[[Path], Any]], tmp_path_factory: Any) -> None:
        self.functions = functions
        self.factory = tmp_path_factory
        self.pool = ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1)))
        self.futures: dict[str, Future[Any]] = {}

    def start(self, request: pytest.FixtureRequest) -> None:
        items = [i for i in request.session.items if getattr(i, "module", None) is request.module]
        for name, function in self.functions.items():
            if any(name in getattr(item, "fixturenames", ()) for item in items):
                self.futures[name] = self.pool.submit(function, self.factory.mktemp(name))

    def result(self, name: str) -> Any:
        if name not in self.futures:
            self.futures[name] = self.pool.submit(self.functions[name], self.factory.mktemp(name))
        return self.futures[name].result()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
