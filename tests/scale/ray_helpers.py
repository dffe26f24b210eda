"""A real local Ray cluster for the Ray launcher tests, run with ``.venv-ray``'s Python.

``make ray-venv`` (run by ``make test``) builds ``.venv-ray`` with ``pip install -e
".[ray,postgres]"``: hydra-ray-launcher pins cloudpickle<3, which takes joblib back to
1.5.x, so it gets a venv of its own instead of changing ``.venv``. The tests run
``python -m learnai`` and ``ray start`` from that venv; they read MLflow and Optuna back
from this one.

Each node is ``ray start --block`` in a process group of its own, stopped with SIGTERM
(then SIGKILL) to that group; every port a second cluster on the machine would share is
a free one, and the session files live in a short temporary directory (Ray's socket
paths must stay under 108 characters).
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

import pytest
from scale_helpers import free_port
from sweep_helpers import learnai_env

ROOT = Path(__file__).resolve().parents[2]
RAY_VENV = Path(os.environ.get("LEARNAI_RAY_VENV", ROOT / ".venv-ray"))
RAY_PYTHON = RAY_VENV / "bin" / "python"
RAY = RAY_VENV / "bin" / "ray"


def require_ray_venv() -> None:
    if not RAY.exists():
        pytest.skip(f"{RAY_VENV} is missing: build it with `make ray-venv` (make test does)")


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
    """``pid cmdline`` of every live process whose command line contains ``text``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmd:
            found.append(f"{proc.name} {cmd[:200]}")
    return found


def wait_gone(text: str, timeout_s: float = 30) -> list[str]:
    """Wait until no process mentions ``text``; return those left."""
    deadline = time.monotonic() + timeout_s
    while (left := processes_mentioning(text)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return left


class RayCluster:
    """A head node (no CPUs unless asked: jobs go to the workers) and worker nodes."""

    def __init__(self, log_dir: Path, token_auth: bool = True) -> None:
        self.log_dir = log_dir
        self.token = secrets.token_hex(32) if token_auth else None
        self.env = ray_env(self.token)
        self.temp_dir = Path(tempfile.mkdtemp(prefix="ray-"))
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.nodes: list[subprocess.Popen[bytes]] = []

    def _start(self, name: str, argv: list[str]) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_dir / f"{name}.log", "ab") as out:
            self.nodes.append(
                subprocess.Popen(
                    argv,
                    env=self.env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own group: stopped with its processes
                )
            )

    def _node_args(self) -> list[str]:
        return [
            "--block",
            "--node-ip-address=127.0.0.1",
            "--disable-usage-stats",
            f"--dashboard-agent-listen-port={free_port()}",
        ]

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
                *self._node_args(),
            ],
        )
        self.wait_for_nodes(1)
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
                *self._node_args(),
            ],
        )
        self.wait_for_nodes(len(self.nodes))
        return self

    def wait_for_nodes(self, n: int, timeout_s: float = 120) -> None:
        """Until ``n`` nodes are alive, asked the way users ask (``ray status``)."""
        deadline = time.monotonic() + timeout_s
        status = ""
        while time.monotonic() < deadline:
            for i, node in enumerate(self.nodes):
                if node.poll() is not None:
                    log = sorted(self.log_dir.glob("*.log"))[i].read_text()[-3000:]
                    raise AssertionError(f"ray node {i} exited {node.returncode}:\n{log}")
            proc = subprocess.run(
                [str(RAY), "status", f"--address={self.address}"],
                env=self.env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            status = proc.stdout + proc.stderr
            alive = status.split("Active:", 1)[-1].split("Pending:", 1)[0]
            if proc.returncode == 0 and alive.count("node_") >= n:
                return
            time.sleep(1)
        raise AssertionError(f"the Ray cluster did not reach {n} nodes:\n{status[-3000:]}")

    def stop(self) -> list[str]:
        """Stop every node; return the processes of this cluster still alive after."""
        for node in reversed(self.nodes):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.pid, signal.SIGTERM)
        for node in self.nodes:
            try:
                node.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(node.pid, signal.SIGKILL)
                node.wait(timeout=30)
        left = wait_gone(str(self.temp_dir), timeout_s=20)
        for node in self.nodes:  # what SIGTERM did not end: the rest of each group
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.pid, signal.SIGKILL)
        self.nodes = []
        shutil.rmtree(self.temp_dir, ignore_errors=True)
        return left
