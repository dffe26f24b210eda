"""What a sweep's parent run shows at the end: a table, a figure, an animation, a summary."""

from __future__ import annotations

import csv
import json
import logging
import math
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from learnai.sweep import children as sweep_runs
from learnai.tracking.links import runs_view, ui_command
from learnai.tracking.notes import NOTE_TAG, sweep_note
from learnai.tracking.recorder import RunRecorder

log = logging.getLogger("learnai")

TABLE_CSV = "children.csv"
TABLE_JSON = "children.json"
COMPARISON = "comparison.png"
SIDE_BY_SIDE = "side_by_side.gif"
MAX_PANELS = 12  # more panels than this would make the side-by-side unreadable
SIDE_BY_SIDE_FRAMES = 50
SIDE_BY_SIDE_POINTS = 400


@dataclass
class Child:
    run_id: str
    run_name: str
    status: str
    outcome: str
    overrides: str
    final_train_loss: float
    final_val_loss: float
    val_r2: float
    trial: str = ""
    study: str = ""
    params: dict[str, str] = field(default_factory=dict)
    diverged_epoch: int | None = None

    @property
    def score(self) -> float:
        """Lower is better; runs that did not converge or finish rank last."""
        ok = self.outcome in ("converged", "stalled") and math.isfinite(self.final_val_loss)
        return self.final_val_loss if ok else math.inf


@dataclass
class SweepSummary:
    children: list[Child]
    parent_run_id: str
    view: str | None = None  # the runs-table view the printed link opens (links.view_key)

    @property
    def best(self) -> Child | None:
        ranked = sorted(self.children, key=lambda c: c.score)
        return ranked[0] if ranked and math.isfinite(ranked[0].score) else None

    def counts(self) -> Counter:
        return Counter(c.outcome for c in self.children)

    def print(self, uri: str, experiment_id: str | None = None) -> None:
        """The sweep's one summary: outcome counts, then the best run by name."""
        counts = ", ".join(f"{n} {k}" for k, n in sorted(self.counts().items()))
        log.info("sweep: %d runs: %s", len(self.children), counts or "none")
        best = self.best
        if best is not None:
            trial = f" (trial {best.trial})" if best.trial != "" else ""
            log.info(
                "best: %s%s | val_loss %.4g | val_r2 %.3f | run %s",
                best.run_name or best.overrides,
                trial,
                best.final_val_loss,
                best.val_r2,
                best.run_id,
            )
        log.info("open the MLflow UI: %s", ui_command(uri, experiment_id, self.view))


def _metric(run: Any, key: str) -> float:
    return float(run.data.metrics.get(key, math.nan))


def collect(uri: str, parent_run_id: str) -> list[Child]:
    children = []
    for run in sweep_runs.child_runs(uri, parent_run_id):
        tags = run.data.tags
        status = run.info.status
        outcome = tags.get("outcome") or ("failed" if status == "FAILED" else "unknown")
        children.append(
            Child(
                run_id=run.info.run_id,
                # as named before its verdict was added: what the console printed
                run_name=tags.get("learnai.name") or run.info.run_name or "",
                status=status,
                outcome=outcome,
                overrides=tags.get("overrides", ""),
                final_train_loss=_metric(run, "final_train_loss"),
                final_val_loss=_metric(run, "final_val_loss"),
                val_r2=_metric(run, "val_r2"),
                trial=tags.get("optuna.trial", ""),
                study=tags.get("optuna.study", ""),
                params=dict(run.data.params),
                diverged_epoch=int(tags["diverged_epoch"]) if "diverged_epoch" in tags else None,
            )
        )
    return children


def _swept_keys(children: list[Child]) -> list[str]:
    """Params whose value differs between children: the columns worth showing."""
    keys = sorted({k for c in children for k in c.params})
    return [k for k in keys if len({c.params.get(k) for c in children}) > 1]


def write_table(children: list[Child], out: Path) -> None:
    swept = _swept_keys(children)
    base = [
        "run_id",
        "run_name",
        "trial",
        "status",
        "outcome",
        "final_train_loss",
        "final_val_loss",
        "val_r2",
        "overrides",
    ]
    rows = []
    for c in children:
        row = {k: getattr(c, k) for k in base}
        row.update({k: c.params.get(k, "") for k in swept})
        rows.append(row)
    with open(out / TABLE_CSV, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=base + swept)
        writer.writeheader()
        writer.writerows(rows)
    (out / TABLE_JSON).write_text(json.dumps(rows, indent=1, default=str))


def _labels(children: list[Child]) -> dict[str, str]:
    """Each run's overrides less those every run shares: what tells them apart."""
    split = {c.run_id: c.overrides.split() for c in children}
    common = set.intersection(*(set(v) for v in split.values())) if split else set()
    return {
        c.run_id: " ".join(o for o in split[c.run_id] if o not in common) or c.run_name
        for c in children
    }


def _panel_children(children: list[Child]) -> list[Child]:
    """Up to MAX_PANELS runs, keeping the best and the worst when there are more."""
    if len(children) <= MAX_PANELS:
        return children
    ranked = sorted(children, key=lambda c: (c.score, c.final_val_loss))
    half = MAX_PANELS // 2
    return ranked[:half] + ranked[-half:]


