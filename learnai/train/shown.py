"""Where a run shows how it went: its name and description in MLflow (the verdict, set
once training is over), the runs-table view its printed link opens, and the link from
its Optuna trial to it. Called by :mod:`learnai.train.run`'s stages, so every launcher
(one run, a sweep's job, a stacked member) records the same things.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from hydra_plugins.learnai_optuna_sweeper.trial import JobTrial
    from learnai.tracking.recorder import RunRecorder
    from learnai.train.context import JobContext
    from learnai.train.loop import History


class OpenRun(Protocol):
    """What these functions read of :class:`learnai.train.run.OpenRun` (named by its
    shape: run.py calls this module, not the other way round)."""

    recorder: RunRecorder
    uri: str
    trial: JobTrial | None
    is_multirun: bool
    named: bool
    shown_params: list[str]


def link_trial(job: OpenRun) -> None:
    """The trial names its run: its id, a link (user attr ``mlflow_run_url``) and, where
    optuna-dashboard is installed, a note whose markdown link the dashboard renders."""
    from learnai.tracking.links import run_url, ui_base

    trial, recorder = job.trial, job.recorder
    assert trial is not None
    url = run_url(ui_base(job.uri), recorder.experiment_id or "0", recorder.run_id)
    trial.set_user_attr("mlflow_run_id", recorder.run_id)
    trial.set_user_attr("mlflow_run_url", url)
    trial.save_note(f"MLflow run: [{recorder.run_name or recorder.run_id}]({url})")


def _renote_trial(job: OpenRun) -> None:
    """The trial's note names its run as renamed, with its verdict."""
    trial, recorder = job.trial, job.recorder
    if trial is not None:
        url = trial.user_attrs.get("mlflow_run_url")
        if url:
            trial.save_note(f"MLflow run: [{recorder.run_name or recorder.run_id}]({url})")


def shown_params(cfg: DictConfig, ctx: JobContext, trial: JobTrial | None) -> list[str]:
    """The params a run's runs-table view shows: what its command line or sweep set."""
    from learnai.tracking import naming

    if ctx.is_multirun:
        return list(trial.params) if trial is not None else list(ctx.swept_keys)
    keys = [naming.override_key(o) for o in ctx.overrides]
    # where a run is recorded is no value worth a column
    return [k for k in dict.fromkeys(keys) if not k.startswith("tracking.") and _leaf(cfg, k)]


def _leaf(cfg: DictConfig, key: str) -> bool:
    """Whether ``key`` is one value of ``cfg`` (a param), not a group or missing."""
    from omegaconf import OmegaConf

    found = OmegaConf.select(cfg, key, default=None)
    return found is not None and not OmegaConf.is_config(found)


def show_verdict(
    cfg: DictConfig, job: OpenRun, outcome: str, history: History, final: Any
) -> str | None:
    """Put the verdict where the UI shows it first: the run's name (``lr=1 · diverged at
    epoch 1``; a name the user chose stays as given) and its description. A single run
    also stores the runs-table view its printed link opens; a sweep's parent stores its
    children's. Returns that view's key."""
    from learnai.tracking import naming, notes
    from learnai.tracking.links import runs_view

    recorder = job.recorder
    verdict = naming.verdict(outcome, history.diverged_at, history.epochs_run)
    note = notes.run_note(
        outcome,
        verdict,
        final.val_loss,
        final.val_r2,
        history.epochs_run,
        cfg.trainer.converged_r2,
    )
    recorder.set_tags({notes.NOTE_TAG: note, "learnai.name": recorder.run_name})
    if not job.named and recorder.run_name:
        recorder.rename(naming.with_verdict(recorder.run_name, verdict))
        _renote_trial(job)
    if job.is_multirun:
        return None
    return recorder.share_view(runs_view(job.shown_params))
