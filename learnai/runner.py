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

from learnai.config import validate
from learnai.context import JobContext, job_context

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from learnai.data import Dataset
    from learnai.train import History

log = logging.getLogger("learnai")


@dataclass
class Result:
    run_id: str
    outcome: str
    objective: float
    final_train_loss: float
    final_val_loss: float
    val_r2: float


def classify(history: History, val_r2: float, threshold: float) -> str:
    if history.stop == "diverged":
        return "diverged"
    if history.stop == "pruned":
        return "pruned"
    return "converged" if math.isfinite(val_r2) and val_r2 >= threshold else "stalled"


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
    # Everything that can reject the config happens before the MLflow run exists.
    validate(cfg)
    import torch
    from hydra.utils import instantiate

    from learnai.device import resolve_device, set_threads

    ctx = job_context()
    device = resolve_device(cfg.trainer.device)
    set_threads(cfg.trainer.num_threads, ctx.parallel_jobs)
    torch.manual_seed(cfg.trainer.seed)
    data: Dataset = instantiate(cfg.data)
    model = instantiate(cfg.model, n_in=data.n_features).to(device)
    optimizer = instantiate(cfg.optimizer)(model.parameters())
    link = _trial_link(cfg)

    from learnai import tracking

    uri = tracking.resolve_uri(cfg.tracking.uri, ctx.base_dir)
    recorder = tracking.RunRecorder.start(
        uri,
        cfg.tracking.experiment,
        run_name=_run_name(cfg, ctx, link),
        tags=_start_tags(ctx, cfg),
        parent_run_id=ctx.parent_run_id,
        artifact_location=cfg.tracking.artifact_location,
        flush_every_s=cfg.tracking.flush_every_s,
    )
    if link is not None:
        link.attach(recorder.run_id)
    try:
        result = _train_and_record(cfg, recorder, model, optimizer, data.to(device), device, link)
    except BaseException as exc:
        status = "KILLED" if isinstance(exc, (KeyboardInterrupt, SystemExit)) else "FAILED"
        recorder.end(status)
        if link is not None:
            link.finish("failed")
        raise
    recorder.end("FINISHED")
    if link is not None:
        link.finish(result.outcome)
    _summary(result, uri, device, show_ui=not ctx.is_multirun)
    return result


def _trial_link(cfg: DictConfig) -> Any:
    if cfg.trial.study is None or cfg.trial.number is None:
        return None
    from learnai.sweeper.trial_link import TrialLink

    return TrialLink.connect(
        cfg.trial.study, cfg.trial.storage, cfg.trial.number, cfg.trial.report_every
    )


def _run_name(cfg: DictConfig, ctx: JobContext, link: Any) -> str | None:
    """A sweep job is named from what its sweep varies (``lr=1 depth=2``, ``#12 lr=...``).

    The swept keys are the trial's params (Optuna) or the sweeping overrides of the
    command line, which Hydra's basic sweeper saves as ``multirun.yaml``.
    """
    if cfg.tracking.run_name or not ctx.is_multirun:
        return cfg.tracking.run_name
    from learnai import naming

    if link is not None:
        keys = list(link.trial.params)
    else:
        saved = ctx.sweep_dir / "multirun.yaml" if ctx.sweep_dir else None
        arguments: list[str] = []
        if saved is not None and saved.is_file():
            from omegaconf import OmegaConf

            arguments = list(OmegaConf.load(saved).hydra.overrides.task)
        keys = naming.swept_keys(arguments)
    swept = naming.swept_values(ctx.overrides, keys)
    return naming.child_run_name(swept, cfg.trial.number, cfg.tracking.experiment)


def _start_tags(ctx: JobContext, cfg: DictConfig) -> dict[str, str]:
    from learnai import tracking

    tags = {f"choice.{k}": str(v) for k, v in ctx.choices.items()}
    overrides = [o for o in ctx.overrides if not o.startswith("trial.")]  # sweeper plumbing
    if overrides:
        tags["overrides"] = tracking.mask_secrets(" ".join(overrides))
    if cfg.trial.study is not None:
        tags["optuna.study"] = cfg.trial.study
        tags["optuna.trial"] = str(cfg.trial.number)
    return tags


def _train_and_record(cfg, recorder, model, optimizer, data, device, link) -> Result:
    from omegaconf import OmegaConf

    from learnai import artifacts, tracking
    from learnai.progress import Progress
    from learnai.train import Trainer, r2_score

    resolved = OmegaConf.to_container(cfg, resolve=True)
    resolved.pop("trial", None)  # the sweeper's plumbing, recorded as tags instead
    recorder.log_params(tracking.flatten(resolved))

    callbacks: list[Any] = [tracking.EpochMetrics(recorder)]
    if link is not None:
        callbacks.append(link.pruning_callback())
    callbacks.append(Progress(cfg.trainer.epochs, enabled=cfg.trainer.progress))
    anim = cfg.trainer.animation
    trainer = Trainer(
        epochs=cfg.trainer.epochs,
        sync_every=cfg.trainer.sync_every,
        diverge_factor=cfg.trainer.diverge_factor,
        frames=anim.frames,
        animate=anim.enabled,
        callbacks=callbacks,
    )
    history = trainer.fit(model, optimizer, data)

    import torch

    model.eval()
    with torch.no_grad():
        val_r2 = r2_score(model(data.x_val), data.y_val)
    outcome = classify(history, val_r2, cfg.trainer.converged_r2)
    last_train, last_val = history.train_loss[-1], history.val_loss[-1]
    finals = {"final_train_loss": last_train, "final_val_loss": last_val, "val_r2": val_r2}
    if hasattr(model, "coefficients"):
        finals.update(model.coefficients())
    recorder.add_metrics(
        {k: v for k, v in finals.items() if math.isfinite(v)}, step=len(history.train_loss) - 1
    )
    recorder.set_tags(
        {"outcome": outcome, "device": str(device.type), "epochs_run": len(history.train_loss)}
    )
    if link is not None and outcome == "diverged":
        link.report_last_finite(history.val_loss)

    with torch.no_grad():
        final_prediction = model(data.grid_features).squeeze(1).float().cpu().numpy()
    label = ""
    if hasattr(model, "coefficients"):
        terms = [f"{finals[f'weight.{i}']:.3f}*{name}" for i, name in enumerate(data.feature_names)]
        label = "y = " + " + ".join([*terms, f"{finals['bias']:.3f}"])
    with tempfile.TemporaryDirectory(prefix="learnai-") as tmp:
        yaml_text = tracking.mask_secrets(OmegaConf.to_yaml(cfg, resolve=True))
        artifacts.write_run_artifacts(
            Path(tmp),
            yaml_text,
            history,
            data,
            final_prediction,
            cfg.trainer.epochs,
            anim.fps,
            (anim.width, anim.height),
            label,
        )
        recorder.log_artifacts(Path(tmp))

    objective = last_val if outcome != "diverged" and math.isfinite(last_val) else math.inf
    return Result(recorder.run_id, outcome, objective, last_train, last_val, val_r2)


def _summary(result: Result, uri: str, device: Any, show_ui: bool) -> None:
    from learnai.tracking import ui_command

    log.info(
        "run %s: %s on %s | train_loss %.4g | val_loss %.4g | val_r2 %.4f",
        result.run_id,
        result.outcome,
        device.type,
        result.final_train_loss,
        result.final_val_loss,
        result.val_r2,
    )
    if show_ui:  # a sweep prints this once, at its end
        from learnai.tracking import open_store

        experiment_id = open_store(uri).get_run(result.run_id).info.experiment_id
        log.info("open the MLflow UI: %s", ui_command(uri, experiment_id))
