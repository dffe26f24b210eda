"""What an Optuna sweep adds to its parent run: best trial, history, importances, and the
stability map (learning rate x depth, coloured by outcome and final loss)."""

from __future__ import annotations

import json
import logging
import math
import tempfile
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from learnai.pictures.plots import OUTCOME_COLORS, pyplot
from learnai.secrets import mask_secrets
from learnai.tracking.recorder import RunRecorder

log = logging.getLogger("learnai")

BEST = "optuna_best.json"
HISTORY = "optimization_history.png"
IMPORTANCES = "param_importances.png"
STABILITY = "stability_map.png"
TRIALS = "optuna_trials.csv"
MARKERS = {"converged": "o", "stalled": "s", "diverged": "X", "pruned": "v", "failed": "x"}


def outcome(trial: FrozenTrial) -> str:
    if "outcome" in trial.user_attrs:
        return str(trial.user_attrs["outcome"])
    return {TrialState.PRUNED: "pruned", TrialState.FAIL: "failed"}.get(trial.state, "unknown")


def _numeric(trials: list[FrozenTrial]) -> list[tuple[str, bool]]:
    """Params that can be an axis, as (name, log scale); lr and depth first."""
    dists: dict[str, Any] = {}
    for t in trials:
        dists.update(t.distributions)
    axes = []
    for name, d in dists.items():
        if isinstance(d, (FloatDistribution, IntDistribution)):
            axes.append((name, bool(d.log)))
        elif isinstance(d, CategoricalDistribution) and all(
            isinstance(c, (int, float)) and not isinstance(c, bool) for c in d.choices
        ):
            positive = all(c > 0 for c in d.choices)
            spread = positive and max(d.choices) / min(d.choices) >= 100
            axes.append((name, spread))
    preferred = {"optimizer.lr": 0, "model.depth": 1}
    return sorted(axes, key=lambda a: preferred.get(a[0], 2))


def stability_map(trials: list[FrozenTrial], path: Path, title: str) -> bool:
    trials = [t for t in trials if t.params]
    axes = _numeric(trials)
    if not axes:
        return False
    plt = pyplot()
    from matplotlib import colors
    from matplotlib.markers import MarkerStyle

    fig, ax = plt.subplots(figsize=(7.2, 4.8), dpi=100)
    x_name, x_log = axes[0]
    y_name, y_log = axes[1] if len(axes) > 1 else ("final val_loss", True)
    # Diverged trials keep their last (huge) loss: leave them out of the colour scale.
    finite = [
        t.value
        for t in trials
        if t.value is not None
        and math.isfinite(t.value)
        and t.value > 0
        and outcome(t) not in ("diverged", "failed")
    ]
    norm = colors.LogNorm(min(finite), max(finite)) if len(finite) > 1 else None
    scatter = None
    for kind, marker in MARKERS.items():
        group = [t for t in trials if outcome(t) == kind]
        if not group:
            continue
        xs = [t.params.get(x_name, math.nan) for t in group]
        ys = [
            t.params.get(y_name, math.nan) if len(axes) > 1 else (t.value or math.nan)
            for t in group
        ]
        values = [t.value if t.value is not None and t.value > 0 else math.nan for t in group]
        if kind in ("diverged", "failed") or norm is None:
            # an unfilled marker ("x") is drawn by its edge: an edge colour of its own
            # would be ignored, and matplotlib warns about it
            edge = {"edgecolors": "black"} if MarkerStyle(marker).is_filled() else {}
            ax.scatter(
                xs,
                ys,
                marker=marker,
                s=90,
                c=OUTCOME_COLORS[kind],
                label=kind,
                linewidths=0.5,
                **edge,
            )
        else:
            scatter = ax.scatter(
                xs,
                ys,
                marker=marker,
                s=90,
                c=values,
                cmap="viridis_r",
                norm=norm,
                label=kind,
                edgecolors=OUTCOME_COLORS[kind],
                linewidths=1.5,
            )
    if x_log:
        ax.set_xscale("log")
    if y_log:
        ax.set_yscale("log")
    ax.set_xlabel(x_name + (" (log)" if x_log else ""))
    ax.set_ylabel(y_name)
    ax.set_title(title)
    ax.legend(title="outcome", fontsize=8)
    if scatter is not None:
        fig.colorbar(scatter, ax=ax, label="final val_loss (converged/stalled/pruned)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def history_plot(study: optuna.Study, path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.2, 4.2), dpi=100)
    best = math.inf if study.direction == optuna.study.StudyDirection.MINIMIZE else -math.inf
    better = min if study.direction == optuna.study.StudyDirection.MINIMIZE else max
    xs, bests = [], []
    for t in study.trials:
        kind = outcome(t)
        if t.value is not None and math.isfinite(t.value):
            ax.scatter(
                t.number,
                t.value,
                s=20,
                color=OUTCOME_COLORS.get(kind, "#1f77b4"),
                marker=MARKERS.get(kind, "o"),
            )
            if t.state == TrialState.COMPLETE:
                best = better(best, t.value)
        if math.isfinite(best):
            xs.append(t.number)
            bests.append(best)
    ax.plot(xs, bests, color="black", lw=1.2, label="best so far")
    finite = [t.value for t in study.trials if t.value and math.isfinite(t.value)]
    if finite and min(finite) > 0:
        ax.set_yscale("log")
    ax.set_xlabel("trial")
    ax.set_ylabel("objective (final val_loss)")
    ax.set_title(f"study {study.study_name}: optimization history")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def importances_plot(study: optuna.Study, path: Path) -> dict[str, float]:
    """Optuna's parameter importances (its default evaluator, PED-ANOVA) as bars; none
    below two finished trials, where Optuna can only warn that they would be equal."""
    finished = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.value is not None and math.isfinite(t.value)
    ]
    if len(finished) < 2:
        log.info("no parameter importances: %d finished trial(s), 2 needed", len(finished))
        return {}
    try:
        importances = optuna.importance.get_param_importances(study)
    except (ValueError, RuntimeError) as err:  # one value only, no params
        log.info("no parameter importances: %s", err)
        return {}
    if not importances:
        return {}
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 1.4 + 0.5 * len(importances)), dpi=100)
    names = list(importances)[::-1]
    ax.barh(names, [importances[n] for n in names], color="#1f77b4")
    ax.set_xlabel("importance (Optuna's PED-ANOVA)")
    ax.set_title("parameter importances")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return dict(importances)


