"""The ``python -m learnai`` / ``learnai`` entry point: the only code that sets up the
process (signal handlers, MLflow's bounded waits), then hands over to Hydra.

A single run is Hydra's alone. A multirun is owned here, around Hydra: the sweep is
validated and its parent MLflow run created before any job starts, and the parent is
reported on and ended after the last job, whatever ends the sweep (see
:mod:`learnai.sweep.lifecycle`).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading

import hydra
from omegaconf import DictConfig

from learnai.config import ConfigError, exit_with, register_configs

register_configs()


def config_dir() -> str:
    """``conf/`` of a source checkout (editable install), else the wheel's ``learnai/conf``."""
    from learnai.config.command_line import learnai_conf_dir

    return learnai_conf_dir()


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")
def _entry(cfg: DictConfig) -> float:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from learnai.tracking.failures import StoreLost
    from learnai.train.orphan import LauncherGone
    from learnai.train.run import train

    try:
        return train(cfg)
    except ConfigError as err:
        # A job's bad value: the sweeper records this job as failed. A store lost
        # mid-run would fail every later job too: the command stops, in one line.
        if HydraConfig.get().mode == RunMode.MULTIRUN and not isinstance(err, StoreLost):
            raise
        exit_with(err)
        raise  # not reached: exit_with exits
    except LauncherGone as gone:
        # An orphaned job, its run already ended KILLED. Its process is a launcher's
        # worker (joblib's would wait minutes for work that never comes, swallowing any
        # exception): nothing is left to wait for, so it ends here, at once.
        print(gone.code, file=sys.stderr, flush=True)
        logging.shutdown()
        os._exit(1)


# After a cancel, the command has this long to end its runs KILLED and exit; a store that
# does not answer (tables locked by another session, a frozen server) cannot hold it
# longer: its runs stay RUNNING until the next command on the store ends them KILLED.
CANCEL_GRACE_S = 15.0


def _terminate(signum: int, frame: object) -> None:
    # SIGTERM (a scheduler's cancel, `kill`) unwinds like Ctrl-C: open MLflow runs
    # end as KILLED and a sweep's parent run is closed instead of staying RUNNING.
    _arm_deadline(signum)
    sys.exit(128 + signum)


def _interrupt(signum: int, frame: object) -> None:
    _arm_deadline(signum)
    raise KeyboardInterrupt


_deadline: list[threading.Timer] = []


def _arm_deadline(signum: int) -> None:
    """Give the unwinding a deadline, once. A thread, not an alarm: a main thread blocked
    in a store's C code (SQLite's busy wait) runs no signal handler until it returns."""
    if _deadline:
        return

    def expire() -> None:
        name = signal.Signals(signum).name
        print(
            f"learnai: stopped by {name}; the store did not answer within "
            f"{CANCEL_GRACE_S:g} s: runs it could not end stay RUNNING until the next "
            "command on it ends them KILLED",
            file=sys.stderr,
            flush=True,
        )
        os._exit(128 + signum)

    timer = threading.Timer(CANCEL_GRACE_S, expire)
    timer.daemon = True
    _deadline.append(timer)
    timer.start()


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
    try:
        _main()
    except KeyboardInterrupt:  # Ctrl-C: the runs are ended KILLED already; no traceback
        print("learnai: interrupted", file=sys.stderr)
        sys.exit(128 + signal.SIGINT)
    except SystemExit as exc:
        if _deadline and exc.code == 128 + signal.SIGTERM:  # a cancel: one line, as Ctrl-C
            print("learnai: terminated (SIGTERM)", file=sys.stderr)
        raise


def _main() -> None:
    from learnai.commands import COMMANDS, dispatch
    from learnai.config.command_line import check_command_line
    from learnai.secrets import move_secrets
    from learnai.tracking.stores import MLFLOW_DEFAULTS

    for key, value in MLFLOW_DEFAULTS.items():  # bounded waits; the user's values win
        os.environ.setdefault(key, value)
    argv = sys.argv[1:]
    code = dispatch(argv)  # learnai runs ..., learnai rerun ...
    if code is not None:
        sys.exit(code)
    # Passwords typed in URLs go to the environment before Hydra writes the overrides
    # into every job's files (learnai.secrets.move_secrets).
    argv, secret_env = move_secrets(argv, os.environ)
    os.environ.update(secret_env)
    sys.argv[1:] = argv
    try:
        check_command_line(argv, config_dir(), commands=COMMANDS)
    except ConfigError as err:
        exit_with(err)
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _terminate)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not if ignored
        signal.signal(signal.SIGINT, _interrupt)
    from learnai.sweep import invocation

    inv = invocation.parse(argv)
    wants_sweep = inv is not None and not inv.informational
    if wants_sweep:  # Hydra's output folder can be written: checked before Hydra makes it
        from learnai.tracking.checks import check_output_dir

        try:
            check_output_dir(inv.overrides, inv.multirun)
        except ConfigError as err:
            exit_with(err)
    if wants_sweep and (inv.multirun or any(o.startswith("hydra.mode=") for o in inv.overrides)):
        from learnai.sweep.lifecycle import Sweep

        sweep = Sweep.prepare(inv, config_dir())
        if sweep is not None:
            sweep.link_jobs()
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
