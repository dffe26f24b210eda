"""The speed benchmark: learnai against baselines measured in the same run.

    python -m experiments.bench              # or: make bench
    python -m experiments.bench --rounds 5

Every case is a whole process started in a fresh directory (so a fresh MLflow store), as
a user would start it, with one torch thread on both sides (two spinning threads on a
2-core machine make timings swing 2-3x). The cases run round-robin, A B C ... A B C, so
a machine whose speed drifts moves all cases alike; each ratio is taken within a round
and the table shows its median and range over the rounds. Results:
experiments/results/bench.json (git-ignored); experiments/README.md records them.

Targets (issue "One run, one process"):
- tracking's cost per epoch of real training: 1,000 more epochs of a 4-job sweep
  (4,000 points, lr 0.01, 0.003 x depth 2, 4) cost at most 1.05x what they cost bare
  PyTorch with the same per-epoch validation;
- the toy sweep (``make run``'s shape: lr 0.01, 1 x depth 1..4, 200 epochs, every
  picture) at most 3x bare training and at most 0.2x a naive tracked loop;
- ``learnai --help`` at most 1.5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "experiments" / "results"
SHORT, LONG = 200, 1200  # epochs of the marginal-cost sweep: LONG - SHORT = 1,000 more
MARGINAL = [
    "-m",
    "optimizer.lr=0.01,0.003",
    "model.depth=2,4",
    "data.n_samples=4000",
    "trainer.progress=false",
]
CASES = {
    "bare": ["-m", "experiments.baselines.bare"],
    "naive": ["-m", "experiments.baselines.naive_tracked"],
    "sweep": ["-m", "learnai", "-m", "optimizer.lr=0.01,1", "model.depth=1,2,3,4",
              "trainer.progress=false"],
    "help": ["-m", "learnai", "--help"],
    "bare_short": ["-m", "experiments.baselines.bare", "--marginal", str(SHORT)],
    "bare_long": ["-m", "experiments.baselines.bare", "--marginal", str(LONG)],
    "learnai_short": ["-m", "learnai", *MARGINAL, f"trainer.epochs={SHORT}"],
    "learnai_long": ["-m", "learnai", *MARGINAL, f"trainer.epochs={LONG}"],
}  # fmt: skip


def run_case(args: list[str]) -> float:
    """``python <args>`` in a fresh directory; its wall seconds."""
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    env.pop("MLFLOW_TRACKING_URI", None)
    with tempfile.TemporaryDirectory(prefix="learnai-bench-") as cwd:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        _, stderr = proc.communicate()
        seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{args} exited {proc.returncode}:\n{stderr.decode()[-2000:]}")
    return seconds


def ratios(rounds: list[dict[str, float]]) -> dict[str, list[float]]:
    """Each target's ratio, round by round."""
    out: dict[str, list[float]] = {"marginal": [], "sweep/bare": [], "sweep/naive": [], "help": []}
    for r in rounds:
        out["marginal"].append(
            (r["learnai_long"] - r["learnai_short"]) / (r["bare_long"] - r["bare_short"])
        )
        out["sweep/bare"].append(r["sweep"] / r["bare"])
        out["sweep/naive"].append(r["sweep"] / r["naive"])
        out["help"].append(r["help"])
    return out


TARGETS = {  # name: (limit, what it measures)
    "marginal": (1.05, "1,000 more epochs: learnai / bare PyTorch, same validation"),
    "sweep/bare": (3.0, "toy sweep, every picture: learnai / bare training"),
    "sweep/naive": (0.2, "toy sweep: learnai / naive tracked loop"),
    "help": (1.5, "learnai --help, seconds"),
}


def verdict(values: list[float], limit: float) -> str:
    """Met when every round meets it; not reliably met when only the median does."""
    if max(values) <= limit:
        return "met"
    return "not reliably met" if statistics.median(values) <= limit else "missed"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rounds: list[dict[str, float]] = []
    for n in range(args.rounds):
        seconds = {}
        for name, case in CASES.items():
            seconds[name] = run_case(case)
            print(f"round {n + 1}: {name:14s} {seconds[name]:7.2f} s", flush=True)
        rounds.append(seconds)
    table = ratios(rounds)
    print(f"\n{'target':12s} {'median':>8s} {'range':>15s} {'limit':>6s}  verdict")
    for name, values in table.items():
        limit, what = TARGETS[name]
        span = f"{min(values):.2f}-{max(values):.2f}"
        print(
            f"{name:12s} {statistics.median(values):8.2f} {span:>15s} {limit:6.2f}  "
            f"{verdict(values, limit)}  ({what})"
        )
    medians = {name: statistics.median(r[name] for r in rounds) for name in CASES}
    print("\nmedian seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in medians.items()))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "bench.json").write_text(
        json.dumps({"rounds": rounds, "ratios": table, "medians": medians}, indent=1)
    )


if __name__ == "__main__":
    main()
