"""A real local Ray cluster for the Ray launcher tests, run with the Ray venv's Python.

``make ray-venv`` (run by ``make test``) builds ``.venv-ray`` with ``pip install -e
".[ray,postgres]"``: hydra-ray-launcher pins cloudpickle<3, which takes joblib back to
1.5.x, so it gets a venv of its own instead of changing ``.venv``. The tests run
``python -m learnai`` and ``ray start`` from that venv; they read MLflow and Optuna back
from this one. ``LEARNAI_RAY_VENV`` names another venv (tests/conftest.py skips the
``ray`` tier without one).

Each node is ``ray start --block`` in a process group of its own. Every port a second
cluster on the machine would share is a free one, and the session files live in a short
temporary directory (Ray's socket paths must stay under 108 characters), so clusters of
parallel tests never meet.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from helpers.cli import learnai_env
from helpers.polling import wait_until
from helpers.processes import REPO, cmdline
from helpers.servers import free_port

RAY_VENV = Path(os.environ.get("LEARNAI_RAY_VENV", REPO / ".venv-ray"))
RAY_PYTHON = RAY_VENV / "bin" / "python"
RAY = RAY_VENV / "bin" / "ray"
STARTED = "Ray runtime started."  # what `ray start` prints once its node is in the cluster


def ray_env(token: str | None) -> dict[str, str]:
    """The environment of every Ray node and driver: token auth on with ``token``."""
    env = learnai_env()
    for key in ("RAY_ADDRESS", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "OMP_NUM_THREADS"):
        env.pop(key, None)
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    if token is None:
        env["RAY_AUTH_MODE"] = "disabled"
    else:
        env["RAY_AUTH_MODE"] = "token"
        env["RAY_AUTH_TOKEN"] = token
    return env


def processes_mentioning(text: str) -> list[str]:
    """``pid cmdline`` of every live process (but this one) whose command line holds
    ``text``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        cmd = cmdline(int(proc.name))
        if text in cmd:
            found.append(f"{proc.name} {cmd[:200]}")
    return found


def wait_gone(text: str, timeout_s: float = 30) -> list[str]:
    """Poll until no process mentions ``text``; those still there after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while (left := processes_mentioning(text)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


class RayCluster:
    """A head node (no CPUs unless asked: jobs go to the workers) and worker nodes, each
    ``ray start --block`` in a process group of its own, logging to ``log_dir``."""

    def __init__(self, log_dir: Path, token_auth: bool = True) -> None:
        self.log_dir = log_dir
        self.token = secrets.token_hex(32) if token_auth else None
        self.env = ray_env(self.token)
        self.temp_dir = Path(tempfile.mkdtemp(prefix="ray-"))  # short: socket paths
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.nodes: list[tuple[subprocess.Popen[bytes], Path]] = []

    def _start(self, name: str, argv: list[str], timeout_s: float = 180) -> None:
        """Start a node and wait for ``ray start`` to say it is in the cluster (it says
        so once the node's raylet has registered with the head)."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{name}.log"
        with open(log, "ab") as out:
            node = subprocess.Popen(
                [
                    *argv,
                    "--block",
                    "--node-ip-address=127.0.0.1",
                    "--disable-usage-stats",
                    f"--dashboard-agent-listen-port={free_port()}",
                ],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: what outlives stop() dies with it
            )
        self.nodes.append((node, log))

        def started() -> bool:
            if node.poll() is not None:
                tail = log.read_text(errors="replace")[-3000:]
                raise AssertionError(f"ray node {name} exited {node.returncode}:\n{tail}")
            return STARTED in log.read_text(errors="replace")

        wait_until(started, f"ray node {name} in the cluster (log: {log})", timeout_s, every=0.2)

    def start_head(self, num_cpus: int = 0) -> RayCluster:
        self._start(
            "head",
            [
                str(RAY),
                "start",
                "--head",
                f"--port={self.port}",
                f"--num-cpus={num_cpus}",
                f"--temp-dir={self.temp_dir}",
                f"--ray-client-server-port={free_port()}",
                "--include-dashboard=false",
                f"--dashboard-port={free_port()}",
            ],
        )
        return self

    def add_worker(self, num_cpus: int, prefix: list[str] | None = None) -> RayCluster:
        """A worker node; ``prefix`` runs it elsewhere (``as_another_machine``)."""
        self._start(
            f"worker{len(self.nodes)}",
            [
                *(prefix or []),
                str(RAY),
                "start",
                f"--address={self.address}",
                f"--num-cpus={num_cpus}",
            ],
        )
        return self

    def stop(self) -> list[str]:
        """Stop the workers, then the head, as an operator takes a cluster down: SIGTERM
        to each ``ray start --block``, which drains its node and ends its processes.
        Return the processes of this cluster still alive afterwards (they are killed).

        Signalling a node's whole group instead would end its GCS or raylet under it,
        and ``ray start`` would wait out its drain timeout (30 s) for them."""
        for node, _ in reversed(self.nodes):
            with contextlib.suppress(ProcessLookupError):
                node.send_signal(signal.SIGTERM)
            try:
                node.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(node.pid, signal.SIGKILL)
                node.wait(timeout=30)
        left = wait_gone(str(self.temp_dir), timeout_s=20)
        for node, _ in self.nodes:  # what SIGTERM did not end: the rest of each group
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.pid, signal.SIGKILL)
        self.nodes = []
        shutil.rmtree(self.temp_dir, ignore_errors=True)
        return left
