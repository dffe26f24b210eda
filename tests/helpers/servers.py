"""Real servers on free loopback ports: ``mlflow server`` as MLflow ships it, learnai's
``python -m learnai.commands.server`` as the docs start it, or ``optuna-dashboard``."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    """A loopback port nothing listens on (bound and released: closed afterwards)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(
    url: str, proc: subprocess.Popen | None = None, log: Path | None = None, timeout_s: float = 90.0
) -> None:
    """Wait until ``url`` answers 200; fail at once if ``proc`` (the server) exits."""
    import requests

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text()[-3000:] if log is not None and log.exists() else ""
            raise AssertionError(
                f"the server exited {proc.returncode} before {url} answered\n{tail}"
            )
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {timeout_s} s")


class Server:
    """A tracking server in its own process group (stopped with its workers)."""

    def __init__(self, root: Path, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.root, self.argv = root, argv
        self.env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", **(env or {})}
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.ready = "/health"  # the path that answers 200 once the server serves
        self.proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def mlflow(cls, root: Path, store: str | None = None) -> Server:
        """``mlflow server`` on a SQLite store under ``root`` (or on the existing store
        ``store``: runs recorded there keep their own artifact locations), serving its
        artifacts. Without MLflow's job runner (seven processes for GenAI jobs that no
        test uses; it doubles the start-up), as learnai's own server starts."""
        server = cls(root, [], {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})
        server.argv = [
            "-m", "mlflow", "server",
            "--backend-store-uri", store or f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination", str(root / "artifacts"),
            "--host", "127.0.0.1", "--port", str(server.port), "--workers", "1",
        ]  # fmt: skip
        return server

    @classmethod
    def learnai(cls, root: Path, db: str, *args: str, env: dict[str, str] | None = None) -> Server:
        """``python -m learnai.commands.server`` on ``db``, artifacts under ``root``."""
        server = cls(root, [], env)
        server.argv = [
            "-m", "learnai.commands.server", "--db", db,
            "--artifacts", str(root / "artifacts"), "--port", str(server.port),
            "--workers", "1", *args,
        ]  # fmt: skip
        return server

    @classmethod
    def optuna_dashboard(cls, root: Path, storage: str) -> Server:
        """``optuna-dashboard`` on the study storage ``storage`` (it has no /health)."""
        server = cls(root, [])
        server.argv = [
            str(Path(sys.executable).parent / "optuna-dashboard"),  # its console script
            storage, "--host", "127.0.0.1", "--port", str(server.port),
        ]  # fmt: skip
        server.ready = "/api/meta"
        return server

    def start(self) -> Server:
        self.root.mkdir(parents=True, exist_ok=True)
        log = self.root / "server.log"
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, *self.argv],
                env=self.env,
                cwd=self.root,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_http(f"{self.uri}{self.ready}", self.proc, log)
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the server's whole group (``SIGKILL``: as the OOM killer would)."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=20)
        self.proc = None

    def stop(self) -> None:
        self.kill(signal.SIGTERM)
