"""One tracked run, top to bottom: validate, check the stores, create the MLflow run,
train, draw, log, end.

:func:`run` takes the composed config and returns a :class:`Result`; :func:`train` is
what Hydra's entry point calls and returns the objective sweepers minimise (the final
validation MSE). Nothing here touches signals, streams or the environment: a notebook
can call :func:`run` and notice nothing.
"""

from __future__ import annotations

import contextlib
import logging
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from learnai.config import ConfigError, validate
from learnai.train.context import JobContext, job_context

if TYPE_CHECKING:
    from omegaconf import DictConfig
    from torch import nn

    from hydra_plugins.learnai_optuna_sweeper.trial import JobTrial
    from learnai.tracking.recorder import RunRecorder
    from learnai.train.data import Dataset
    from learnai.train.loop import History, Trainer
    from learnai.train.pruning import PruningCallback

log = logging.getLogger("learnai")


@dataclass
class Result:
    run_id: str
    outcome: str
    objective: float
    final_train_loss: float
    final_val_loss: float
    val_r2: float
    equation: str = ""  # a linear model's fitted line, e.g. "y = 2.013 x + 1.001"
    name: str = ""  # as named before training, without its verdict (what consoles print)
    experiment_id: str | None = None
    view: str | None = None  # the runs-table view the printed link opens (links.view_key)


def train(cfg: DictConfig) -> float:
    """Train and track one run; return its objective (``inf`` when it diverged).

    Raises ``optuna.TrialPruned`` after recording the run when the sweeper's pruner
    stopped it.
    """
    result = run(cfg)
    if result.outcome == "pruned":
        import optuna

        raise optuna.TrialPruned(f"pruned at val_loss={result.final_val_loss:.6g}")
    return result.objective


def run(cfg: DictConfig) -> Result:
    """Train and track one run; every check that can refuse it comes before its run."""
    from hydra.utils import instantiate

    job = open_run(cfg)
    import torch

    try:
        torch.manual_seed(cfg.trainer.seed)
        data = instantiate(cfg.data).to(job.device)
        model = instantiate(cfg.model, n_in=data.n_features).to(job.device)
        optimizer = instantiate(cfg.optimizer)(model.parameters())
        log_params(job, cfg)
        history = make_trainer(cfg, job, data).fit(model, optimizer, data)
        result = finish_run(cfg, job, model, data, history)
    except BaseException as exc:
        end_failed(job, exc)
    summarise(result, job)
    return result


@dataclass
class OpenRun:
    """A created MLflow run and what its job learnt before creating it."""

    recorder: RunRecorder
    uri: str
    device: Any  # torch.device
    trial: JobTrial | None  # set when an Optuna sweep launched this job
    is_multirun: bool
    pruning: PruningCallback | None = None  # the trial's callback, once training starts
    named: bool = False  # the user chose the run's name: it keeps no verdict
    shown_params: list[str] = field(default_factory=list)  # the params its view shows


def open_run(cfg: DictConfig, device: Any = None) -> OpenRun:
    """Validate ``cfg``, check its stores and the machine, pick the device and threads,
    and create the run. Raises before any run exists when anything would refuse it."""
    from hydra_plugins.learnai_optuna_sweeper.trial import current_trial
    from learnai.tracking.checks import check_run_stores
    from learnai.tracking.recorder import RunRecorder
    from learnai.tracking.uris import resolve_uri
    from learnai.train.device import resolve_device, set_threads
    from learnai.train.resources import check_resources
    from learnai.train.shown import link_trial, shown_params

    validate(cfg)
    ctx = job_context()
    parent_run_id = cfg.tracking.parent_run_id or ctx.parent_run_id
    if ctx.is_multirun and not parent_run_id:
        raise ConfigError(
            "this multirun job has no parent run (tracking.parent_run_id is not set): start "
            "sweeps with `python -m learnai -m ...`, or pass tracking.parent_run_id=RUN_ID"
        )
    uri = resolve_uri(cfg.tracking.uri, ctx.base_dir)
    role = "job" if ctx.is_multirun else "run"
    check_run_stores(uri, cfg.tracking.artifact_location, _study_storage(ctx), role=role)
    check_resources(cfg, ctx.parallel_jobs)
    if device is None:
        device = resolve_device(cfg.trainer.device, ctx.job_num)
        set_threads(cfg.trainer.num_threads, ctx.parallel_jobs, ctx.launcher_cpus)
    trial = current_trial()
    shown = shown_params(cfg, ctx, trial)
    recorder = RunRecorder.start(
        uri,
        cfg.tracking.experiment,
        run_name=_run_name(cfg, ctx, trial),
        tags=_start_tags(ctx, trial),
        parent_run_id=parent_run_id,
        artifact_location=cfg.tracking.artifact_location,
        flush_every_s=cfg.tracking.flush_every_s,
    )
    job = OpenRun(recorder, uri, device, trial, ctx.is_multirun, None, bool(cfg.tracking.run_name))
    job.shown_params = shown
    if trial is not None:
        try:
            link_trial(job)
        except BaseException as exc:
            end_failed(job, exc)
    return job


