"""The study report's pictures draw without a warning from matplotlib or Optuna, for any
mix of outcomes a sweep ends with: a warning would reach the console of every sweep.

In-process: real studies (in memory) built trial by trial, drawn by the report's own
functions. ``warnings`` records what matplotlib and Optuna say.
"""

from __future__ import annotations

import random
import warnings
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial
from PIL import Image

from learnai.sweep import study_report

SPACE = {
    "optimizer.lr": FloatDistribution(1e-4, 10, log=True),
    "model.depth": IntDistribution(1, 6),
}
STATE = {"converged": TrialState.COMPLETE, "stalled": TrialState.COMPLETE}
VALUE = {"converged": 0.04, "stalled": 1.8, "diverged": 6.2e19}


def _study(outcomes: list[str], seed: int = 0) -> optuna.Study:
    rng = random.Random(seed)
    study = optuna.create_study(study_name="lr_depth_search")
    for kind in outcomes:
        state = STATE.get(kind, TrialState.FAIL if kind == "failed" else TrialState.PRUNED)
        study.add_trial(
            create_trial(
                state=state,
                value=VALUE[kind] * rng.uniform(1, 2) if state == TrialState.COMPLETE else None,
                params={"optimizer.lr": 10 ** rng.uniform(-4, 1), "model.depth": rng.randint(1, 6)},
                distributions=SPACE,
                user_attrs={"outcome": kind},
                intermediate_values={10: 2.0},
            )
        )
    return study


def _draw(study: optuna.Study, out: Path) -> list[str]:
    """Every picture of the report; what was warned while drawing them."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        study_report.stability_map(study.trials, out / "map.png", "study: outcome")
        study_report.history_plot(study, out / "history.png")
        study_report.importances_plot(study, out / "importances.png")
    return [f"{w.category.__name__}: {w.message}" for w in caught]


ALL_KINDS = ["converged", "stalled", "diverged", "pruned", "failed"]


@pytest.mark.parametrize(
    "outcomes",
    [
        ALL_KINDS * 3,  # a failed trial's marker ('x') has no edge to colour
        ["failed", "pruned", "diverged"],  # no finished trial: no importances to draw
        ["converged", "pruned"],  # one finished trial: Optuna could only warn
        ["converged"] * 2 + ["diverged"],
        ["stalled"] * 8,
    ],
    ids=["every-outcome", "none-finished", "one-finished", "two-finished", "all-stalled"],
)
def test_the_report_draws_without_a_warning(tmp_path: Path, outcomes: list[str]) -> None:
    assert _draw(_study(outcomes), tmp_path) == []
    with Image.open(tmp_path / "map.png") as image:
        assert min(image.size) > 100


def test_importances_need_two_finished_trials(tmp_path: Path) -> None:
    assert study_report.importances_plot(_study(["converged", "pruned"]), tmp_path / "a.png") == {}
    assert not (tmp_path / "a.png").exists()
    importances = study_report.importances_plot(_study(ALL_KINDS * 3), tmp_path / "b.png")
    assert set(importances) == set(SPACE)
    assert (tmp_path / "b.png").is_file()