def trials_table(study: optuna.Study, path: Path) -> None:
    import csv

    names = sorted({k for t in study.trials for k in t.params})
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["number", "state", "outcome", "value", "mlflow_run_id", *names])
        for t in study.trials:
            w.writerow(
                [
                    t.number,
                    t.state.name,
                    outcome(t),
                    t.value,
                    t.user_attrs.get("mlflow_run_id", ""),
                    *[t.params.get(n, "") for n in names],
                ]
            )


def describe(study: optuna.Study) -> dict[str, Any]:
    """Best trial and state counts, for the console and the parent run."""
    counts: dict[str, int] = {}
    for t in study.trials:
        counts[t.state.name.lower()] = counts.get(t.state.name.lower(), 0) + 1
    out: dict[str, Any] = {"study": study.study_name, "trials": len(study.trials), "states": counts}
    try:
        best = study.best_trial
    except ValueError:
        return out
    out.update(
        best_value=best.value,
        best_params=best.params,
        best_trial=best.number,
        best_run_id=best.user_attrs.get("mlflow_run_id"),
    )
    return out


def report_study(
    study: optuna.Study,
    new_trials: list[FrozenTrial],
    parent: tuple[str, str] | None,
    storage_url: str | None,
) -> None:
    """Log the study's picture on the sweep's parent run and print its summary."""
    summary = describe(study)
    # The sweep's own summary names the runs' outcomes and the best run; the study adds
    # only its size (trial states stay on the parent run and in the dashboard).
    log.info("study %r: %d trials in all", study.study_name, summary["trials"])
    if storage_url is not None:
        from learnai.tracking.links import dashboard_command

        log.info("open the study: %s", dashboard_command(storage_url))
    if parent is None:
        return
    uri, run_id = parent
    recorder = RunRecorder.attach(uri, run_id)
    tags = {
        "optuna.study": study.study_name,
        "optuna.storage": mask_secrets(storage_url or "in-memory"),
        "optuna.trials": ",".join(str(t.number) for t in new_trials),
    }
    if "best_value" in summary:
        tags.update(
            {
                "optuna.best_trial": summary["best_trial"],
                **{f"best.{k}": v for k, v in summary["best_params"].items()},
            }
        )
        recorder.add_metrics({"best_value": summary["best_value"]})
        recorder.flush()
    recorder.set_tags(tags)
    with tempfile.TemporaryDirectory(prefix="learnai-study-") as tmp:
        out = Path(tmp)
        importances = importances_plot(study, out / IMPORTANCES)
        (out / BEST).write_text(
            json.dumps({**summary, "importances": importances}, indent=1, default=str)
        )
        history_plot(study, out / HISTORY)
        stability_map(
            study.trials,
            out / STABILITY,
            f"study {study.study_name}: outcome by learning rate and depth",
        )
        trials_table(study, out / TRIALS)
        recorder.log_artifacts(out)
