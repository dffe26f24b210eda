"""Shared by the sweeper tests: the example apps and a runner for their sweeps.

Its own module name, not ``conftest``: pytest loads several conftests under that name."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from sweep_helpers import check_exit, run_python  # tests/: on sys.path via its conftest

APPS = Path(__file__).resolve().parent / "apps"
REPO = APPS.parent.parent.parent


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("HYDRA_FULL_ERROR", None)
    # A DeprecationWarning or FutureWarning (Optuna's kind) from the sweeper or the trial
    # API fails the sweep.
    env["PYTHONWARNINGS"] = "error::DeprecationWarning,error::FutureWarning"
    return env


def without_learnai(cwd: Path) -> dict[str, str]:
    """The sweeper tests' environment, in which ``import learnai`` fails as if learnai
    were not installed: a package of that name that raises comes first on PYTHONPATH
    (child processes, joblib's workers included, inherit it)."""
    shadow = cwd / "no_learnai" / "learnai"
    shadow.mkdir(parents=True, exist_ok=True)
    (shadow / "__init__.py").write_text(
        'raise ModuleNotFoundError("No module named \'learnai\'", name="learnai")\n'
    )
    env = _env()
    paths = [str(shadow.parent), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    return env


def run_app(
    script: Path,
    cwd: Path,
    *args: str,
    expect: int | None = 0,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``python <script> -m <args>`` in ``cwd``, its sweep dir ``cwd/multirun``."""
    sweep_dir = f"hydra.sweep.dir={cwd / 'multirun'}"
    proc = run_python(cwd, str(script), "-m", sweep_dir, *args, env=env or _env())
    return check_exit(proc, expect, f"{script.name} {' '.join(args)}")