def gather_panels(uri: str, children: list[Child]) -> dict[str, Any]:
    """The animation panels of these runs, from their ``predictions.npz`` in the store:
    run id -> Panel, for the runs that have one."""
    from learnai.pictures.artifacts import PREDICTIONS, panel_from_npz

    panels = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, child in enumerate(children):
            local = sweep_runs.download_artifact(uri, child.run_id, PREDICTIONS, Path(tmp) / str(i))
            if local is not None:
                panels[child.run_id] = panel_from_npz(local)
    return panels


def draw_side_by_side(runs: list[tuple[str, str]], panels: dict[str, Any], out: Path) -> None:
    """All runs' training animations in one GIF (``out``/side_by_side.gif): the sweep's
    lesson in one picture. ``runs`` are (run id, label) in panel order; runs without a
    panel in ``panels`` are left out.

    Every frame shows all panels at the same epoch, so runs compare like for like; the
    frames are spread over the epochs some run recorded, which are densest where a
    diverged run recorded every epoch of its blow-up."""
    import dataclasses

    from learnai.pictures.animation import render, save_gif

    shown = [dataclasses.replace(panels[r], label=label) for r, label in runs if r in panels]
    if not shown:
        return
    cols = min(len(shown), 3 if len(shown) > 4 else len(shown))
    rows = math.ceil(len(shown) / cols)
    timeline = _timeline(shown, SIDE_BY_SIDE_FRAMES)
    frames = render(
        [_compact(p, timeline) for p in shown],
        width=360 * cols,
        height=270 * rows,
        cols=cols,
        timeline=timeline,
    )
    save_gif(frames, out / SIDE_BY_SIDE, fps=10)


def _side_by_side(uri: str, children: list[Child], out: Path) -> None:
    """The side-by-side animation of up to :data:`MAX_PANELS` runs, from their stored
    ``predictions.npz``."""
    labels = _labels(children)
    chosen = _panel_children(children)
    runs = [(c.run_id, f"{labels[c.run_id]} [{c.outcome}]") for c in chosen]
    draw_side_by_side(runs, gather_panels(uri, chosen), out)


def _timeline(panels: list[Any], frames: int) -> list[int]:
    """Up to ``frames`` epochs, evenly spread over those that have a frame in some panel
    (always the first and the last)."""
    import numpy as np

    epochs = sorted({e for p in panels for e in p.frame_epochs})
    if len(epochs) <= frames:
        return epochs
    return [epochs[i] for i in sorted({round(i) for i in np.linspace(0, len(epochs) - 1, frames)})]


def _compact(panel: Any, timeline: list[int]) -> Any:
    """Keep only the frames the timeline shows and fewer data points (already a random
    sample): enough to compare runs, at a fraction of the drawing."""
    import bisect
    import dataclasses

    keep = sorted({bisect.bisect_right(panel.frame_epochs, e) - 1 for e in timeline} - {-1})
    return dataclasses.replace(
        panel,
        x=panel.x[:SIDE_BY_SIDE_POINTS],
        y=panel.y[:SIDE_BY_SIDE_POINTS],
        frames=panel.frames[keep],
        frame_epochs=[panel.frame_epochs[i] for i in keep],
        frame_losses=[panel.frame_losses[i] for i in keep],
    )


def report_sweep(uri: str, recorder: RunRecorder) -> SweepSummary:
    """Write the table, comparison figure and side-by-side animation onto the parent."""
    from learnai.pictures.plots import RunCurve, compare_losses

    children = collect(uri, recorder.run_id)
    summary = SweepSummary(children, recorder.run_id)
    counts = summary.counts()
    recorder.set_tags({"sweep.runs": len(children), **{f"sweep.{k}": n for k, n in counts.items()}})
    best = summary.best
    swept = _swept_keys(children)
    if best is not None:
        recorder.set_tags({"sweep.best_run_id": best.run_id})
        # as MLflow's hyperparameter-tuning examples do; names no child has, so the
        # parent adds no dot to the children's charts of params and final losses
        recorder.add_metrics({"best_val_loss": best.final_val_loss})
        recorder.log_params({f"best.{k}": best.params.get(k, "") for k in swept})
    summary.view = recorder.share_view(runs_view(swept))
    files = [COMPARISON, SIDE_BY_SIDE, TABLE_CSV] if children else []
    described = (best.run_name, best.run_id, best.final_val_loss, best.val_r2) if best else None
    note = sweep_note(recorder.experiment_id or "0", recorder.run_id, counts, described, files)
    recorder.set_tags({NOTE_TAG: note})
    if not children:
        return summary
    with tempfile.TemporaryDirectory(prefix="learnai-sweep-") as tmp:
        out = Path(tmp)
        _side_by_side(uri, children, out)
        write_table(children, out)
        labels = _labels(children)
        curves = [
            RunCurve(
                labels[c.run_id],
                sweep_runs.metric_history(uri, c.run_id, "val_loss"),
                c.outcome,
                c.diverged_epoch,
            )
            for c in children
        ]
        compare_losses(curves, out / COMPARISON, f"{len(children)} runs: validation loss")
        recorder.log_artifacts(out)
    return summary
