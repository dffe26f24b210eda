"""Optuna trial states for MLflow runs, for ``learnai runs``.

A run links to its trial through the tags ``optuna.study``/``optuna.trial`` and the
trial links back through its ``mlflow_run_id`` attribute. The study's storage is the one
the sweep's parent run names (``optuna.storage``), else ``--optuna-storage``, else an
``optuna.db`` next to a SQLite MLflow store. Stores that are masked, in memory or
missing are skipped: reading never creates a study database.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from learnai.tracking.recorder import PARENT_TAG
from learnai.tracking.uris import sqlite_path

if TYPE_CHECKING:
    from mlflow.entities import Run


class TrialStates:
    """Optuna trial states for linked runs, read from the storages the runs name."""

    def __init__(self, uri: str, extra: str | None) -> None:
        self.fallback: list[str] = [extra] if extra else []
        db = sqlite_path(uri)
        if db is not None and (db.parent / "optuna.db").is_file():
            self.fallback.append(f"sqlite:///{db.parent / 'optuna.db'}")
        self.studies: dict[str, Any] = {}

    def _study_trials(self, name: str, storages: list[str]) -> dict[str, Any] | None:
        if name in self.studies:
            return self.studies[name]
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        found = None
        for url in storages:
            if "***" in url or url == "in-memory":
                continue
            db = sqlite_path(url)
            if db is not None and not db.is_file():
                continue  # never create a stray study database
            try:
                trials = optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)
            except Exception:
                continue
            found = {
                "number": {t.number: t.state.name for t in trials},
                "run": {
                    t.user_attrs["mlflow_run_id"]: (t.number, t.state.name)
                    for t in trials
                    if "mlflow_run_id" in t.user_attrs
                },
            }
            break
        self.studies[name] = found
        return found

    def lookup(self, run: Run, runs: dict[str, Run]) -> tuple[str | None, int | None, str | None]:
        tags = run.data.tags
        study = tags.get("optuna.study")
        if study is None:
            return None, None, None
        number = int(tags["optuna.trial"]) if tags.get("optuna.trial", "").isdigit() else None
        parent = runs.get(tags.get(PARENT_TAG, ""))
        storages = (
            [parent.data.tags["optuna.storage"]]
            if parent and "optuna.storage" in (parent.data.tags)
            else []
        )
        trials = self._study_trials(study, storages + self.fallback)
        if trials is None:
            return study, number, None
        if run.info.run_id in trials["run"]:
            number, state = trials["run"][run.info.run_id]
            return study, number, state
        return study, number, trials["number"].get(number) if number is not None else None
