"""What the scale-out benchmarks stand on: throw-away PostgreSQL databases, a tracking
server started the documented way (``python -m learnai.commands.server``), and CPU accounting.

Every resource is a context manager that cleans up on any exit (an exception, Ctrl-C):
databases are dropped ``WITH (FORCE)``, a server's whole process group is stopped, and
every wait is bounded. CPU times come from ``/proc`` (Linux), so no extra dependency.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# The PostgreSQL server the benchmark creates its databases on (trust auth or PGPASSWORD).
PG = os.environ.get("LEARNAI_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
ADMIN_DB = os.environ.get("LEARNAI_BENCH_PG_ADMIN_DB", "test")
TICK = os.sysconf("SC_CLK_TCK")


def bench_env() -> dict[str, str]:
    """The environment of every child: no developer setting changes what is measured."""
    env = dict(os.environ, HYDRA_FULL_ERROR="0", MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false")
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "OMP_NUM_THREADS"):
        env.pop(key, None)
    return env


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG}/{ADMIN_DB}", autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql)


@contextlib.contextmanager
def pg_database(prefix: str = "learnai_bench") -> Iterator[str]:
    """A fresh, empty database; yields its ``postgresql://`` URI, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    _admin(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG}/{name}"
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def db_active_s(*uris: str) -> float:
    """Seconds PostgreSQL spent executing statements in these databases (PG >= 14).

    Backends report their statistics when idle or at exit, at most ~1 s late: read this
    a second after the clients are gone.
    """
    import psycopg

    names = [u.rsplit("/", 1)[1] for u in uris]
    with psycopg.connect(f"{PG}/{ADMIN_DB}", autocommit=True, connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(active_time), 0) FROM pg_stat_database WHERE datname = ANY(%s)",
            (names,),
        ).fetchone()
    return float(row[0]) / 1000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()  # fields after "(comm)"; [1] = ppid


def tree_cpu_s(root: int) -> float:
    """User + system CPU seconds of ``root`` and its live descendants (and of the children
    they have waited for), from /proc."""
    stats = {int(p): s for p in os.listdir("/proc") if p.isdigit() and (s := _stat(int(p)))}
    tree, frontier = set(), {root}
    while frontier:
        tree |= frontier
        frontier = {p for p, s in stats.items() if int(s[1]) in frontier} - tree
    # fields 14-17 of stat: utime stime cutime cstime (here at index 11-14)
    return sum(sum(int(x) for x in stats[p][11:15]) for p in tree if p in stats) / TICK


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, all cores, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])  # guest time is already inside user
    return (total - idle) / TICK, total / TICK


@dataclass
class Server:
    """A running ``python -m learnai.commands.server``; ``uri`` is what clients log to."""

    proc: subprocess.Popen[bytes]
    uri: str
    db: str
    log: Path
    startup_cpu_s: float = 0.0  # after /health answered, until idle

    def cpu_s(self) -> float:
        return tree_cpu_s(self.proc.pid)


def wait_http(url: str, proc: subprocess.Popen, log: Path, timeout_s: float = 120) -> None:
    """Until ``url`` answers 200; fails at once if ``proc`` (the server) exits."""
    import requests

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout_s:.0f} s:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def tracking_server(db: str, root: Path, workers: int, timeout_s: float = 120) -> Iterator[Server]:
    """``python -m learnai.commands.server --db DB --artifacts ROOT/artifacts --workers N``."""
    root.mkdir(parents=True, exist_ok=True)
    port, log = free_port(), root / "server.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "learnai.commands.server", "--db", db, "--artifacts",
             str(root / "artifacts"), "--port", str(port), "--workers", str(workers)],
            cwd=root, env=bench_env(), stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: stopped with its workers
        )  # fmt: skip
    try:
        uri = f"http://127.0.0.1:{port}"
        wait_http(f"{uri}/health", proc, log, timeout_s)
        server = Server(proc, uri, db, log)
        _settle(server, timeout_s)
        yield server
    finally:
        stop_group(proc)


def _settle(server: Server, timeout_s: float, quiet_cores: float = 0.05) -> None:
    """Wait until a fresh server is idle, so its start-up is not billed to what follows.

    ``/health`` answers long before the server is done starting: MLflow 3's job runner
    starts several consumer processes that import MLflow (~2 CPU s each), and each HTTP
    worker opens the store on its first request. A long-lived team server has paid that.
    """
    import requests

    start, cpu0 = time.monotonic(), server.cpu_s()
    url = f"{server.uri}/api/2.0/mlflow/experiments/get-by-name?experiment_name=Default"
    for _ in range(4 * 8):  # new connections: the kernel spreads them over the workers
        requests.get(url, timeout=30)
    while time.monotonic() - start < timeout_s:
        before = server.cpu_s()
        time.sleep(1.0)
        if server.cpu_s() - before < quiet_cores:
            server.startup_cpu_s = server.cpu_s() - cpu0
            return
    raise RuntimeError(f"the server at {server.uri} was still busy after {timeout_s:.0f} s")


def stop_group(proc: subprocess.Popen, grace_s: float = 20) -> None:
    """SIGTERM a process group started with ``start_new_session``; SIGKILL after grace."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=grace_s)
