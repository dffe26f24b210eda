"""The ``python -m learnai`` / ``learnai`` entry point: a thin Hydra wrapper."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from learnai.config import ConfigError, exit_with, register_configs

register_configs()


def config_dir() -> str:
    """``conf/`` of a source checkout, else the copy installed as ``learnai.conf``."""
    source = Path(__file__).resolve().parent.parent / "conf"
    if (source / "config.yaml").is_file():
        return str(source)
    from importlib.resources import files

    return str(files("learnai.conf"))


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")
def _entry(cfg: DictConfig) -> float:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from learnai.runner import train

    try:
        return train(cfg)
    except ConfigError as err:
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            raise  # the sweeper records this job as failed and goes on
        exit_with(err)


def _terminate(signum: int, frame: object) -> None:
    # SIGTERM (a scheduler's cancel, `kill`) unwinds like Ctrl-C: open MLflow runs
    # end as KILLED and a sweep's parent run is closed instead of staying RUNNING.
    sys.exit(128 + signum)


def main() -> None:
    from learnai.commands import dispatch
    from learnai.commands.choices import check_choices

    code = dispatch(sys.argv[1:])  # learnai runs ..., learnai rerun ...
    if code is not None:
        sys.exit(code)
    try:
        check_choices(sys.argv[1:], config_dir())
    except ConfigError as err:
        exit_with(err)
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _terminate)
    _entry()
    if sys.gettrace() is None and sys.getprofile() is None:  # not under coverage/profilers
        _exit_now()


def _exit_now() -> None:
    """Skip interpreter teardown after a successful command.

    Everything is already written and closed (runs ended, artifacts copied, stores
    committed); tearing down torch, MLflow and matplotlib module by module would still
    take 1-2 s of every command. Errors keep the normal exit path.
    """
    import logging
    import os

    loky = sys.modules.get("joblib.externals.loky.reusable_executor")
    if loky is not None and getattr(loky, "_executor", None) is not None:
        loky._executor.shutdown(wait=True)  # joblib's workers: stop them, don't orphan them
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
