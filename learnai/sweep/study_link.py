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
    from learnai.sweeper.study_report import report_study
    from learnai.sweeper.trial_link import _load_study as load_study  # MERGE: public API

    names = {c.study for c in summary.children if getattr(c, "study", "")}
    if len(names) != 1:
        return  # no trial linked (every job failed before its run), or foreign runs
    (name,) = names
    storage = cfg.hydra.sweeper.get("storage")
    storage_url = None
    if storage is not None:
        from learnai.tracking import resolve_uri

        storage_url = resolve_uri(str(storage), Path.cwd())
    study = load_study(name, storage_url)
    if study is None:
        return
    numbers = {int(c.trial) for c in summary.children if c.trial != ""}
    new_trials = [t for t in study.trials if t.number in numbers]
    report_study(study, new_trials, (uri, parent_run_id), storage_url)
