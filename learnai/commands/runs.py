"""``learnai runs [EXPERIMENT]``: the runs of a store as a table; :func:`runs_frame` in Python.

One row per run: sweep parents first, each followed by its children, indented as in the
MLflow UI. The "swept" column shows what differs between a sweep's children (or a plain
run's overrides); "trial" the linked Optuna trial's number and state, found through the
``optuna.study``/``optuna.trial`` tags or the trials' ``mlflow_run_id`` attribute.

Example:
    >>> import learnai
    >>> frame = learnai.runs_frame("learnai", "sqlite:///mlruns/mlflow.db")  # doctest: +SKIP
    >>> frame[["name", "outcome", "final_val_loss"]]  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import defaultdict
from typing import TYPE_CHECKING

from learnai.commands.trial_states import TrialStates
from learnai.tracking.recorder import PARENT_TAG
from learnai.tracking.stores import open_existing, store_uri
from learnai.tracking.uris import StoreError

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.entities import Run

COLUMNS = [
    "experiment",
    "run_id",
    "parent_run_id",
    "name",
    "status",
    "outcome",
    "swept",
    "final_train_loss",
    "final_val_loss",
    "val_r2",
    "optuna_study",
    "trial",
    "trial_state",
    "start_time",
    "best",
]


def runs_frame(
    experiment: str | None = None, uri: str | None = None, optuna_storage: str | None = None
) -> pd.DataFrame:
    """The runs of ``experiment`` (all experiments when None) in store ``uri``.

    Columns: see :data:`COLUMNS`, plus one column per swept param (``optimizer.lr``...).
    Rows are ordered as :func:`main` prints them: each parent, then its children.
    ``uri`` defaults to ``$MLFLOW_TRACKING_URI``, else ``sqlite:///mlruns/mlflow.db``;
    a missing SQLite store raises :class:`StoreError` instead of being created.
    """
    import pandas as pd

    uri = store_uri(uri)
    client = open_existing(uri)
    try:
        runs, names = _search(client, experiment)
    except StoreError:
        raise
    except Exception as err:
        from learnai.secrets import mask_secrets

        raise StoreError(f"cannot read tracking store {mask_secrets(uri)}: {err}") from err
    trials = TrialStates(uri, optuna_storage)
    ordered = _nest(runs)
    swept = _swept(runs)
    best = _best(runs)
    rows = []
    for run in ordered:
        tags, metrics = run.data.tags, run.data.metrics
        study, number, state = trials.lookup(run, _by_id(runs))
        values = swept.get(run.info.run_id, {})
        rows.append(
            {
                "experiment": names.get(run.info.experiment_id, run.info.experiment_id),
                "run_id": run.info.run_id,
                "parent_run_id": tags.get(PARENT_TAG),
                "name": tags.get("learnai.name") or run.info.run_name,  # without its verdict
                "status": run.info.status,
                "outcome": tags.get("outcome", "sweep" if tags.get("learnai.sweep") else None),
                "swept": _as_typed(values, tags.get("overrides")) or tags.get("overrides"),
                "final_train_loss": metrics.get("final_train_loss", math.nan),
                "final_val_loss": metrics.get(  # a sweep: its best run's
                    "final_val_loss",
                    metrics.get("best_val_loss", metrics.get("best_value", math.nan)),
                ),
                "val_r2": metrics.get("val_r2", math.nan),
                "optuna_study": study,
                "trial": number,
                "trial_state": state,
                "start_time": pd.to_datetime(run.info.start_time, unit="ms"),
                "best": run.info.run_id in best,
                **values,
            }
        )
    if not rows:
        return pd.DataFrame(columns=COLUMNS)
    frame = pd.DataFrame(rows)
    frame["trial"] = frame["trial"].astype("Int64")  # trial numbers, <NA> for other runs
    return frame


def _search(client: MlflowClient, experiment: str | None) -> tuple[list[Run], dict[str, str]]:
    if experiment is None:
        exps = client.search_experiments(max_results=1000)
    else:
        found = client.get_experiment_by_name(experiment)
        if found is None:
            known = [e.name for e in client.search_experiments(max_results=1000)]
            raise StoreError(
                f"no experiment {experiment!r} in this store (experiments: "
                f"{', '.join(sorted(known)) or 'none'})"
            )
        exps = [found]
    names = {e.experiment_id: e.name for e in exps}
    runs: list[Run] = []
    token = None
    while names:
        page = client.search_runs(
            list(names), max_results=1000, order_by=["attributes.start_time ASC"], page_token=token
        )
        runs += list(page)
        token = page.token
        if not token:
            break
    return runs, names


def _by_id(runs: list[Run]) -> dict[str, Run]:
    return {r.info.run_id: r for r in runs}


def _nest(runs: list[Run]) -> list[Run]:
    """Top-level runs by start time, each followed by its children (depth first)."""
    ids = {r.info.run_id for r in runs}
    children: dict[str | None, list[Run]] = defaultdict(list)
    for run in runs:
        parent = run.data.tags.get(PARENT_TAG)
        children[parent if parent in ids else None].append(run)
    ordered: list[Run] = []

    def visit(run: Run) -> None:
        ordered.append(run)
        for child in children.get(run.info.run_id, []):
            visit(child)

    for run in children[None]:
        visit(run)
    return ordered


def _swept(runs: list[Run]) -> dict[str, dict[str, str]]:
    """Per child run: the params that differ among its siblings, plus the keys its
    parent's sweep overrides sweep (so a one-child sweep still shows them)."""
    from learnai.tracking import naming

    by_parent: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        if PARENT_TAG in run.data.tags:
            by_parent[run.data.tags[PARENT_TAG]].append(run)
    parents = _by_id(runs)
    out: dict[str, dict[str, str]] = {}
    for parent_id, group in by_parent.items():
        keys = sorted({k for r in group for k in r.data.params})
        varying = [k for k in keys if len({r.data.params.get(k) for r in group}) > 1]
        parent = parents.get(parent_id)
        if parent is not None:
            declared = parent.data.tags.get("sweep.overrides", "").split()
            varying += [k for k in naming.swept_keys(declared) if k in keys and k not in varying]
            best = [k.removeprefix("best.") for k in parent.data.tags if k.startswith("best.")]
            varying += [k for k in best if k in keys and k not in varying]
        for run in group:
            out[run.info.run_id] = {k: run.data.params[k] for k in varying if k in run.data.params}
    return out


