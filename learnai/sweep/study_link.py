"""The Optuna study behind a sweep's child runs, reported on the sweep's parent run.

The sweeper knows nothing of MLflow; each job tags its run with its study and trial
(``optuna.study``, ``optuna.trial``). After the sweep, the entry point finds the study
through those tags and the sweeper's storage setting, and logs the study's report.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omegaconf import DictConfig

log = logging.getLogger("learnai")


def report_linked_study(cfg: DictConfig, uri: str, parent_run_id: str, summary: Any) -> None:
    import optuna

    from hydra_plugins.learnai_optuna_sweeper.storage import in_memory, storage_url
    from learnai.sweep.study_report import report_study
    from learnai.tracking.stores import open_optuna_storage

    names = {c.study for c in summary.children if c.study}
    if len(names) != 1:
        return  # no trial linked (every job failed before its run), or foreign runs
    (name,) = names
    url = storage_url(cfg.hydra.sweeper.get("storage"), Path.cwd())
    storage = open_optuna_storage(url) if url is not None else in_memory(name)
    if storage is None:
        return
    study = optuna.load_study(study_name=name, storage=storage)
    numbers = {int(c.trial) for c in summary.children if c.trial != ""}
    new_trials = [t for t in study.trials if t.number in numbers]
    report_study(study, new_trials, (uri, parent_run_id), url)
