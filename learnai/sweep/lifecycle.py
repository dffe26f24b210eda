"""A multirun's parent MLflow run, owned by learnai's entry point.

Work a sweep cannot do without does not belong in a Hydra callback (Hydra turns a
callback's exception into a warning and goes on). So before ``hydra.main`` launches any
job, the entry point composes the sweep's config, validates the base config and every
job (grid) or every bound of the search space (Optuna), creates the parent run, and hands
its id to every job in its Hydra config (``hydra.job.env_set.LEARNAI_PARENT_RUN_ID``,
which Hydra sets in the job's environment while it runs): it travels inside each job's
own config, to any launcher and any machine, without showing up among its overrides.
When the jobs run in this process (Hydra's basic launcher), the tracking worker creates
the parent while Hydra composes the jobs' configs, and the value is
``${learnai.parent_run_id:}``: an OmegaConf resolver that Hydra calls as the first job
starts, which waits for the parent (or exits with one line if it could not be made).
After Hydra returns or raises, :meth:`Sweep.finish` ends children left RUNNING, writes
the report and ends the parent FINISHED, FAILED or KILLED.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from learnai.config import ConfigError, exit_with
from learnai.context import PARENT_ENV, SWEPT_ENV
from learnai.sweep.validation import compose_sweep, sweep_params, validate_sweep

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from learnai.sweep.invocation import Invocation
    from learnai.tracking import RunRecorder

log = logging.getLogger("learnai")

PARENT_KEY = "tracking.parent_run_id"  # the user's way to join an existing parent
# The resolver through which in-process jobs get a parent still being created.
PARENT_RESOLVER = "learnai.parent_run_id"


@dataclass
class Sweep:
    """One multirun: its composed config, its store and (when learnai made it) its parent."""

    cfg: DictConfig
    uri: str
    sweeper: str
    recorder: RunRecorder | None  # None: the user named an existing parent to join
    swept_keys: list[str]
    joined_run_id: str | None = None  # the parent the user named (tracking.parent_run_id)
    _parent_pending: bool = False  # created while Hydra composes: jobs get it resolved
    _failure_told: bool = False  # the parent could not be made, and the user was told

    @property
    def parent_run_id(self) -> str:
        """The parent's id; while the tracking worker still creates it, this waits."""
        if self.joined_run_id:
            return self.joined_run_id
        assert self.recorder is not None
        return self.recorder.run_id

    @classmethod
    def prepare(cls, inv: Invocation, config_dir: str) -> Sweep | None:
        """Validate the sweep and create its parent run; None when this is no multirun.

        A bad value exits 2 and an unreachable store exits 1, each with one line, before
        any run, study or job exists.
        """
        from hydra.core.global_hydra import GlobalHydra

        from learnai import redaction, tracking

        try:
            try:
                cfg, loader = compose_sweep(inv, config_dir)
                redaction.guard(redaction.config_strings(cfg))
                multirun = inv.multirun or str(cfg.hydra.mode).endswith("MULTIRUN")
                if not multirun:
                    return None
                sweeper = str(cfg.hydra.runtime.choices.get("hydra/sweeper") or "basic")
                validate_sweep(cfg, loader, sweeper, inv.overrides)
            except ConfigError:
                raise
            except Exception as err:  # Hydra/OmegaConf: the overrides do not compose
                raise ConfigError(_one_line(err)) from err
        except ConfigError as err:
            exit_with(err)
        finally:
            GlobalHydra.instance().clear()

        uri = tracking.resolve_uri(cfg.tracking.uri, Path.cwd())
        _check_stores(cfg, uri, sweeper)
        joined = cfg.tracking.get("parent_run_id")
        if joined:
            return cls(cfg, uri, sweeper, None, _swept(cfg, inv.overrides), str(joined))
        jobs_here = _jobs_run_here(cfg)
        if jobs_here:
            from learnai import tracking_worker

            # Its store calls run in a worker (see learnai.tracking_worker), which imports
            # MLflow, opens the store and creates the parent on another core while this
            # process gets torch ready and Hydra composes the jobs (they run here).
            tracking_worker.start(uri)
        try:
            recorder = tracking.RunRecorder.start(
                uri,
                cfg.tracking.experiment,
                run_name=cfg.tracking.run_name or _sweep_name(cfg, inv.overrides),
                tags=_sweep_tags(sweeper, inv.overrides),
                artifact_location=cfg.tracking.artifact_location,
                wait=not jobs_here,
            )
        except Exception as err:
            if jobs_here:
                tracking_worker.stop()
            _exit_without_parent(uri, err)
        sweep = cls(cfg, uri, sweeper, recorder, _swept(cfg, inv.overrides))
        if jobs_here:
            from omegaconf import OmegaConf

            from learnai import picture_worker
            from learnai.device import warm_torch

            warm_torch()
            # The jobs draw there (see learnai.picture_worker); it imports matplotlib
            # while Hydra composes the jobs' configs.
            picture_worker.start()
            sweep._parent_pending = True
            OmegaConf.register_new_resolver(PARENT_RESOLVER, sweep._parent_for_job, replace=True)
        else:
            log.info("sweep %r: parent run %s", recorder.run_name, recorder.run_id)
        return sweep

    def _parent_for_job(self) -> str:
        """The parent's id, as a job in this process starts (Hydra resolves its
        ``hydra.job.env_set``): waits for the tracking worker to create it; if it could
        not be created, one line and exit, as when a sweep waits for its parent."""
        try:
            return self.parent_run_id
        except Exception as err:
            self._failure_told = True
            _exit_without_parent(self.uri, err)

    def job_overrides(self) -> list[str]:
        """Overrides added to every job: how each job finds its parent, on any machine."""
        keys = ",".join(self.swept_keys)
        extra = [f"++hydra.job.env_set.{SWEPT_ENV}='{keys}'"] if keys else []
        if self.recorder is None:
            return extra  # the user's own tracking.parent_run_id override already travels
        parent = f"${{{PARENT_RESOLVER}:}}" if self._parent_pending else self.parent_run_id
        return [f"++hydra.job.env_set.{PARENT_ENV}={parent}", *extra]

    def finish(self, status: str) -> None:
        """End what the sweep left open and report; never raises (a sweep is ending)."""
        from learnai import tracking_worker

        try:
            self._finish(status)
        finally:  # the parent's end and the report's writes are in: let the worker go
            tracking_worker.stop()

    def _finish(self, status: str) -> None:
        from learnai import picture_worker, sweep_runs, tracking

        if self._parent_pending:
            from omegaconf import OmegaConf

            OmegaConf.clear_resolver(PARENT_RESOLVER)
        if self.recorder is None:
            picture_worker.drain()
            return
        try:  # a parent still being created (Ctrl-C while Hydra composed) is waited for
            parent_run_id = self.parent_run_id
            experiment_id = self.recorder.experiment_id
        except Exception as err:  # never created: no run exists to end
            picture_worker.drain()
            if not self._failure_told:
                _tell_without_parent(self.uri, err)
            return
        recorder, self.recorder = self.recorder, None
        try:
            try:
                picture_worker.settle()  # the last job's run, still waiting for its pictures
            finally:  # even if a second Ctrl-C cut that short
                ended = sweep_runs.end_running_children(self.uri, parent_run_id, "KILLED")
            if ended:
                log.warning("%d job run(s) were still RUNNING: ended as KILLED", ended)
            summary = self._report(recorder, parent_run_id)
        except BaseException as err:  # the report is a bonus; the parent must still end
            log.error("sweep report failed: %s", tracking.mask_secrets(_one_line(err)))
            summary = None
            if status == "FINISHED":
                status = "FAILED"
        finally:
            picture_worker.drain()
        try:
            if status != "FINISHED":
                recorder.set_tags({"sweep.state": "aborted" if status == "KILLED" else "failed"})
            recorder.end(status)
        except BaseException as err:
            log.error(
                "could not end the sweep's parent run %s: %s",
                parent_run_id,
                tracking.mask_secrets(_one_line(err)),
            )
        if summary is not None:
            summary.print(self.uri, experiment_id)

    def _report(self, recorder: RunRecorder, parent_run_id: str) -> Any:
        from learnai.sweep_report import report_sweep

        summary = report_sweep(self.uri, recorder)
        if self.sweeper == "optuna":
            from learnai.sweep.study_link import report_linked_study

            report_linked_study(self.cfg, self.uri, parent_run_id, summary)
        return summary


