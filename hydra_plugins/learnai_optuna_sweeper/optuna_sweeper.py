"""The Sweeper Hydra discovers. Thin on purpose: plugin modules are imported on every
Hydra start, so Optuna and the implementation load only when a sweep runs."""

from __future__ import annotations

from typing import Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from .config import register

register()


class OptunaSweeper(Sweeper):
    """``hydra/sweeper=optuna``: the keys of hydra-optuna-sweeper 1.3 (see ``config.py``)."""

    def __init__(self, **settings: Any) -> None:
        from ._impl import OptunaSweeperImpl

        self.sweeper = OptunaSweeperImpl(**settings)

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.sweeper.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> None:
        return self.sweeper.sweep(arguments)
