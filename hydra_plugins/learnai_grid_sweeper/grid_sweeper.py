"""Hydra's basic (grid) sweeper without its up-front composition of every job's config.

Hydra's BasicSweeper composes each job's config once to validate the batch and the
launcher composes it again to run it: ~0.25 s a job, twice. learnai's sweep callback
already checks every job before the first one starts (``learnai.config.validate_job``:
values set on one composed config, Hydra composition only for config group choices),
so this sweeper skips the first composition. Everything else is Hydra's.
No ``from __future__ import annotations``: Hydra's plugin scan runs this module outside
``sys.modules``.
"""

from dataclasses import dataclass
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper, BasicSweeperConf
from hydra.core.config_store import ConfigStore


@dataclass
class GridSweeperConf(BasicSweeperConf):
    _target_: str = "hydra_plugins.learnai_grid_sweeper.grid_sweeper.GridSweeper"


ConfigStore.instance().store(
    group="hydra/sweeper", name="grid", node=GridSweeperConf, provider="learnai"
)


class GridSweeper(BasicSweeper):
    def validate_batch_is_legal(self, batch: Any) -> None:
        """Validated by learnai's SweepTracking callback before the sweep started."""
