"""The Launcher Hydra discovers. Thin on purpose: plugin modules are imported on every
Hydra start, so torch and learnai load only when a sweep launches."""

from collections.abc import Sequence
from dataclasses import dataclass

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


@dataclass
class VectorizedLauncherConf:
    _target_: str = (
        "hydra_plugins.learnai_vectorized_launcher.vectorized_launcher.VectorizedLauncher"
    )
    # The most jobs trained as one stacked model; a group is also split to fit memory.
    max_group: int = 256


ConfigStore.instance().store(
    group="hydra/launcher", name="vectorized", node=VectorizedLauncherConf, provider="learnai"
)


def check(max_group: object) -> str | None:
    """Why these settings are refused (None: they are fine). learnai's entry point calls
    it before a sweep creates anything."""
    if not isinstance(max_group, int) or max_group < 1:
        return f"invalid value for hydra.launcher.max_group: {max_group!r} (must be >= 1)"
    return None


class VectorizedLauncher(Launcher):
    """Groups a batch of jobs by everything that fixes their shapes and trains each
    group as one stacked model; every job keeps its output folder, ``.hydra/`` files and
    its own MLflow run. Jobs that cannot be stacked run one by one, as Hydra's basic
    launcher runs them."""

    def __init__(self, max_group: int = 256) -> None:
        super().__init__()
        reason = check(max_group)
        if reason is not None:
            raise ValueError(reason)
        self.max_group = max_group
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        from ._impl import launch

        return launch(self, job_overrides, initial_job_idx)