def end_failed(job: OpenRun, exc: BaseException) -> None:
    """End the run KILLED (Ctrl-C, SIGTERM) or FAILED, and re-raise: a store that failed
    (full disk, gone) as one line naming it."""
    from learnai.tracking.failures import explain_failure

    recorder, uri, trial = job.recorder, job.uri, job.trial

    status = "KILLED" if isinstance(exc, (KeyboardInterrupt, SystemExit)) else "FAILED"
    if recorder.end_despite(status) and status == "KILLED":
        log.warning(
            "run %s stopped: ended KILLED, with its params and the metrics logged so far",
            recorder.run_name or recorder.run_id,
        )
    if trial is not None:
        with contextlib.suppress(Exception):  # the study's store may be what failed
            trial.set_user_attr("outcome", "failed")
    failure = explain_failure(exc, uri)
    if failure is not None:
        raise failure from exc
    raise exc


def classify(history: History, val_r2: float, threshold: float) -> str:
    if history.stop == "diverged":
        return "diverged"
    if history.stop == "pruned":
        return "pruned"
    return "converged" if math.isfinite(val_r2) and val_r2 >= threshold else "stalled"


def _study_storage(ctx: JobContext) -> str | None:
    """The Optuna storage URL of the sweep that launched this job, if any."""
    if not ctx.is_multirun:
        return None
    from hydra.core.hydra_config import HydraConfig

    from hydra_plugins.learnai_optuna_sweeper.storage import storage_url

    return storage_url(HydraConfig.get().sweeper.get("storage"), ctx.base_dir)


def _run_name(cfg: DictConfig, ctx: JobContext, trial: JobTrial | None) -> str | None:
    """A run is named from what was chosen for it: a sweep job from what its sweep varies
    (``lr=1 depth=2``, ``#12 lr=...``: the trial's params, or the swept keys the entry
    point hands every job), a single run from its command line (``lr=1``)."""
    if cfg.tracking.run_name:
        return cfg.tracking.run_name
    from learnai.tracking import naming

    if not ctx.is_multirun:
        keys = naming.naming_keys(naming.override_key(o) for o in ctx.overrides)
    else:
        keys = list(trial.params) if trial is not None else ctx.swept_keys
    swept = naming.swept_values(ctx.overrides, keys)
    number = trial.number if trial is not None else None
    return naming.child_run_name(swept, number, cfg.tracking.experiment)


def _start_tags(ctx: JobContext, trial: JobTrial | None) -> dict[str, str]:
    from learnai.secrets import mask_overrides
    from learnai.tracking.recorder import limit_tag
    from learnai.tracking.source import source_tags

    tags = {**source_tags(), **{f"choice.{k}": str(v) for k, v in ctx.choices.items()}}
    if ctx.overrides:
        tags["overrides"] = limit_tag(mask_overrides(ctx.overrides))
    if trial is not None:
        tags["optuna.study"] = trial.study_name
        tags["optuna.trial"] = str(trial.number)
    return tags


def log_params(job: OpenRun, cfg: DictConfig) -> None:
    """The resolved config as the run's params, secrets masked."""
    from omegaconf import OmegaConf

    from learnai.tracking.recorder import flatten

    job.recorder.log_params(flatten(OmegaConf.to_container(cfg, resolve=True)))


def make_trainer(cfg: DictConfig, job: OpenRun, data: Dataset | None = None) -> Trainer:
    """The loop with the run's callbacks: metrics, pruning (in a study), progress.

    Given ``data``, the trial's intermediate values are capped at the validation loss of
    predicting the mean (val_r2 = 0), so a blow-up does not flatten the study's plots
    (see :class:`learnai.train.pruning.PruningCallback`)."""
    from learnai.tracking.recorder import EpochMetrics
    from learnai.train.loop import Trainer
    from learnai.train.orphan import LauncherWatch
    from learnai.train.progress import Progress

    callbacks: list[Any] = [EpochMetrics(job.recorder)]
    if job.trial is not None:
        from learnai.train.pruning import PruningCallback

        ceiling = float(data.y_val.var(unbiased=False)) if data is not None else None
        job.pruning = PruningCallback(job.trial, cfg.trainer.report_every, ceiling=ceiling)
        callbacks.append(job.pruning)
    anim = cfg.trainer.animation
    # a search stops a diverged trial at once; a demo lets the animation show it
    after = anim.after_divergence if anim.enabled and job.trial is None else 0
    name = job.recorder.run_name or ""
    callbacks.append(
        Progress(cfg.trainer.epochs, cfg.trainer.progress, name=name, after_divergence=after)
    )
    if watch := LauncherWatch.of(job_context().launcher):  # a sweep job outlives no launcher
        callbacks.append(watch)
    return Trainer(
        epochs=cfg.trainer.epochs,
        sync_every=cfg.trainer.sync_every,
        diverge_factor=cfg.trainer.diverge_factor,
        frames=anim.frames,
        animate=anim.enabled,
        callbacks=callbacks,
        after_divergence=after,
    )


