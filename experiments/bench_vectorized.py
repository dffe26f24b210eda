"""The vectorized launcher against Hydra's basic launcher on the same sweep.

    python -m experiments.bench_vectorized            # part of `make bench`
    python -m experiments.bench_vectorized --rounds 5 --points 32

A 32-point learning-rate grid of the default network (200 epochs, every picture), once
through each launcher per round, A/B alternated (the order flips every round), each a
whole ``python -m learnai -m ...`` process in a fresh directory with one torch thread.
The ratio basic / vectorized is taken within each round; the table shows its median and
range. Both sides' runs are compared too: the same names, params and outcomes, final
losses within float tolerance. Results: experiments/results/bench_vectorized.json
(git-ignored); experiments/README.md records them.

Target (issue 23, CPU): the vectorized launcher at least 2x faster.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "experiments" / "results"
TARGET = 2.0


def grid(points: int) -> str:
    """``points`` learning rates, log-spaced over [1e-3, 1]: converged to diverged."""
    return ",".join(f"{10 ** (-3 + 3 * i / (points - 1)):.4g}" for i in range(points))


def run_side(launcher: str, points: int, extra: list[str]) -> tuple[float, dict[str, dict]]:
    """One sweep through ``launcher`` in a fresh directory: wall seconds and its runs."""
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    env.pop("MLFLOW_TRACKING_URI", None)
    args = [
        "-m", "learnai", "-m", f"hydra/launcher={launcher}", f"optimizer.lr={grid(points)}",
        "trainer.progress=false", "trainer.num_threads=1", *extra,
    ]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="learnai-bench-") as cwd:
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True
        )
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"{launcher} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
        return seconds, records(Path(cwd))


def records(cwd: Path) -> dict[str, dict]:
    """Each child run's params, outcome and final losses, by run name."""
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{cwd / 'mlruns' / 'mlflow.db'}")
    exp = client.get_experiment_by_name("learnai")
    runs = client.search_runs([exp.experiment_id], "tags.mlflow.parentRunId != ''")
    return {
        r.info.run_name: {
            "params": r.data.params,
            "outcome": r.data.tags.get("outcome"),
            "epochs_run": r.data.tags.get("epochs_run"),
            "final_val_loss": r.data.metrics.get("final_val_loss", math.nan),
        }
        for r in runs
    }


def differences(a: dict[str, dict], b: dict[str, dict]) -> list[str]:
    """What differs between two sweeps' runs (losses within 1e-3 relative count as equal)."""
    if sorted(a) != sorted(b):
        return [f"run names differ: {sorted(set(a) ^ set(b))}"]
    out = []
    for name, ra in a.items():
        rb = b[name]
        for key in ("params", "outcome", "epochs_run"):
            if ra[key] != rb[key]:
                out.append(f"{name}: {key} {ra[key]!r} != {rb[key]!r}")
        x, y = ra["final_val_loss"], rb["final_val_loss"]
        if not (math.isclose(x, y, rel_tol=1e-3) or (math.isnan(x) and math.isnan(y))):
            out.append(f"{name}: final_val_loss {x} != {y}")
    return out


def training_only(points: int) -> dict[str, float]:
    """The training alone, in this process (no store, no pictures): ``points`` solo
    loops (:class:`Trainer`) against one :class:`StackedTrainer` of ``points`` members."""
    import torch

    from learnai.train.data import nonlinear
    from learnai.train.loop import Trainer
    from learnai.train.models import GeneralFit
    from learnai.train.stacked import Member, StackedTrainer

    torch.set_num_threads(1)
    lrs = [float(v) for v in grid(points).split(",")]

    def build(lr: float) -> tuple[Trainer, torch.nn.Module, object]:
        torch.manual_seed(0)
        data = nonlinear()
        return Trainer(200), GeneralFit(n_in=data.n_features), data

    start = time.perf_counter()
    for lr in lrs:
        trainer, model, data = build(lr)
        trainer.fit(model, torch.optim.Adam(model.parameters(), lr=lr), data)
    solo = time.perf_counter() - start
    members = [Member(*build(lr), {"_target_": "torch.optim.Adam", "lr": lr}) for lr in lrs]
    start = time.perf_counter()
    StackedTrainer(members).fit()
    return {"solo": solo, "stacked": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--points", type=int, default=32)
    parser.add_argument("extra", nargs="*", help="more overrides for both sides")
    args = parser.parse_args()
    rounds, diffs = [], []
    for n in range(args.rounds):
        order = ("basic", "vectorized") if n % 2 == 0 else ("vectorized", "basic")
        seconds, recs = {}, {}
        for side in order:
            seconds[side], recs[side] = run_side(side, args.points, args.extra)
            print(f"round {n + 1}: {side:10s} {seconds[side]:7.2f} s", flush=True)
        diffs += differences(recs["basic"], recs["vectorized"])
        rounds.append(seconds)
    ratio = [r["basic"] / r["vectorized"] for r in rounds]
    med = statistics.median(ratio)
    met = "met" if min(ratio) >= TARGET else ("not reliably met" if med >= TARGET else "missed")
    print(
        f"\n{args.points}-point lr grid: basic / vectorized {med:.2f}x "
        f"(range {min(ratio):.2f}-{max(ratio):.2f} over {len(ratio)} rounds), "
        f"target >= {TARGET}x: {met}"
    )
    for side in ("basic", "vectorized"):
        print(f"median seconds {side}: {statistics.median(r[side] for r in rounds):.2f}")
    print("per-run records: " + ("identical" if not diffs else f"{len(diffs)} differences"))
    for line in diffs[:20]:
        print("  " + line)
    train = [training_only(args.points) for _ in range(args.rounds)]
    train_ratio = [t["solo"] / t["stacked"] for t in train]
    print(
        f"training alone ({args.points} x 200 epochs, no records): solo / stacked "
        f"{statistics.median(train_ratio):.2f}x (range {min(train_ratio):.2f}-"
        f"{max(train_ratio):.2f}); median seconds solo "
        f"{statistics.median(t['solo'] for t in train):.2f}, stacked "
        f"{statistics.median(t['stacked'] for t in train):.2f}"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "bench_vectorized.json").write_text(
        json.dumps(
            {"rounds": rounds, "ratios": ratio, "differences": diffs, "training": train},
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
