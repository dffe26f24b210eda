"""Hydra callback: one parent MLflow run per multirun, with a report at its end.

Jobs find the parent through a small file in the sweep directory (see
:mod:`learnai.context`), so launchers that run jobs in other processes keep the link.
This module is imported on every Hydra start: heavy imports stay inside the methods.
"""

from __future__ import annotations

import atexit
import json
import logging
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from learnai.context import parent_file, sweep_dir_of

log = logging.getLogger("learnai")


_failures = 0


def note_failures(count: int) -> None:
    """Sweepers report failed jobs here; the sweep then ends with exit code 1."""
    global _failures
    _failures += count


def current_parent(sweep_dir: Path) -> tuple[str, str] | None:
    """``(tracking uri, parent run id)`` of the multirun writing into ``sweep_dir``."""
    marker = parent_file(sweep_dir)
    if not marker.exists():
        return None
    info = json.loads(marker.read_text())
    return info["uri"], info["run_id"]


def _checked_by_learnai(self: Any, batch: Any) -> None:
    """Stands in for Hydra's BasicSweeper.validate_batch_is_legal (see _validate_jobs)."""


def _validate_jobs(config: DictConfig, sweeper: str) -> None:
    """Check the base config, and each job's or search-space point's config, before any
    run exists: grids job by job, Optuna at every bound and choice of its space."""
    from hydra.core.global_hydra import GlobalHydra

    from learnai.config import ConfigError, exit_with, validate, validate_job

    loader = GlobalHydra.instance().config_loader()
    arguments = list(config.hydra.overrides.task)
    try:
        validate(config)
        if sweeper == "optuna":
            from learnai.sweeper.optuna_impl import check_sweep

            check_sweep(config, loader, config.hydra.sweeper, arguments)
        elif sweeper == "basic":
            from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
            from hydra.core.override_parser.overrides_parser import OverridesParser

            parsed = OverridesParser.create().parse_overrides(arguments)
            for batch in BasicSweeper.split_arguments(parsed, None):
                for job in batch:
                    validate_job(loader, config, list(job))
            # Every job is checked: spare the basic sweeper its own check, which composes
            # each job's config once more (~0.25 s a job) before the launcher composes
            # it to run. Only this process, only after the check above passed.
            BasicSweeper.validate_batch_is_legal = _checked_by_learnai
    except ConfigError as err:
        exit_with(err)
    except Exception as err:  # Hydra/OmegaConf: a job's overrides do not compose
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        exit_with(ConfigError(" | ".join(lines[:2]) or type(err).__name__))


class SweepTracking(Callback):
    """Opens the parent run before the first job and reports on it after the last."""

    def __init__(self) -> None:
        self.recorder: Any = None
        self.uri = ""
        self.sweep_dir: Path | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from learnai import naming, tracking

        runtime = config.hydra.runtime  # HydraConfig is not set yet at this point
        sweeper = runtime.choices.get("hydra/sweeper", "basic")
        _validate_jobs(config, str(sweeper))
        base = Path(runtime.cwd)
        self.sweep_dir = sweep_dir_of(config.hydra)
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        self.uri = tracking.resolve_uri(config.tracking.uri, base)
        overrides = " ".join(config.hydra.overrides.task)
        self.recorder = tracking.RunRecorder.start(
            self.uri,
            config.tracking.experiment,
            run_name=config.tracking.run_name
            or naming.sweep_run_name(
                config.tracking.experiment, config.hydra.overrides.task, self.sweep_dir.name
            ),
            tags={
                "learnai.sweep": "true",
                "sweep.overrides": overrides,
                "sweep.sweeper": str(sweeper),
                "sweep.dir": str(self.sweep_dir),
            },
            artifact_location=config.tracking.artifact_location,
        )
        parent_file(self.sweep_dir).write_text(
            json.dumps({"run_id": self.recorder.run_id, "uri": self.uri})
        )
        # Hydra skips on_multirun_end when a job raises: never leave the parent RUNNING.
        atexit.register(self._abandon)
        log.info("sweep parent run %s (%s)", self.recorder.run_id, overrides or "no overrides")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.recorder is None:
            return
        from learnai.sweep_report import report_sweep

        recorder, self.recorder = self.recorder, None
        atexit.unregister(self._abandon)
        try:
            summary = report_sweep(self.uri, recorder)
        except BaseException:
            recorder.end("FAILED")
            raise
        recorder.end("FINISHED")
        summary.print(self.uri)
        if _failures:
            log.error("%d job(s) failed: see the warnings above and the parent run", _failures)
            sys.exit(1)

    def _abandon(self) -> None:
        if self.recorder is not None:
            recorder, self.recorder = self.recorder, None
            recorder.set_tags({"sweep.state": "aborted"})
            recorder.end("FAILED")
