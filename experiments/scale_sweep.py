"""Many workers, one study, measured: trials per minute of 1, 2 and 4 ``python -m learnai
-m`` workers on one PostgreSQL Optuna study logging to ``python -m learnai.commands.server``,
against the single-process sweep on the default SQLite stores.

Every side runs the same number of trials of the same cost: one fixed network (depth 3)
and learning rates in a band that neither diverges nor stalls, no pruning, so a sampler
seed cannot change the work. The PostgreSQL sides share one long-lived server and
databases, as a team's would, each side with its own study and MLflow experiment; the
SQLite side gets a fresh directory. The clock covers what a user waits for: every
worker's start-up, its trials, its exit.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from experiments.scale_infra import Server, bench_env, db_active_s, machine_cpu, stop_group


@dataclass
class Workload:
    """One trial's training; ``threads`` torch threads in every worker."""

    n_samples: int = 20_000
    epochs: int = 300
    threads: int = 1

    def overrides(self, name: str) -> list[str]:
        """The sweep's overrides; ``name``: its study and MLflow experiment."""
        return [
            "experiment=lr_depth_search",
            # the experiment's median pruner, never started: every trial trains all epochs
            "hydra.sweeper.pruner.n_startup_trials=1000000",
            "model.depth=3",  # a fixed value wins over the experiment's sweep of it
            "optimizer.lr=tag(log, interval(1e-3, 3e-2))",  # converges at every draw
            f"data.n_samples={self.n_samples}",
            f"trainer.epochs={self.epochs}",
            "trainer.animation.enabled=false",
            "trainer.progress=false",
            "trainer.device=cpu",
            f"trainer.num_threads={self.threads}",
            f"hydra.sweeper.study_name={name}",
            f"tracking.experiment={name}",
        ]


def _wait_all(procs: list[subprocess.Popen[bytes]], timeout_s: float) -> list[float]:
    """Wait for every worker (bounded); return each one's CPU seconds (``wait4``)."""
    cpu: dict[int, float] = {}
    deadline = time.monotonic() + timeout_s
    while len(cpu) < len(procs):
        if time.monotonic() > deadline:
            raise TimeoutError(f"workers still running after {timeout_s:.0f} s")
        for p in procs:
            if p.pid in cpu:
                continue
            pid, status, usage = os.wait4(p.pid, os.WNOHANG)
            if pid:
                p.returncode = os.waitstatus_to_exitcode(status)
                cpu[p.pid] = usage.ru_utime + usage.ru_stime
        time.sleep(0.05)
    return [cpu[p.pid] for p in procs]


def _launch(cwd: Path, args: list[str]) -> subprocess.Popen[bytes]:
    cwd.mkdir(parents=True, exist_ok=True)
    with open(cwd / "worker.log", "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "learnai", "-m", *args],
            cwd=cwd,
            env=bench_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _study_summary(storage: str, name: str, expected: int) -> dict:
    """Trial count and the span from the first trial's start to the last one's end."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trials = optuna.load_study(study_name=name, storage=storage).trials
    done = [t for t in trials if t.state.name == "COMPLETE"]
    if len(done) != expected:
        states = sorted(t.state.name for t in trials)
        raise RuntimeError(f"expected {expected} COMPLETE trials, the study holds {states}")
    span = max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)
    return {"trials": len(done), "trial_span_s": span.total_seconds()}


def _measure(procs: list[subprocess.Popen[bytes]], timeout_s: float, logs: list[Path]) -> dict:
    start, (busy0, total0) = time.perf_counter(), machine_cpu()
    try:
        worker_cpu = _wait_all(procs, timeout_s)
    finally:
        for p in procs:
            if p.returncode is None:
                stop_group(p)
    wall = time.perf_counter() - start
    busy1, total1 = machine_cpu()
    for p, log in zip(procs, logs, strict=True):
        if p.returncode != 0:
            raise RuntimeError(f"a worker exited {p.returncode}:\n{log.read_text()[-3000:]}")
    return {
        "wall_s": wall,
        "worker_cpu_s": sum(worker_cpu),
        "machine_busy": (busy1 - busy0) / (total1 - total0),  # 1.0 = every core busy
    }


def run_sqlite(work: Workload, trials: int, timeout_s: float) -> dict:
    """The single-process sweep on the default stores (SQLite under ./mlruns)."""
    with tempfile.TemporaryDirectory(prefix="learnai-scale-") as tmp:
        cwd = Path(tmp) / "w0"
        args = [*work.overrides("scale_sqlite"), f"hydra.sweeper.n_trials={trials}"]
        out = _measure([_launch(cwd, args)], timeout_s, [cwd / "worker.log"])
        out |= _study_summary(f"sqlite:///{cwd}/mlruns/optuna.db", "scale_sqlite", trials)
    return out


def run_postgres(
    work: Workload, trials: int, workers: int, name: str, server: Server, study_db: str,
    timeout_s: float,
) -> dict:  # fmt: skip
    """``workers`` processes, ``trials / workers`` each, on a new study called ``name``."""
    storage = study_db.replace("postgresql://", "postgresql+psycopg://", 1)
    with tempfile.TemporaryDirectory(prefix="learnai-scale-") as tmp:
        server0, db0 = server.cpu_s(), db_active_s(server.db, study_db)
        cwds = [Path(tmp) / f"w{i}" for i in range(workers)]
        procs = [
            _launch(
                cwd,
                [
                    *work.overrides(name),
                    f"hydra.sweeper.n_trials={trials // workers}",
                    f"hydra.sweeper.sampler.seed={i + 1}",  # one seed per worker
                    f"hydra.sweeper.storage={storage}",
                    f"tracking.uri={server.uri}",
                ],
            )
            for i, cwd in enumerate(cwds)
        ]
        out = _measure(procs, timeout_s, [c / "worker.log" for c in cwds])
        time.sleep(1.5)  # PostgreSQL publishes a backend's statistics within ~1 s
        out["server_cpu_s"] = server.cpu_s() - server0
        out["db_active_s"] = db_active_s(server.db, study_db) - db0
        out |= _study_summary(storage, name, trials)
    return out
