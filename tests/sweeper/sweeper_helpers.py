"""Shared by the sweeper tests: the example apps and a runner for their sweeps.

Its own module name, not ``conftest``: pytest loads several conftests under that name."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

APPS = Path(__file__).resolve().parent / "apps"
REPO = APPS.parent.parent.parent
TIMEOUT_S = 300


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("HYDRA_FULL_ERROR", None)
    # A DeprecationWarning or FutureWarning (Optuna's kind) from the sweeper or the trial
    # API fails the sweep.
    env["PYTHONWARNINGS"] = "error::DeprecationWarning,error::FutureWarning"
    return env


def run_app(
    script: Path, cwd: Path, *args: str, expect: int | None = 0
) -> subprocess.CompletedProcess[str]:
    """``python <script> -m <args>`` in ``cwd``, its sweep dir ``cwd/multirun``."""
    proc = subprocess.run(
        [sys.executable, str(script), "-m", f"hydra.sweep.dir={cwd / 'multirun'}", *args],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    if expect is not None and proc.returncode != expect:
        pytest.fail(
            f"{script.name} {' '.join(args)} exited {proc.returncode}, expected {expect}\n"
            f"--- stdout\n{proc.stdout[-5000:]}\n--- stderr\n{proc.stderr[-5000:]}"
        )
    return proc
