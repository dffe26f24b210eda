"""Fixtures for the scale-out tests: fresh PostgreSQL databases and a tracking server.
The helpers themselves live in ``scale_helpers``."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/sweep_helpers.py
sys.path.insert(0, str(Path(__file__).resolve().parent))  # scale_helpers.py
from scale_helpers import PG, Server, admin


@pytest.fixture
def pg_database() -> Iterator[Callable[[], str]]:
    """``new()`` returns the URI of a fresh, empty database; all are dropped afterwards."""
    pytest.importorskip("psycopg", reason="PostgreSQL tests need psycopg 3 (learnai[postgres])")
    made: list[str] = []

    def new() -> str:
        name = f"learnai_scale_{uuid.uuid4().hex[:12]}"
        try:
            admin(f'CREATE DATABASE "{name}"')
        except Exception as exc:
            pytest.skip(f"no PostgreSQL at {PG}: {exc}")
        made.append(name)
        return f"{PG}/{name}"

    yield new
    for name in made:
        admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def server(tmp_path: Path, pg_database: Callable[[], str]) -> Iterator[Server]:
    srv = Server(tmp_path / "server", pg_database()).start()
    try:
        yield srv
    finally:
        srv.stop()
