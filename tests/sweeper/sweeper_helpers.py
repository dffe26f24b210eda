"""The sweeper tests' own: the example apps that know nothing of learnai, and a runner
for their sweeps in an environment that makes Optuna's deprecations fail.

Imported by the test modules beside it (pytest puts this folder on ``sys.path`` for
them: it has no ``__init__.py``); what other tests share lives in ``tests/helpers``."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from helpers.cli import check_exit, learnai_env, run_python

APPS = Path(__file__).resolve().parent / "apps"


def sweeper_env() -> dict[str, str]:
    """:func:`helpers.cli.learnai_env`, in which a DeprecationWarning or FutureWarning
    (Optuna's kind) from the sweeper or the trial API fails the sweep."""
    env = learnai_env()
    env["PYTHONWARNINGS"] = "error::DeprecationWarning,error::FutureWarning"
    return env


def without_learnai(cwd: Path) -> dict[str, str]:
    """:func:`sweeper_env` in which ``import learnai`` fails as if learnai were not
    installed: a package of that name that raises comes first on PYTHONPATH (child
    processes, joblib's workers included, inherit it)."""
    shadow = cwd / "no_learnai" / "learnai"
    shadow.mkdir(parents=True, exist_ok=True)
    (shadow / "__init__.py").write_text(
        'raise ModuleNotFoundError("No module named \'learnai\'", name="learnai")\n'
    )
    env = sweeper_env()
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
    """``python <script> -m <args>`` in ``cwd``, its sweep dir ``cwd/multirun``; fail
    unless it exits with ``expect``."""
    sweep_dir = f"hydra.sweep.dir={cwd / 'multirun'}"
    proc = run_python(cwd, str(script), "-m", sweep_dir, *args, env=env or sweeper_env())
    return check_exit(proc, expect, f"{script.name} {' '.join(args)}")
