"""The ``python -m learnai`` / ``learnai`` entry point.

A single run is Hydra's alone. A multirun is owned here, around Hydra: the sweep is
validated and its parent MLflow run created before any job starts, and the parent is
reported on and ended after the last job, whatever ends the sweep (see
:mod:`learnai.sweep.lifecycle`).
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from learnai.config import ConfigError, exit_with, register_configs

register_configs()


def config_dir() -> str:
    """``conf/`` of a source checkout (editable install), else the wheel's ``learnai/conf``."""
    source = Path(__file__).resolve().parent.parent / "conf"
    if (source / "config.yaml").is_file():
        return str(source)
    return str(Path(__file__).resolve().parent / "conf")


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")
def _entry(cfg: DictConfig) -> float:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from learnai.runner import train

    try:
        return train(cfg, own_process=True)
    except ConfigError as err:
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            raise  # the sweeper records this job as failed
        exit_with(err)


def _terminate(signum: int, frame: object) -> None:
    # SIGTERM (a scheduler's cancel, `kill`) unwinds like Ctrl-C: open MLflow runs
    # end as KILLED and a sweep's parent run is closed instead of staying RUNNING.
    sys.exit(128 + signum)


def _status(exc: BaseException | None) -> str:
    """The parent run's status for how Hydra's multirun ended."""
    if exc is None:
        return "FINISHED"
    if isinstance(exc, KeyboardInterrupt):
        return "KILLED"
    if isinstance(exc, SystemExit):
        if exc.code in (0, None):
            return "FINISHED"
        if exc.code in (128 + signal.SIGINT, 128 + signal.SIGTERM):
            return "KILLED"
    return "FAILED"


def main() -> None:
    from learnai import heap

    try:
        _main()
    finally:
        heap.before_exit()


def _main() -> None:
    from learnai.commands import dispatch
    from learnai.commands.choices import check_command_line

    code = dispatch(sys.argv[1:])  # learnai runs ..., learnai rerun ...
    if code is not None:
        sys.exit(code)
    try:
        check_command_line(sys.argv[1:], config_dir())
    except ConfigError as err:
        exit_with(err)
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _terminate)
    from learnai import redaction
    from learnai.sweep import invocation

    argv = sys.argv[1:]
    redaction.guard(argv)  # a password given on the command line is never printed
    inv = invocation.parse(argv)
    if inv is not None and inv.app_help:
        from learnai.commands.app_help import render

        text = render(inv, config_dir())
        if text is not None:
            print(text)
            return
    wants_sweep = inv is not None and not inv.informational
    if wants_sweep and (inv.multirun or any(o.startswith("hydra.mode=") for o in inv.overrides)):
        from learnai.sweep.lifecycle import Sweep

        sweep = Sweep.prepare(inv, config_dir())
        if sweep is not None:
            sys.argv = [sys.argv[0], *argv, *sweep.job_overrides()]
            outcome: BaseException | None = None
            try:
                _entry()
            except BaseException as exc:
                outcome = exc
                raise
            finally:
                sweep.finish(_status(outcome))
            return
    _entry()
