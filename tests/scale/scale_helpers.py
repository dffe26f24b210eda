"""Helpers for the scale-out tests: the PostgreSQL admin, a tracking server started the
documented way (``python -m learnai.server``), and a way to run a command as if on another
machine (``as-another-machine``: directories hidden behind a tmpfs).

A module with its own name, not ``conftest``: pytest loads several conftest modules under
that one name, so ``from conftest import ...`` inside a test gets whichever loaded last.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.scale_infra import wait_http  # the benchmark's server starts the same way

PG = "postgresql://postgres@127.0.0.1:5432"
AS_ANOTHER_MACHINE = os.environ.get(
    "LEARNAI_AS_ANOTHER_MACHINE", "/work/shared/tools/as-another-machine"
)
# Tiny jobs: a second or two each, Optuna tests draw no animation.
TINY = (
    "trainer.epochs=5",
    "data.n_samples=50",
    "trainer.animation.enabled=false",
    "trainer.progress=false",
    "trainer.device=cpu",
    "trainer.num_threads=1",
)


def admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG}/test", autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``python -m learnai.server`` on a database, with served artifacts under ``root``."""

    def __init__(self, root: Path, db: str, *args: str, env: dict[str, str] | None = None):
        self.root, self.db, self.args, self.env = root, db, args, env
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Server:
        self.root.mkdir(parents=True, exist_ok=True)
        log = self.root / "server.log"
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "learnai.server",
                    "--db",
                    self.db,
                    "--artifacts",
                    str(self.root / "artifacts"),
                    "--port",
                    str(self.port),
                    "--workers",
                    "1",
                    *self.args,
                ],
                env=self.env,
                cwd=self.root,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: stopped with its workers
            )
        wait_http(f"{self.uri}/health", self.proc, log)
        return self

    def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=20)
        self.proc = None


def as_another_machine(hidden: list[Path]) -> list[str]:
    """The argv prefix that runs a command with ``hidden`` directories empty."""
    if not (os.path.exists(AS_ANOTHER_MACHINE) and shutil.which("unshare")):
        pytest.skip(f"{AS_ANOTHER_MACHINE} (and unshare) are needed")
    if os.geteuid() != 0:
        pytest.skip("as-another-machine needs root (unshare -m)")
    return [AS_ANOTHER_MACHINE, *map(str, hidden), "--"]
