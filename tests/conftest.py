"""The test tiers, and the fixtures every tier shares.

``pytest`` alone runs the in-process tier: no test there may start a process or a
server (a guard fails it). Tests that need more carry a marker and run under
``make test`` (``pytest -m ""``, in parallel): ``e2e`` (learnai or another program in a
subprocess), ``postgres``, ``browser``, ``ray``, ``root``, ``packaging``. A marker whose
requirement is missing here skips with one line saying what to install or start, except
in CI (``CI=true``), where every tier is mandatory.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TIERS = ("e2e", "postgres", "browser", "ray", "root", "packaging")


@functools.cache
def _postgres_missing() -> str | None:
    try:
        from helpers.stores import pg_admin

        pg_admin("SELECT 1")
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return f"no PostgreSQL at 127.0.0.1:5432 ({first}): start it (trust auth, database test)"
    return None


def _browser_missing() -> str | None:
    if shutil.which("chromium") or Path("/usr/bin/chromium").exists():
        return None
    return "no Chromium: apt-get install chromium (or run .ci/install-browser)"


def _root_missing() -> str | None:
    return None if os.geteuid() == 0 else "needs root (mount, unshare)"


def _ray_missing() -> str | None:
    from helpers.ray import RAY_PYTHON

    venv = RAY_PYTHON.parent.parent
    return None if RAY_PYTHON.exists() else f"no Ray venv at {venv}: make ray-venv"


MISSING: dict[str, Callable[[], str | None]] = {
    "postgres": _postgres_missing,
    "browser": _browser_missing,
    "root": _root_missing,
    "ray": _ray_missing,
}


def pytest_configure(config: pytest.Config) -> None:
    # matplotlib builds its font cache with `fc-list` on first import: done here, before
    # the in-process guard, so a fresh machine's first picture test does not trip it.
    import platform

    import matplotlib.font_manager  # noqa: F401

    platform.processor()  # runs `uname -p` once and keeps it (MLflow's import asks)

    for tier, text in {
        "e2e": "runs learnai or another program in a subprocess",
        "postgres": "needs PostgreSQL at 127.0.0.1:5432",
        "browser": "drives Debian's Chromium",
        "ray": "needs the Ray venv (make ray-venv)",
        "root": "needs root (tmpfs mounts, unshare)",
        "packaging": "builds and installs wheels",
        "slow": "(being retired: use a tier)",
    }.items():
        config.addinivalue_line("markers", f"{tier}: {text}")


def pytest_runtest_setup(item: pytest.Item) -> None:
    for tier, missing in MISSING.items():
        if item.get_closest_marker(tier) is None:
            continue
        reason = missing()
        if reason is None:
            continue
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"[{tier}] {reason} (CI runs every tier)", pytrace=False)
        pytest.skip(f"[{tier}] {reason}")


def _in_process(item: pytest.Item) -> bool:
    return not any(item.get_closest_marker(tier) for tier in TIERS)


@pytest.fixture(autouse=True)
def _no_processes_in_the_fast_tier(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default tier stays in-process: starting a process there fails the test."""
    if not _in_process(request.node):
        return

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(
            "this test starts a process: mark it e2e (or another tier) so the default "
            "`pytest` stays in-process"
        )

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)
    monkeypatch.setattr(os, "fork", refuse)
    monkeypatch.setattr(os, "posix_spawn", refuse)


@pytest.fixture
def pg_database() -> Iterator[Callable[[], str]]:
    """``pg_database()`` gives the URI of a fresh, empty PostgreSQL database; all are
    dropped after the test. Mark the test ``postgres``."""
    from helpers.stores import pg_databases

    with pg_databases() as new:
        yield new


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """``tmpfs(size="2m", ro=False)`` mounts a small file system (unmounted after the
    test): a disk that fills, or a read-only one. Mark the test ``root`` and ``e2e``."""
    mounted: list[Path] = []

    def mount(size: str = "2m", ro: bool = False, name: str = "disk") -> Path:
        target = tmp_path / name
        target.mkdir()
        options = f"size={size}" + (",ro" if ro else "")
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)],
            check=True,
            capture_output=True,
        )
        mounted.append(target)
        return target

    yield mount
    for target in reversed(mounted):
        subprocess.run(["umount", "-l", str(target)], check=False)


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[object]:
    """``mlflow server`` on a SQLite store under ``tmp_path``. Mark the test ``e2e``."""
    from helpers.servers import Server

    server = Server.mlflow(tmp_path / "server").start()
    try:
        yield server
    finally:
        server.kill()
