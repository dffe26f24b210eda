"""Run ``python -m learnai`` (or any Python) the way a user does, in a subprocess whose
working directory is a test's own folder: the default stores (``mlruns/``) and Hydra's
``outputs/``/``multirun/`` land there."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

TIMEOUT_S = 300

# Small enough that a job takes about a second, big enough for outcomes to mean
# something (lr 0.01 converges on the default problem in 20 epochs, lr 1 diverges).
TINY = (
    "data.n_samples=200",
    "trainer.epochs=20",
    "trainer.progress=false",
    "trainer.device=cpu",
    "trainer.num_threads=1",  # tests run side by side: one core each
    "trainer.animation.frames=5",
    "trainer.animation.width=160",
    "trainer.animation.height=120",
)
# For tests that do not look at animations.
TINY_NO_ANIMATION = (*TINY, "trainer.animation.enabled=false")


def learnai_env() -> dict[str, str]:
    """This process's environment less what a developer's shell would change."""
    env = dict(os.environ)
    for key in ("HYDRA_FULL_ERROR", "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME"):
        env.pop(key, None)
    return env


def run_python(
    cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    """``python <args>`` in ``cwd``, output captured."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=learnai_env() if env is None else env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def check_exit(
    proc: subprocess.CompletedProcess[str], expect: int | None, what: str
) -> subprocess.CompletedProcess[str]:
    """``proc``, or a test failure with its output's tail unless it exited ``expect``."""
    if expect is not None and proc.returncode != expect:
        pytest.fail(
            f"{what} exited {proc.returncode}, expected {expect}\n"
            f"--- stdout\n{proc.stdout[-6000:]}\n--- stderr\n{proc.stderr[-6000:]}"
        )
    return proc


def run_learnai(
    cwd: Path, *args: str, expect: int | None = 0, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m learnai <args>`` in ``cwd``; fail unless it exits with ``expect``."""
    proc = run_python(cwd, "-m", "learnai", *args, env=env)
    return check_exit(proc, expect, f"learnai {' '.join(args)}")


def _as_in_a_terminal() -> None:
    # A shell's background job, and so a test runner started as one, ignores SIGINT, and
    # its children inherit that; a command typed in a terminal takes Ctrl-C.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_learnai(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """``python -m learnai <args>`` in the background, in its own process group as a
    scheduler's job is (signal it with ``os.killpg(proc.pid, ...)``), taking SIGINT as a
    command typed in a terminal does."""
    return subprocess.Popen(
        [sys.executable, "-m", "learnai", *args],
        cwd=cwd,
        env=learnai_env() if env is None else env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=_as_in_a_terminal,
    )


def finish(proc: subprocess.Popen[str], timeout: float = TIMEOUT_S) -> str:
    """Wait for a command started by :func:`start_learnai`; its stdout and stderr. Its
    group is killed if it hangs."""
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return out + err


def error_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The last non-empty line of stderr: where learnai prints a refusal."""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines, f"nothing on stderr; stdout:\n{proc.stdout}"
    return lines[-1]