def finish_run(
    cfg: DictConfig, job: OpenRun, model: nn.Module, data: Dataset, history: History
) -> Result:
    """Measure the trained model once, record its outcome and final values, draw and log
    the run's files, and end the run FINISHED."""
    import torch
    from omegaconf import OmegaConf

    from learnai.pictures.artifacts import RunFiles
    from learnai.secrets import mask_secrets
    from learnai.train.loop import evaluate
    from learnai.train.shown import show_verdict

    recorder = job.recorder
    final = evaluate(model, data)  # the one model state every final value describes
    outcome = classify(history, final.val_r2, cfg.trainer.converged_r2)
    finals = {
        "final_train_loss": final.train_loss,
        "final_val_loss": final.val_loss,
        "val_r2": final.val_r2,
    }
    if hasattr(model, "coefficients"):
        finals.update(model.coefficients())
    recorder.add_metrics(
        {k: v for k, v in finals.items() if math.isfinite(v)}, step=history.epochs_run
    )
    tags = {
        "outcome": outcome,
        "device": str(job.device.type),
        "device_name": str(job.device),  # where a parallel job ran: its GPU
        "torch_threads": torch.get_num_threads(),  # and its share of the cores
        "epochs_run": history.epochs_run,
    }
    if history.diverged_at is not None:
        tags["diverged_epoch"] = history.diverged_at
    recorder.set_tags(tags)
    if job.pruning is not None and outcome == "diverged":
        job.pruning.report_last_finite(history.val_loss)

    label = ""
    if hasattr(model, "coefficients"):
        weights = [finals[f"weight.{i}"] for i in range(len(data.feature_names))]
        label = fitted_equation(weights, data.feature_names, finals["bias"])
    anim = cfg.trainer.animation
    files = RunFiles.of(
        mask_secrets(OmegaConf.to_yaml(cfg, resolve=True)),
        history,
        data,
        final,
        cfg.trainer.epochs,
        anim.fps,
        (anim.width, anim.height),
        label,
        cfg.trainer.diverge_factor,
    )
    with tempfile.TemporaryDirectory(prefix="learnai-") as tmp:
        files.write(Path(tmp))
        recorder.log_artifacts(Path(tmp))
    name = recorder.run_name  # as created: the name consoles and tables print
    if outcome != "diverged":  # a blown-up network is not worth loading
        scores = ["final_train_loss", "final_val_loss", "val_r2"]
        recorder.log_model(model, data.x_val[:5], history.epochs_run, scores)
    view = show_verdict(cfg, job, outcome, history, final)
    recorder.end("FINISHED")
    ok = outcome != "diverged" and math.isfinite(final.val_loss)
    objective = final.val_loss if ok else math.inf
    result = Result(
        recorder.run_id,
        outcome,
        objective,
        final.train_loss,
        final.val_loss,
        final.val_r2,
        label,
        name,
        recorder.experiment_id,
        view,
    )
    if job.trial is not None:
        job.trial.set_user_attr("outcome", outcome)
    return result


def fitted_equation(weights: list[float], features: list[str], bias: float) -> str:
    """``y = 2.013 x + 1.001``: what a linear model learned, as the tutorial writes it."""
    if not all(map(math.isfinite, [*weights, bias])):
        return ""
    text = "y ="
    for i, (w, name) in enumerate(zip(weights, features, strict=True)):
        sign = "-" if w < 0 else ("+" if i else "")
        text += f" {sign} {abs(w):.3f} {name}" if sign else f" {abs(w):.3f} {name}"
    sign = "-" if bias < 0 else "+"
    return f"{text} {sign} {abs(bias):.3f}"


def summarise(result: Result, job: OpenRun) -> None:
    """One line per run: what it is, how it ended, its losses; and the fitted line."""
    uri, device, show_ui = job.uri, job.device, not job.is_multirun
    from learnai.tracking.links import ui_command

    who = result.name or f"run {result.run_id}"
    line = f"{who}: {result.outcome} | val_loss {result.final_val_loss:.4g}"
    if math.isfinite(result.val_r2):
        r2 = result.val_r2
        line += f" | val_r2 {r2:.3f}" if abs(r2) < 1000 else f" | val_r2 {r2:.3g}"
    if result.equation:
        line += f" | {result.equation}"
    log.info("%s", line)
    if show_ui:  # a sweep prints this once, at its end
        log.info(
            "run %s on %s | train_loss %.4g", result.run_id, device.type, result.final_train_loss
        )
        log.info("open the MLflow UI: %s", ui_command(uri, result.experiment_id, result.view))