def _one_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return " | ".join(lines[:2]) or type(err).__name__


def _tell_without_parent(uri: str, err: Exception) -> None:
    from learnai import tracking

    if isinstance(err, ConfigError):  # e.g. an experiment deleted in the store
        print(f"learnai: {err}", file=sys.stderr)
        return
    print(
        f"learnai: cannot create the sweep's parent run in "
        f"{tracking.mask_secrets(uri)}: {tracking.mask_secrets(_one_line(err))}",
        file=sys.stderr,
    )


def _exit_without_parent(uri: str, err: Exception) -> NoReturn:
    """One line naming the store (or the bad key) and exit: 2 for a config error, else 1."""
    _tell_without_parent(uri, err)
    raise SystemExit(2 if isinstance(err, ConfigError) else 1) from None


def _jobs_run_here(cfg: DictConfig) -> bool:
    """Whether this process trains the jobs, one after another (``hydra/launcher=basic``,
    Hydra's default), so work can overlap them; joblib, submitit and Ray run them in
    processes of their own."""
    return cfg.hydra.runtime.choices.get("hydra/launcher") == "basic"


def _check_stores(cfg: DictConfig, uri: str, sweeper: str) -> None:
    """A dead, unwritable or shared store: one line and exit 2 before any run exists."""
    from learnai.store_checks import check_run_stores
    from learnai.stores import StoreError

    study = None
    if sweeper == "optuna":
        from hydra_plugins.learnai_optuna_sweeper.storage import storage_url

        study = storage_url(cfg.hydra.sweeper.get("storage"), Path.cwd())
    try:
        check_run_stores(uri, cfg.tracking.artifact_location, study)
    except StoreError as err:
        exit_with(err)  # exit 2, as for a single run


def _sweep_tags(sweeper: str, overrides: list[str]) -> dict[str, str]:
    from learnai import tracking

    return {
        "learnai.sweep": "true",
        "sweep.overrides": tracking.limit_tag(tracking.mask_overrides(overrides)),
        "sweep.sweeper": sweeper,
        "learnai.host": socket.gethostname(),
        "learnai.pid": str(os.getpid()),
    }


def _swept(cfg: DictConfig, overrides: list[str]) -> list[str]:
    """The keys this sweep varies, in the order the user gave them."""
    from learnai import naming

    return naming.swept_keys([*sweep_params(cfg), *overrides])


def _sweep_name(cfg: DictConfig, overrides: list[str]) -> str:
    """``<experiment> 11-26 23:10:05: lr=0.01,1`` from what varies, within MLflow's limit."""
    import datetime

    from learnai import naming, tracking

    when = datetime.datetime.now().strftime("%m-%d %H:%M:%S")
    name = naming.sweep_run_name(cfg.tracking.experiment, [*sweep_params(cfg), *overrides], when)
    return tracking.limit_name(tracking.mask_secrets(name))
