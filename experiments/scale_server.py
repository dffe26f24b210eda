"""How many concurrent jobs one tracking server takes: N client processes at once, each
logging what a learnai run logs (``epochs`` x 2 metrics), batched in one ``log_batch``
per run (what learnai does) or one ``log_metric`` per value (the naive way).

Clients are separate processes (each its own interpreter and HTTP connections, as jobs
are); they import MLflow, then wait at a barrier so that all start logging together. The
per-call latency is timed in the client, around the public ``MlflowClient`` call.
"""

from __future__ import annotations

import multiprocessing as mp
import statistics
import time

from experiments.scale_infra import Server, db_active_s, machine_cpu

METRICS = ("train_loss", "val_loss")


def _client(uri: str, exp_id: str, mode: str, runs: int, epochs: int, barrier, queue) -> None:
    """One job: ``runs`` runs; return the seconds of each logging call through ``queue``."""
    try:
        import os
        import sys

        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (MLflow prints a "View run" line)
        from mlflow import MlflowClient
        from mlflow.entities import Metric

        client = MlflowClient(uri)
        barrier.wait(timeout=300)
        latencies: list[float] = []
        for _ in range(runs):
            run_id = client.create_run(exp_id).info.run_id
            now = int(time.time() * 1000)
            if mode == "batch":
                batch = [Metric(k, 0.5, now, s) for s in range(epochs) for k in METRICS]
                t = time.perf_counter()
                client.log_batch(run_id, metrics=batch)
                latencies.append(time.perf_counter() - t)
            else:
                for s in range(epochs):
                    for k in METRICS:
                        t = time.perf_counter()
                        client.log_metric(run_id, k, 0.5, timestamp=now, step=s)
                        latencies.append(time.perf_counter() - t)
            client.set_terminated(run_id)
        queue.put(("ok", latencies))
    except BaseException as err:  # the parent must hear of it, not wait for its timeout
        queue.put(("error", repr(err)))


def _round(uri: str, exp_id: str, n: int, mode: str, runs: int, epochs: int, timeout_s: float):
    """N clients at once; (their latencies, seconds from the barrier to the last one)."""
    ctx = mp.get_context("spawn")  # a fresh interpreter per client, as a job has
    barrier, queue = ctx.Barrier(n + 1), ctx.Queue()
    procs = [
        ctx.Process(target=_client, args=(uri, exp_id, mode, runs, epochs, barrier, queue))
        for _ in range(n)
    ]
    for p in procs:
        p.start()
    try:
        barrier.wait(timeout=300)  # every client has imported MLflow
        start = time.perf_counter()
        latencies: list[float] = []
        for _ in range(n):
            status, value = queue.get(timeout=timeout_s)
            if status != "ok":
                raise RuntimeError(f"a client failed: {value}")
            latencies += value
        return latencies, time.perf_counter() - start
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
                p.join(timeout=10)


def run(srv: Server, clients: list[int], epochs: int, batch_runs: int, timeout_s: float) -> dict:
    """Every N in ``clients``, both modes, on a new experiment of the running server."""
    from mlflow import MlflowClient

    out: dict = {"epochs": epochs, "batch_runs": batch_runs, "rounds": []}
    exp_id = MlflowClient(srv.uri).create_experiment(f"server_bench_{time.time_ns()}")
    for n in clients:
        for mode, runs in (("batch", batch_runs), ("metric", 1)):
            cpu0, db0, (busy0, total0) = srv.cpu_s(), db_active_s(srv.db), machine_cpu()
            lat, wall = _round(srv.uri, exp_id, n, mode, runs, epochs, timeout_s)
            busy1, total1 = machine_cpu()
            time.sleep(1.5)  # PostgreSQL publishes a backend's statistics within ~1 s
            values = n * runs * epochs * len(METRICS)
            r = {
                "clients": n,
                "mode": mode,
                "calls": len(lat),
                "median_ms": statistics.median(lat) * 1000,
                "p90_ms": statistics.quantiles(lat, n=10)[-1] * 1000 if len(lat) > 1 else 0,
                "values_per_s": values / wall,
                "wall_s": wall,
                "server_cpu_s": srv.cpu_s() - cpu0,
                "db_active_s": db_active_s(srv.db) - db0,
                "machine_busy": (busy1 - busy0) / (total1 - total0),
            }
            out["rounds"].append(r)
            print(
                f"  server, {n:2d} clients, {mode:6s}: median {r['median_ms']:7.1f} ms/call"
                f" (p90 {r['p90_ms']:.1f}), {r['values_per_s']:8.0f} values/s, server CPU "
                f"{r['server_cpu_s']:.1f} s, DB {r['db_active_s']:.1f} s in {wall:.1f} s",
                flush=True,
            )
    return out


def doubling(rounds: list[dict], mode: str) -> int | None:
    """The fewest clients at which the median latency is at least twice that of one."""
    rs = sorted((r for r in rounds if r["mode"] == mode), key=lambda r: r["clients"])
    if not rs or rs[0]["clients"] != 1:
        return None
    return next((r["clients"] for r in rs if r["median_ms"] >= 2 * rs[0]["median_ms"]), None)
