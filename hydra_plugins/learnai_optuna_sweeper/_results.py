"""``optimization_results.yaml`` in the sweep directory, as hydra-optuna-sweeper 1.3 writes
it: ``{name: optuna, best_params, best_value}``, or for a multi-objective study the Pareto
front as ``{name: optuna, solutions: [{params, values}, ...]}``."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import OmegaConf

if TYPE_CHECKING:
    import optuna

log = logging.getLogger(__name__)

FILE = "optimization_results.yaml"


def summary(study: optuna.Study) -> dict[str, Any] | None:
    """What the file holds; None when no trial completed (there is no best to write)."""
    if len(study.directions) < 2:
        try:
            best = study.best_trial
        except ValueError:
            return None
        log.info("Best parameters: %s", best.params)
        log.info("Best value: %s", best.value)
        return {"name": "optuna", "best_params": best.params, "best_value": best.value}
    front = study.best_trials
    if not front:
        return None
    log.info("Number of Pareto solutions: %d", len(front))
    for t in front:
        log.info("    Values: %s, Params: %s", t.values, t.params)
    return {
        "name": "optuna",
        "solutions": [{"params": t.params, "values": t.values} for t in front],
    }


def write(study: optuna.Study, sweep_dir: Path) -> Path:
    """Write the file; exit 1 with one line when no trial completed (1.3 crashed there)."""
    content = summary(study)
    if content is None:
        states = sorted({t.state.name for t in study.get_trials(deepcopy=False)})
        print(
            f"optuna sweeper: study {study.study_name!r} has no completed trial "
            f"(states: {', '.join(states) or 'none'}); no {FILE} written",
            file=sys.stderr,
        )
        sys.exit(1)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    path = sweep_dir / FILE
    OmegaConf.save(OmegaConf.create(content), path)
    return path
