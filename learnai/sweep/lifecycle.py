"""A multirun's parent MLflow run, owned by learnai's entry point.

Work a sweep cannot do without does not belong in a Hydra callback (Hydra turns a
callback's exception into a warning and goes on). So before ``hydra.main`` launches any
job, the entry point calls :meth:`Sweep.prepare`: it composes the sweep's config,
validates the base config and every job (grid) or every bound of the search space
(Optuna), checks the stores and creates the parent run. :meth:`Sweep.link_jobs` then
registers a config (group ``sweep_link``, pulled in by ``conf/config.yaml``) that puts the
parent's id into every job's ``hydra.job.env_set``: it travels inside each job's own
config, to any launcher and any machine, without showing up among its overrides.
After Hydra returns or raises, :meth:`Sweep.finish` ends children left RUNNING, writes
the report and ends the parent FINISHED, FAILED or KILLED.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from learnai.config import ConfigError, exit_with
from learnai.secrets import mask_secrets
from learnai.sweep.validation import compose_sweep, sweep_params, validate_sweep
from learnai.train.context import LAUNCHER_ENV, LINK_GROUP, PARENT_ENV, SWEPT_ENV

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from learnai.sweep.invocation import Invocation
    from learnai.tracking.recorder import RunRecorder

log = logging.getLogger("learnai")


@dataclass
class Sweep:
    """One multirun: its composed config, its store and (when learnai made it) its parent."""

    cfg: DictConfig
    uri: str
    sweeper: str
    recorder: RunRecorder | None  # None: the user named an existing parent to join
    swept_keys: list[str]

    @classmethod
    def prepare(cls, inv: Invocation, config_dir: str) -> Sweep | None:
        """Validate the sweep, check its stores and create its parent run; None when this
        is no multirun. A bad value or store exits 2 and a parent that cannot be created
        exits 1, each with one line, before any run, study or job exists."""
        from hydra.core.global_hydra import GlobalHydra

        from learnai.tracking.uris import resolve_uri

        try:
            try:
                cfg, loader = compose_sweep(inv, config_dir)
                multirun = inv.multirun or str(cfg.hydra.mode).endswith("MULTIRUN")
                if not multirun:
                    return None
                sweeper = str(cfg.hydra.runtime.choices.get("hydra/sweeper") or "basic")
                validate_sweep(cfg, loader, sweeper, inv.overrides)
            except ConfigError:
                raise
            except Exception as err:  # Hydra/OmegaConf: the overrides do not compose
                raise ConfigError(_one_line(err)) from err
            uri = resolve_uri(cfg.tracking.uri, Path.cwd())
            _check_stores(cfg, uri, sweeper)
        except ConfigError as err:
            exit_with(err)
        finally:
            GlobalHydra.instance().clear()

        swept = _swept(cfg, inv.overrides)
        if cfg.tracking.get("parent_run_id"):  # joining a parent: the override travels
            return cls(cfg, uri, sweeper, None, swept)
        try:
            recorder = _create_parent(cfg, uri, sweeper, inv.overrides)
        except ConfigError as err:  # e.g. an experiment deleted in the store
            exit_with(err)
        except Exception as err:
            print(
                f"learnai: cannot create the sweep's parent run in {mask_secrets(uri)}: "
                f"{mask_secrets(_one_line(err))}",
                file=sys.stderr,
            )
            raise SystemExit(1) from None
        log.info("sweep %r: parent run %s", recorder.run_name, recorder.run_id)
        return cls(cfg, uri, sweeper, recorder, swept)

    def link_jobs(self) -> None:
        """Register what every job of this sweep is told: its parent run and the keys the
        sweep varies (``hydra.job.env_set``, read back by :func:`job_context`)."""
        from hydra.core.config_store import ConfigStore

        from learnai.train.orphan import launcher_id

        env = {LAUNCHER_ENV: launcher_id()}  # a job whose launcher dies stops (orphan.py)
        if self.recorder is not None:
            env[PARENT_ENV] = self.recorder.run_id
        if self.swept_keys:
            env[SWEPT_ENV] = ",".join(self.swept_keys)
        node = {"hydra": {"job": {"env_set": env}}}
        ConfigStore.instance().store(group=LINK_GROUP, name="parent", node=node, package="_global_")

    def finish(self, status: str) -> None:
        """End what the sweep left open, report, and end the parent; never raises (the
        sweep is ending, and the error that ends it is the one to show)."""
        from learnai.sweep.children import end_running_children

        if self.recorder is None:
            return
        recorder, self.recorder = self.recorder, None
        try:
            ended = end_running_children(self.uri, recorder.run_id, "KILLED")
            if ended:
                log.warning("%d job run(s) were still RUNNING: ended as KILLED", ended)
            summary = self._report(recorder)
        except BaseException as err:  # the report is a bonus; the parent must still end
            from learnai.tracking.failures import explain_failure

            lost = explain_failure(err, self.uri)
            if lost is not None and " writing " in str(lost):  # the artifacts' disk is full,
                summary = None  # not the store's: it can still end the parent
                status = "FAILED" if status == "FINISHED" else status
            elif lost is not None:  # the store is gone or full: no use going on
                log.error(
                    "the sweep's parent run %s stays RUNNING: the store failed (the next "
                    "command on it ends it KILLED)",
                    recorder.run_id,
                )
                return
            else:
                log.error("sweep report failed: %s", _one_line(err))
                summary = None
                if status == "FINISHED":
                    status = "FAILED"
        try:
            if status != "FINISHED":
                recorder.set_tags({"sweep.state": "aborted" if status == "KILLED" else "failed"})
            recorder.end(status)
        except BaseException as err:
            log.error(
                "could not end the sweep's parent run %s: %s", recorder.run_id, _one_line(err)
            )
        if summary is not None:
            summary.print(self.uri, recorder.experiment_id)

    def _report(self, recorder: RunRecorder) -> Any:
        from learnai.sweep.report import report_sweep

        summary = report_sweep(self.uri, recorder)
        if self.sweeper == "optuna":
            from learnai.sweep.study_link import report_linked_study

            report_linked_study(self.cfg, self.uri, recorder.run_id, summary)
        return summary


def _one_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return " | ".join(lines[:2]) or type(err).__name__


def _check_stores(cfg: DictConfig, uri: str, sweeper: str) -> None:
    """A dead, unwritable or shared store: :class:`StoreError` before any run exists."""
    from learnai.tracking.checks import check_run_stores

    study = None
    if sweeper == "optuna":
        from hydra_plugins.learnai_optuna_sweeper.storage import storage_url

        study = storage_url(cfg.hydra.sweeper.get("storage"), Path.cwd())
    check_run_stores(uri, cfg.tracking.artifact_location, study, role="sweep")


def _create_parent(cfg: DictConfig, uri: str, sweeper: str, overrides: list[str]) -> RunRecorder:
    from learnai.secrets import mask_overrides
    from learnai.tracking.recorder import RunRecorder, limit_tag
    from learnai.tracking.source import source_tags

    tags = {
        **source_tags(),  # the Source column and git commit, as on every child
        "learnai.sweep": "true",
        "sweep.overrides": limit_tag(mask_overrides(overrides)),
        "sweep.sweeper": sweeper,
    }
    return RunRecorder.start(
        uri,
        cfg.tracking.experiment,
        run_name=cfg.tracking.run_name or _sweep_name(cfg, overrides),
        tags=tags,
        artifact_location=cfg.tracking.artifact_location,
    )


def _swept(cfg: DictConfig, overrides: list[str]) -> list[str]:
    """The keys this sweep varies, in the order the user gave them."""
    from learnai.tracking import naming

    return naming.swept_keys([*sweep_params(cfg), *overrides])


def _sweep_name(cfg: DictConfig, overrides: list[str]) -> str:
    """``<experiment> 11-26 23:10:05: lr=0.01,1`` from what varies, within MLflow's limit."""
    import datetime

    from learnai.tracking import naming
    from learnai.tracking.recorder import limit_name

    when = datetime.datetime.now().strftime("%m-%d %H:%M:%S")
    name = naming.sweep_run_name(cfg.tracking.experiment, [*sweep_params(cfg), *overrides], when)
    return limit_name(mask_secrets(name))
