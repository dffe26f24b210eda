"""Scale-out benchmark: workers on one PostgreSQL study, and the tracking server's load.

    python -m experiments.scale_bench            # or: make bench-scale (~20 min on 2 cores)
    python -m experiments.scale_bench --quick    # a small check that everything runs

1. Sweep: trials per minute of 1, 2 and 4 ``python -m learnai -m`` workers on one
   PostgreSQL Optuna study logging to ``python -m learnai.commands.server``, and of the single-
   process sweep on the default SQLite stores, equal trials on every side, the sides
   interleaved in every repeat. Where the time goes: CPU seconds of the workers and of
   the server, PostgreSQL's statement time, how busy the machine's cores were.
2. Server: median per-call latency for N concurrent clients logging a run's metrics,
   one ``log_batch`` per run against one ``log_metric`` per value.

Needs PostgreSQL (``LEARNAI_BENCH_PG``, default postgresql://postgres@127.0.0.1:5432) and
Linux (/proc). Results: ``experiments/results/scale_bench.json``; the table at the end.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import tempfile
from pathlib import Path

from experiments import scale_server
from experiments.scale_infra import Server, pg_database, tracking_server
from experiments.scale_sweep import Workload, run_postgres, run_sqlite

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    """What the numbers were measured on."""
    import mlflow
    import optuna
    import torch

    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    names = [ln.split(":", 1)[1].strip() for ln in cpuinfo if ln.startswith("model name")]
    return {
        "date": datetime.date.today().isoformat(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "cpu_model": names[0] if names else "?",
        "load_avg_at_start": os.getloadavg(),
        "versions": {"torch": torch.__version__, "mlflow": mlflow.__version__,
                     "optuna": optuna.__version__},
    }  # fmt: skip


def sweep_part(args: argparse.Namespace, work: Workload, server: Server, study_db: str) -> dict:
    """Every side once per repeat, interleaved, so machine drift hits all sides alike."""
    sides = ["sqlite", *(f"pg{w}" for w in args.workers)]
    runs: dict[str, list[dict]] = {s: [] for s in sides}
    for rep in range(args.repeats):
        for side in sides:
            if side == "sqlite":
                r = run_sqlite(work, args.trials, args.timeout)
            else:
                w = int(side[2:])
                name = f"scale_{w}w_r{rep}_{os.getpid()}"
                r = run_postgres(work, args.trials, w, name, server, study_db, args.timeout)
            r["trials_per_min"] = 60 * r["trials"] / r["wall_s"]
            r["steady_trials_per_min"] = 60 * r["trials"] / r["trial_span_s"]
            runs[side].append(r)
            print(
                f"  repeat {rep + 1}, {side:6s}: {r['trials_per_min']:6.1f} trials/min "
                f"({r['wall_s']:.1f} s), cores busy {r['machine_busy']:.0%}, worker CPU "
                f"{r['worker_cpu_s']:.0f} s, server CPU {r.get('server_cpu_s', 0):.1f} s, "
                f"DB {r.get('db_active_s', 0):.1f} s",
                flush=True,
            )
    return runs


def _verdict(median: float, lo: float, target: float) -> str:
    """As experiments.bench: met by the median but not by every run is "not reliably"."""
    return "yes" if lo >= target else ("not reliably" if median >= target else "NO")


def sweep_table(runs: dict[str, list[dict]], target: float) -> list[list[str]]:
    rows = []
    base = runs.get("pg1")
    for side, rs in runs.items():
        tpm = [r["trials_per_min"] for r in rs]
        n = rs[0]["trials"]
        name = "SQLite, 1 process" if side == "sqlite" else f"PostgreSQL, {side[2:]} worker(s)"
        row = [
            name,
            f"{statistics.median(tpm):.1f} ({min(tpm):.1f}-{max(tpm):.1f})",
            f"{statistics.median(r['steady_trials_per_min'] for r in rs):.1f}",
        ]
        if base and side != "pg1":
            pairs = [
                r["trials_per_min"] / b["trials_per_min"] for r, b in zip(rs, base, strict=True)
            ]
            ratio = statistics.median(tpm) / statistics.median(b["trials_per_min"] for b in base)
            row.append(f"{ratio:.2f}x ({min(pairs):.2f}-{max(pairs):.2f})")
            row.append(_verdict(ratio, min(pairs), target) if side == "pg2" else "")
        else:
            row += ["1.00x" if side == "pg1" else "", ""]
        row += [
            f"{statistics.median(r['machine_busy'] for r in rs):.0%}",
            f"{statistics.median(r['worker_cpu_s'] for r in rs) / n:.2f}",
            f"{statistics.median(r.get('server_cpu_s', 0) for r in rs) / n:.2f}",
            f"{statistics.median(r.get('db_active_s', 0) for r in rs) / n:.3f}",
        ]
        rows.append(row)
    return rows


def print_table(head: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]
    for row in (head, *rows):
        print("  ".join(f"{x!s:{w}s}" for x, w in zip(row, widths, strict=True)))


def main() -> None:
    p = argparse.ArgumentParser(description="learnai scale-out benchmark")
    p.add_argument("--quick", action="store_true", help="tiny sizes, one repeat")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--trials", type=int, default=16, help="total per side; divisible by workers")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--n-samples", type=int, default=10_000)
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    p.add_argument("--server-workers", type=int, default=2)
    p.add_argument("--clients", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    p.add_argument("--metric-epochs", type=int, default=200, help="a run's epochs (x 2 metrics)")
    p.add_argument("--batch-runs", type=int, default=10, help="runs per client, batched mode")
    p.add_argument("--target", type=float, default=1.6, help="2 workers / 1 worker, at least")
    p.add_argument("--timeout", type=float, default=900, help="seconds, per side or round")
    p.add_argument("--skip", nargs="*", default=[], choices=["sweep", "server"])
    args = p.parse_args()
    if args.quick:
        args.repeats, args.trials, args.n_samples, args.epochs = 1, 4, 2000, 50
        args.clients, args.metric_epochs, args.batch_runs = [1, 2, 4], 50, 3
    if any(args.trials % w for w in args.workers):
        p.error(f"--trials {args.trials} must divide among {args.workers} workers")
    work = Workload(args.n_samples, args.epochs, args.threads)
    results: dict = {"machine": machine(), "args": vars(args), "workload": work.overrides("NAME")}
    print(f"learnai scale-out benchmark on {results['machine']['cpu_model']}, "
          f"{results['machine']['cores']} cores", flush=True)  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / ("scale_bench_quick.json" if args.quick else "scale_bench.json")
    with (
        tempfile.TemporaryDirectory(prefix="learnai-scale-server-") as tmp,
        pg_database("learnai_bench_runs") as runs_db,
        pg_database("learnai_bench_study") as study_db,
        tracking_server(runs_db, Path(tmp), args.server_workers) as server,
    ):
        results["server_startup_cpu_s"] = server.startup_cpu_s
        if "sweep" not in args.skip:
            results["sweep"] = sweep_part(args, work, server, study_db)
        if "server" not in args.skip:
            results["server"] = scale_server.run(
                server, args.clients, args.metric_epochs, args.batch_runs, args.timeout
            )
    out.write_text(json.dumps(results, indent=1, default=str))
    if "sweep" in results:
        print(f"\n{args.trials} trials a side, median of {args.repeats}; CPU and DB per trial")
        head = ["side", "trials/min", "steady", "vs 1 worker", f">= {args.target}x",
                "cores busy", "worker CPU s", "server CPU s", "DB s"]  # fmt: skip
        print_table(head, sweep_table(results["sweep"], args.target))
    if "server" in results:
        rounds = results["server"]["rounds"]
        print(f"\nserver: {args.metric_epochs} epochs x 2 metrics per run, per-call latency")
        head = ["clients", "mode", "median ms", "p90 ms", "values/s", "server CPU s", "DB s"]
        rows = [[r["clients"], r["mode"], f"{r['median_ms']:.1f}", f"{r['p90_ms']:.1f}",
                 f"{r['values_per_s']:.0f}", f"{r['server_cpu_s']:.1f}", f"{r['db_active_s']:.1f}"]
                for r in rounds]  # fmt: skip
        print_table(head, rows)
        for mode in ("batch", "metric"):
            n = scale_server.doubling(rounds, mode)
            print(f"  {mode}: median latency doubles at {n or 'none of the'} clients")
    print(f"\nwritten: {out}")


if __name__ == "__main__":
    main()
