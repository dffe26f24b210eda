"""One tracked run: build objects from the config, train, record everything in MLflow.

:func:`train` is pure with respect to Hydra's entry point: it takes the composed config
and returns the objective (final validation MSE) that sweepers minimise.
"""

from __future__ import annotations

import logging
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from learnai.config import ConfigError, validate
from learnai.context import JobContext, job_context

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from learnai.data import Dataset
    from learnai.loop import History

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
    name: str = ""
    experiment_id: str | None = None


def classify(history: History, val_r2: float, threshold: float) -> str:
    if history.stop == "diverged":
        return "diverged"
    if history.stop == "pruned":
        return "pruned"
    return "converged" if math.isfinite(val_r2) and val_r2 >= threshold else "stalled"


def train(cfg: DictConfig, own_process: bool = False) -> float:
    """Train and track one run; return its objective (``inf`` when it diverged).

    Raises ``optuna.TrialPruned`` after recording the run when the sweeper's pruner
    stopped it. ``own_process``: see :func:`run`.
    """
    result = run(cfg, own_process)
    if result.outcome == "pruned":
        import optuna

        raise optuna.TrialPruned(f"pruned at val_loss={result.final_val_loss:.6g}")
    return result.objective


def run(cfg: DictConfig, own_process: bool = False) -> Result:
    """Train and track one run. ``own_process``: the run is the command's only work (a
    single ``python -m learnai``), so it hands its store calls and pictures to worker
    processes (learnai.tracking_worker, learnai.picture_worker) that import MLflow and
    matplotlib while this one imports torch and trains; they end with the run."""
    from learnai import picture_worker, tracking_worker

    ctx = job_context()
    owns_workers = own_process and not ctx.is_multirun and not tracking_worker.active()
    try:
        return _run(cfg, ctx, owns_workers)
    finally:
        if owns_workers:
            try:
                picture_worker.drain()
            finally:
                tracking_worker.stop()


def _run(cfg: DictConfig, ctx: JobContext, owns_workers: bool) -> Result:
    # Everything that can reject the config happens before the MLflow run exists.
    validate(cfg)
    from learnai import tracking
    from learnai.resources import check_resources
    from learnai.store_checks import check_run_stores

    _exit_on_sigterm()
    _guard_secrets(cfg)
    parent_run_id = cfg.tracking.parent_run_id or ctx.parent_run_id
    if ctx.is_multirun and not parent_run_id:
        raise ConfigError(
            "this multirun job has no parent run (tracking.parent_run_id is not set): start "
            "sweeps with `python -m learnai -m ...`, or pass tracking.parent_run_id=RUN_ID"
        )
    uri = tracking.resolve_uri(cfg.tracking.uri, ctx.base_dir)
    # A dead, unwritable or shared store and a run too big for memory: one line, now.
    check_run_stores(uri, cfg.tracking.artifact_location, _study_storage(ctx))
    check_resources(cfg, ctx.parallel_jobs)
    from learnai import heap, picture_worker, tracking_worker

    if owns_workers:
        tracking_worker.start()  # it imports MLflow while this process imports torch
    import torch
    from hydra.utils import instantiate

    from learnai.device import resolve_device, set_threads, warm_torch

    device = resolve_device(cfg.trainer.device, ctx.job_num)  # the last check of the config
    # A new store's tables, made by another process while this one builds the job; a
    # config refused above has created nothing.
    if owns_workers:
        tracking_worker.prepare(uri)
        warm_torch()  # while the worker opens the store: see learnai.device.warm_torch
    else:
        tracking.prepare_in_background(uri)
    # A sweep's worker draws the pictures while the next job trains (and imports
    # matplotlib there): see learnai.picture_worker.
    drawn_elsewhere = owns_workers or picture_worker.active()
    if not drawn_elsewhere:
        from learnai.animation import pyplot

        pyplot()  # the plots' library too: imported now, it is frozen with the rest
    heap.settle_once()  # before this job builds anything: see learnai.heap
    # A core for the workers: a sweep's picture worker draws while the next job trains,
    # and a single run trains while its workers create the store and import matplotlib.
    # torch's threads spin while they wait for each other, so sharing that core with a
    # worker slowed both (the tutorial's run: 3.9-4.2 s with 2 threads on 2 cores, 3.6 s
    # with 1). trainer.num_threads=N chooses for a long run.
    reserved = 1 if picture_worker.active() or owns_workers else 0
    set_threads(cfg.trainer.num_threads, ctx.parallel_jobs, ctx.launcher_cpus, reserved)
    torch.manual_seed(cfg.trainer.seed)
    data: Dataset = instantiate(cfg.data)
    model = instantiate(cfg.model, n_in=data.n_features).to(device)
    optimizer = instantiate(cfg.optimizer)(model.parameters())
    from learnai.trial_link import current_trial

    trial = current_trial()  # None unless an Optuna sweep launched this job

    if owns_workers:  # it imports matplotlib while this process waits for the store
        picture_worker.start()
    recorder = tracking.RunRecorder.start(
        uri,
        cfg.tracking.experiment,
        run_name=_run_name(cfg, ctx, trial),
        tags=_start_tags(ctx, trial),
        parent_run_id=parent_run_id,
        artifact_location=cfg.tracking.artifact_location,
        flush_every_s=cfg.tracking.flush_every_s,
        wait=not owns_workers,  # a single run trains while its run is created
    )
    try:
        if trial is not None:  # inside: a storage error must not leave the run RUNNING
            trial.set_user_attr("mlflow_run_id", recorder.run_id)
        result, files = _train_and_record(
            cfg, recorder, model, optimizer, data.to(device), device, trial
        )
        if drawn_elsewhere:  # the run ends once its files are drawn and logged
            recorder.flush()
        else:
            _write_files(recorder, files)
    except BaseException as exc:
        status = "KILLED" if isinstance(exc, (KeyboardInterrupt, SystemExit)) else "FAILED"
        recorder.end_despite(status)
        if status == "KILLED":  # Ctrl-C, SIGTERM: say what the stop left behind
            log.warning(
                "run %s stopped: ended KILLED, with its params and the metrics logged so far",
                _name_of(recorder),
            )
        if trial is not None:
            trial.set_user_attr("outcome", "failed")
        from learnai.store_failures import explain_failure

        failure = explain_failure(exc, uri)  # a full disk or a lost store: one line
        if failure is not None:
            raise failure from exc
        raise
    if drawn_elsewhere:  # a single run's panel is not needed again: not kept
        picture_worker.submit(recorder, uri, files, keep=not owns_workers)
        if owns_workers:  # the run ends once its files are in; if they cannot be, say why
            picture_worker.settle(strict=True)
    else:
        recorder.end("FINISHED")
    result.run_id, result.name = recorder.run_id, recorder.run_name or ""
    result.experiment_id = recorder.experiment_id
    if trial is not None:
        trial.set_user_attr("outcome", result.outcome)
    _summary(result, uri, device, show_ui=not ctx.is_multirun)
    return result