def _as_typed(values: dict[str, str], overrides: str | None) -> dict[str, str]:
    """The swept values as the job's overrides typed them (``lr=1``, as the run's name
    says, where the logged param reads ``1.0``); the logged param where none did."""
    from learnai.tracking import naming

    typed = naming.swept_values((overrides or "").split(), values)
    return {k: typed.get(k, v) for k, v in values.items()}


_NOT_BEST = {"diverged", "failed", "pruned"}


def _best(runs: list[Run]) -> set[str]:
    """Each sweep's best child: the one its parent names (``sweep.best_run_id``), else
    the finished child of lowest final val_loss that neither diverged nor was pruned."""
    by_parent: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        if PARENT_TAG in run.data.tags:
            by_parent[run.data.tags[PARENT_TAG]].append(run)
    parents = _by_id(runs)
    best: set[str] = set()
    for parent_id, group in by_parent.items():
        named = (
            parents[parent_id].data.tags.get("sweep.best_run_id") if parent_id in parents else None
        )
        if named in {r.info.run_id for r in group}:
            best.add(named)
            continue
        scored = [
            (r.data.metrics["final_val_loss"], r.info.run_id)
            for r in group
            if r.info.status == "FINISHED"
            and r.data.tags.get("outcome") not in _NOT_BEST
            and math.isfinite(r.data.metrics.get("final_val_loss", math.nan))
        ]
        if scored:
            best.add(min(scored)[1])
    return best


# --- the command ------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    """``learnai runs [EXPERIMENT] [--tracking-uri URI] [--optuna-storage URL]
    [--sort KEY] [--best]``."""
    from learnai.commands.runs_table import SortKeyError, best_only, format_table, sort_frame

    parser = argparse.ArgumentParser(
        prog="learnai runs", description="List the runs of a tracking store as a table."
    )
    parser.add_argument("experiment", nargs="?", help="experiment name (default: all)")
    parser.add_argument(
        "--tracking-uri",
        help="store to read (default: $MLFLOW_TRACKING_URI, else sqlite:///mlruns/mlflow.db)",
    )
    parser.add_argument(
        "--optuna-storage", help="study storage for trial states, when the runs do not name it"
    )
    parser.add_argument(
        "--sort",
        metavar="KEY",
        help="order runs (a sweep's children among themselves) by KEY: val_loss, "
        "train_loss, val_r2, start, name, outcome, trial or a param (lr, optimizer.lr); "
        "--sort=-KEY for descending",
    )
    parser.add_argument(
        "--best", action="store_true", help="only each sweep's best run, under its parent"
    )
    args = parser.parse_args(argv)
    try:
        frame = runs_frame(args.experiment, args.tracking_uri, args.optuna_storage)
        if args.best:
            frame = best_only(frame)
        if args.sort:
            params = [c for c in frame.columns if c not in COLUMNS]
            frame = sort_frame(frame, args.sort, params)
    except (StoreError, SortKeyError) as err:
        print(f"learnai runs: {err}", file=sys.stderr)
        return 2
    if frame.empty:
        print("no runs" + (f" in experiment {args.experiment!r}" if args.experiment else ""))
        return 0
    experiments = list(dict.fromkeys(frame["experiment"]))
    try:
        for i, name in enumerate(experiments):
            if len(experiments) > 1:
                print(("\n" if i else "") + f"== {name}")
            print(format_table(frame[frame["experiment"] == name]), flush=True)
    except BrokenPipeError:  # `learnai runs | head`: the reader has what it wanted
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
