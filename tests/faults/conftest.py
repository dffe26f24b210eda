"""Real components for the fault tests: a fresh PostgreSQL database per test, an
``mlflow server`` on a free loopback port, free (closed) ports, small tmpfs mounts.

PostgreSQL is the one at 127.0.0.1:5432 (trust auth); each test gets its own database,
dropped afterwards. Nothing here is a mock: the faults are real refused connections,
killed servers and full file systems.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

# The fault suite shares the sweep tests' helpers (tests/sweep_helpers.py).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from fault_helpers import MlflowServer

PG_HOST, PG_PORT = "127.0.0.1", 5432
PG_ADMIN = f"postgresql://postgres@{PG_HOST}:{PG_PORT}/test"


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql)


@pytest.fixture
def pg_database() -> Iterator[str]:
    """The URI of a fresh, empty PostgreSQL database, dropped after the test."""
    pytest.importorskip("psycopg", reason="PostgreSQL tests need psycopg 3 (learnai[postgres])")
    name = f"learnai_fault_{uuid.uuid4().hex[:12]}"
    try:
        _admin(f'CREATE DATABASE "{name}"')
    except Exception as exc:  # no server here: say so instead of failing every test
        pytest.skip(f"no PostgreSQL at {PG_HOST}:{PG_PORT}: {exc}")
    try:
        yield f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[MlflowServer]:
    server = MlflowServer(tmp_path / "server").start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[callable]:
    """Mount small tmpfs file systems (``mount(size="2m", ro=False)``), unmounted after."""
    mounted: list[Path] = []

    def mount(size: str = "2m", ro: bool = False, name: str = "disk") -> Path:
        target = tmp_path / name
        target.mkdir()
        options = f"size={size}" + (",ro" if ro else "")
        proc = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (needs root): {proc.stderr.strip()}")
        mounted.append(target)
        return target

    yield mount
    for target in reversed(mounted):
        subprocess.run(["umount", "-l", str(target)], check=False)