def _name_of(recorder: Any) -> str:
    """The run's name for a log line, or why there is none (it could not be created)."""
    try:
        return recorder.run_name or recorder.run_id
    except Exception:
        return "(not created)"


def _study_storage(ctx: JobContext) -> str | None:
    """The Optuna storage URL of the sweep that launched this job, if any."""
    from hydra.core.hydra_config import HydraConfig

    if not ctx.is_multirun:
        return None
    from hydra_plugins.learnai_optuna_sweeper.storage import storage_url

    return storage_url(HydraConfig.get().sweeper.get("storage"), ctx.base_dir)


def _guard_secrets(cfg: DictConfig) -> None:
    """Passwords in this job's stores never reach its console or logs."""
    from hydra.core.hydra_config import HydraConfig

    from learnai import redaction

    values = redaction.config_strings(cfg)
    if HydraConfig.initialized():
        values += redaction.config_strings(HydraConfig.get().sweeper)
    redaction.guard(values)


def _exit_on_sigterm() -> None:
    """A job in a worker process (joblib, submitit) gets the scheduler's SIGTERM too:
    unwind like Ctrl-C so its run ends KILLED instead of staying RUNNING."""
    import signal
    import sys
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def _run_name(cfg: DictConfig, ctx: JobContext, trial: Any) -> str | None:
    """A run is named from what was chosen for it: a sweep job from what its sweep varies
    (``lr=1 depth=2``, ``#12 lr=...``: the trial's params, or the swept keys the entry
    point hands every job), a single run from its command line (``lr=1``)."""
    if cfg.tracking.run_name:
        return cfg.tracking.run_name
    from learnai import naming

    if not ctx.is_multirun:
        keys = [naming.override_key(o) for o in ctx.overrides]
    else:
        keys = list(trial.params) if trial is not None else ctx.swept_keys
    swept = naming.swept_values(ctx.overrides, keys)
    number = trial.number if trial is not None else None
    return naming.child_run_name(swept, number, cfg.tracking.experiment)


