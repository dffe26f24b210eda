"""Where a sweep's time goes: one whole-process run under a sampling profiler, its
samples sorted into phases (imports, store, composition, training, artifacts, logging,
exit, other).

    python -m experiments.phases                 # the benchmark's 8-job sweep
    python -m experiments.phases -- optimizer.lr=0.01      # any learnai arguments

pyinstrument samples the stack every millisecond (no tracing, so training runs at full
speed). Each sample goes to the innermost phase on its stack, except that any sample
inside an ``import`` counts as imports. Interpreter start-up before the profiler and
teardown after ``main`` returns are timed from outside: they form "exit" and "start".
Only the sweep's own process is sampled: its tracking and picture workers run on the
other core, and the time it waits for them counts as store (its first run, while the
tracking worker opens the store), artifacts (pictures) or logging.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from experiments.bench import SWEEP, process_env

# (phase, function name or None for any, a piece of the file's path)
MARKERS: list[tuple[str, str | None, str]] = [
    ("composition", "_load_configuration_impl", "hydra/_internal/config_loader_impl"),
    ("composition", "compose", "hydra/compose"),
    ("store", None, "learnai/stores.py"),
    ("store", None, "learnai/store_checks.py"),
    ("store", "open_store", "learnai/tracking.py"),
    ("store", "ensure_experiment", "learnai/tracking.py"),
    ("store", "reap_stale_runs", "learnai/tracking.py"),
    ("store", "__init__", "mlflow/store/tracking/sqlalchemy_store"),
    ("training", "fit", "learnai/loop.py"),
    ("training", "evaluate", "learnai/loop.py"),
    ("artifacts", None, "learnai/artifacts.py"),
    ("artifacts", None, "learnai/animation.py"),
    ("artifacts", None, "learnai/sweep_report.py"),
    ("artifacts", None, "learnai/sweep/study_report.py"),
    ("logging", None, "learnai/tracking.py"),  # RunRecorder: params, metrics, files, end
    # waits for the workers: the store the tracking worker opens, the pictures being drawn
    ("store", "start_run", "learnai/tracking_worker.py"),
    ("store", "_parent_for_job", "learnai/sweep/lifecycle.py"),  # the first job's wait
    ("artifacts", None, "learnai/picture_worker.py"),
]
PHASES = ["start", "imports", "composition", "store", "training", "artifacts", "logging"]
PHASES += ["other", "exit"]

_PROFILED = """
import sys, time
from pyinstrument import Profiler
profiler = Profiler(interval=0.001)
sys.argv = ["learnai", *{args!r}]
profiler.start()
started = time.time()
try:
    from learnai.cli import main
    main()
finally:
    profiler.stop()
    stopped = time.time()
    profiler.last_session.save({session!r})
    open({stamp!r}, "w").write(f"{{started}} {{stopped}} {{time.time()}}")
"""


def _phase_of(function: str, path: str, current: str) -> str:
    if function == "_find_and_load" and "importlib" in path:
        return "imports"
    if current == "imports":
        return current
    for phase, name, piece in MARKERS:
        if piece in path and (name is None or name == function):
            return phase
    return current


def sort_samples(frame, phase: str = "other", into: dict[str, float] | None = None):
    """Seconds per phase below ``frame`` (a pyinstrument frame tree)."""
    into = {} if into is None else into
    phase = _phase_of(frame.function or "", frame.file_path or "", phase)
    into[phase] = into.get(phase, 0.0) + frame.total_self_time  # synthetic children included
    for child in frame.children:
        if not child.is_synthetic:
            sort_samples(child, phase, into)
    return into


def profile(args: list[str]) -> dict[str, float]:
    """Run ``learnai <args>`` once in a fresh directory; seconds per phase, and "total"."""
    from pyinstrument.session import Session

    with tempfile.TemporaryDirectory(prefix="learnai-phases-") as cwd:
        stamp, session = Path(cwd) / ".stamp", Path(cwd) / ".session.json"
        source = _PROFILED.format(args=args, stamp=str(stamp), session=str(session))
        env = process_env()
        begin = time.time()
        proc = subprocess.run(
            [sys.executable, "-c", source], cwd=cwd, env=env, capture_output=True, text=True
        )
        end = time.time()
        if proc.returncode != 0:
            raise RuntimeError(f"learnai {args} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
        started, stopped, saved = map(float, stamp.read_text().split())
        root = Session.load(str(session)).root_frame()
        phases = sort_samples(root) if root is not None else {}
    phases["start"] = started - begin
    phases["exit"] = end - saved  # teardown only: the profile's saving is left out
    phases["total"] = end - begin - (saved - stopped)
    # what the profiler saw but could not place (its own overhead, idle waits)
    phases["other"] = phases.get("other", 0.0) + max(
        0.0, (stopped - started) - sum(v for k, v in phases.items() if k in PHASES[1:-1])
    )
    return phases


def print_table(phases: dict[str, float]) -> None:
    total = phases["total"]
    for name in PHASES:
        seconds = phases.get(name, 0.0)
        print(f"  {name:12s} {seconds:6.2f} s  {100 * seconds / total:5.1f} %")
    print(f"  {'total':12s} {total:6.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("args", nargs="*", help="learnai arguments (default: the 8-job sweep)")
    ns = parser.parse_args()
    phases = profile(ns.args or SWEEP)
    print_table(phases)
    print(json.dumps({k: round(v, 3) for k, v in phases.items()}))


if __name__ == "__main__":
    main()
