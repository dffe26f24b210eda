"""The descriptions MLflow shows on a run's page (the ``mlflow.note.content`` tag): a
run's verdict and what to look at, a sweep's outcome counts and its best run.

MLflow renders the note as markdown at the top of the run's page and in the runs table's
description column, so it is where a new user looks first. Links are relative to the UI
(``#/experiments/...``): they work whichever address the UI is served on. Pure functions:
strings and numbers in, markdown out.

Example:
    >>> run_note("diverged", "diverged at epoch 1", 8.7, -2.1, 51, 0.9).splitlines()[1]
    'final val_loss 8.7 | val_r2 -2.100 | 51 epochs'
"""

from __future__ import annotations

import math
from collections.abc import Mapping

NOTE_TAG = "mlflow.note.content"  # MLflow's own key for a run's description

_WHY = {
    "converged": "the network fits the curve (val_r2 >= {threshold:g}).",
    "stalled": "training ended without a good fit (val_r2 < {threshold:g}): "
    "train longer, or raise the learning rate.",
    "diverged": "the loss blew up; the learning rate is too large for this model.",
    "pruned": "the study's pruner stopped it: its loss was worse than other trials' at "
    "the same epoch.",
}


def _number(value: float, digits: str = ".4g") -> str:
    return format(value, digits) if math.isfinite(value) else str(value)


def run_note(
    outcome: str,
    verdict: str,
    val_loss: float,
    val_r2: float,
    epochs_run: int,
    threshold: float,
) -> str:
    """A run's description: its verdict and why, its final numbers, where to look."""
    why = _WHY.get(outcome, "").format(threshold=threshold)
    lines = [
        f"**{verdict}**" + (f": {why}" if why else ""),
        f"final val_loss {_number(val_loss)} | val_r2 {_number(val_r2, '.3f')} | "
        f"{epochs_run} epochs",
        "Look at the Artifacts tab: `loss_curve.png`, `fit.png`, `training.gif`. Chart view: "
        "`log10_val_loss` keeps a blow-up readable beside a converged run.",
    ]
    return "\n".join(lines)


def run_link(experiment_id: str, run_id: str, tab: str = "") -> str:
    """A link inside the UI to a run (``tab`` e.g. ``artifacts/comparison.png``)."""
    return f"#/experiments/{experiment_id}/runs/{run_id}" + (f"/{tab}" if tab else "")


def sweep_note(
    experiment_id: str,
    parent_run_id: str,
    counts: Mapping[str, int],
    best: tuple[str, str, float, float] | None,
    files: list[str],
) -> str:
    """A sweep's description: how many runs ended how, the best one (name, run id, val
    loss, val_r2) as a link, and links to the comparison files on the parent."""
    total = sum(counts.values())
    tally = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "none"
    lines = [f"**Sweep of {total} run{'s' * (total != 1)}: {tally}.**"]
    if best is not None:
        name, run_id, val_loss, val_r2 = best
        lines.append(
            f"Best: [{name}]({run_link(experiment_id, run_id)}) | val_loss "
            f"{_number(val_loss)} | val_r2 {_number(val_r2, '.3f')}; its params are this "
            "run's `best.*` params, its loss the `best_val_loss` metric."
        )
    else:
        lines.append("No run converged or stalled: no best run.")
    if files:
        links = ", ".join(
            f"[{f}]({run_link(experiment_id, parent_run_id, 'artifacts/' + f)})" for f in files
        )
        lines.append(f"Compare the runs: {links}.")
    return "\n".join(lines)