def _start_tags(ctx: JobContext, trial: Any) -> dict[str, str]:
    from learnai import tracking

    tags = {f"choice.{k}": str(v) for k, v in ctx.choices.items()}
    if ctx.overrides:
        tags["overrides"] = tracking.limit_tag(tracking.mask_overrides(ctx.overrides))
    if trial is not None:
        tags["optuna.study"] = trial.study_name
        tags["optuna.trial"] = str(trial.number)
    return tags


def _write_files(recorder: Any, files: Any) -> None:
    with tempfile.TemporaryDirectory(prefix="learnai-") as tmp:
        files.write(Path(tmp))
        recorder.log_artifacts(Path(tmp))


def _train_and_record(cfg, recorder, model, optimizer, data, device, trial):
    """Train and log params, metrics and tags; return the result and the run's files,
    still to be drawn and logged."""
    from omegaconf import OmegaConf

    from learnai import artifacts, tracking
    from learnai.loop import Trainer, evaluate
    from learnai.progress import Progress

    resolved = OmegaConf.to_container(cfg, resolve=True)
    recorder.log_params(tracking.flatten(resolved))

    callbacks: list[Any] = [tracking.EpochMetrics(recorder)]
    pruning = None
    if trial is not None:
        from learnai.trial_link import PruningCallback

        pruning = PruningCallback(trial, cfg.trainer.report_every)
        callbacks.append(pruning)
    callbacks.append(Progress(cfg.trainer.epochs, enabled=cfg.trainer.progress))
    anim = cfg.trainer.animation
    trainer = Trainer(
        epochs=cfg.trainer.epochs,
        sync_every=cfg.trainer.sync_every,
        diverge_factor=cfg.trainer.diverge_factor,
        frames=anim.frames,
        animate=anim.enabled,
        callbacks=callbacks,
        # a search stops a diverged trial at once; a demo lets the animation show it
        after_divergence=anim.after_divergence if anim.enabled and trial is None else 0,
    )
    history = trainer.fit(model, optimizer, data)
    final = evaluate(model, data)  # the one model state every final value describes
    outcome = classify(history, final.val_r2, cfg.trainer.converged_r2)
    last_train, last_val, val_r2 = final.train_loss, final.val_loss, final.val_r2
    finals = {"final_train_loss": last_train, "final_val_loss": last_val, "val_r2": val_r2}
    if hasattr(model, "coefficients"):
        finals.update(model.coefficients())
    recorder.add_metrics(
        {k: v for k, v in finals.items() if math.isfinite(v)}, step=history.epochs_run
    )
    tags = {"outcome": outcome, "device": str(device.type), "epochs_run": history.epochs_run}
    # Where a parallel job ran: its GPU (learnai.gpus) and its share of the cores.
    tags["device_name"] = str(device)
    tags["torch_threads"] = _torch_threads()
    if history.diverged_at is not None:
        tags["diverged_epoch"] = history.diverged_at
    recorder.set_tags(tags)
    if pruning is not None and outcome == "diverged":
        pruning.report_last_finite(history.val_loss)

    label = ""
    if hasattr(model, "coefficients"):
        weights = [finals[f"weight.{i}"] for i in range(len(data.feature_names))]
        label = fitted_equation(weights, data.feature_names, finals["bias"])
    files = artifacts.RunFiles.of(
        tracking.mask_secrets(OmegaConf.to_yaml(cfg, resolve=True)),
        history,
        data,
        final,
        cfg.trainer.epochs,
        anim.fps,
        (anim.width, anim.height),
        label,
        cfg.trainer.diverge_factor,
    )
    objective = last_val if outcome != "diverged" and math.isfinite(last_val) else math.inf
    # the run id is filled in by the caller: a single run's may still be being created
    result = Result("", outcome, objective, last_train, last_val, val_r2, label)
    return result, files


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


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def _summary(result: Result, uri: str, device: Any, show_ui: bool) -> None:
    """One line per run: what it is, how it ended, its losses; and the fitted line."""
    from learnai.tracking import ui_command

    who = result.name or f"run {result.run_id}"
    line = f"{who}: {result.outcome} | val_loss {result.final_val_loss:.4g}"
    if math.isfinite(result.val_r2):
        line += f" | val_r2 {result.val_r2:.3f}"
    if result.equation:
        line += f" | {result.equation}"
    log.info("%s", line)
    if show_ui:  # a sweep prints this once, at its end
        log.info(
            "run %s on %s | train_loss %.4g", result.run_id, device.type, result.final_train_loss
        )
        log.info("open the MLflow UI: %s", ui_command(uri, result.experiment_id))
