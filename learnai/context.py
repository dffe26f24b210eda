"""What a job knows about how Hydra launched it: launch directory, sweep, parent run."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PARENT_FILE = ".learnai_parent_run.json"


@dataclass
class JobContext:
    base_dir: Path  # where the user launched the command: relative stores live here
    is_multirun: bool = False
    sweep_dir: Path | None = None
    parent_run_id: str | None = None
    parallel_jobs: int = 1
    choices: dict[str, str] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)


def sweep_dir_of(hydra: Any) -> Path:
    """The multirun's sweep directory, absolute: ``hydra.sweep.dir`` is relative to the
    launch directory. ``hydra`` is ``config.hydra`` or ``HydraConfig.get()``."""
    path = Path(hydra.sweep.dir)
    return path if path.is_absolute() else Path(hydra.runtime.cwd) / path


def parent_file(sweep_dir: Path) -> Path:
    """Where a sweep's parent run id is left for its jobs, which may be other processes."""
    return sweep_dir / PARENT_FILE


def job_context() -> JobContext:
    """Read Hydra's runtime state; outside Hydra (tests, notebooks) use the cwd."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return JobContext(base_dir=Path(os.getcwd()))
    hc = HydraConfig.get()
    ctx = JobContext(
        base_dir=Path(hc.runtime.cwd),
        choices={
            k: str(v)
            for k, v in hc.runtime.choices.items()
            if not k.startswith("hydra/") and v is not None
        },
        overrides=list(hc.overrides.task),
    )
    if hc.mode == RunMode.MULTIRUN:
        ctx.is_multirun = True
        ctx.sweep_dir = sweep_dir_of(hc)
        marker = parent_file(ctx.sweep_dir)
        if marker.exists():
            ctx.parent_run_id = json.loads(marker.read_text())["run_id"]
        ctx.parallel_jobs = int(hc.launcher.get("n_jobs") or 1)
    return ctx
