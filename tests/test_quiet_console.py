"""What a normal Optuna sweep prints: learnai's, Hydra's and Optuna's own lines, and no
warning or error from anywhere. A pruned trial is its run's one line (no ``Error
executing job with overrides``), a diverged one too, and the study report draws its
pictures without a word from matplotlib.

End to end (``e2e``): ``learnai -m experiment=lr_depth_search``, cut small, with a pruner
that prunes from the second trial on, in a fresh folder.
"""

from __future__ import annotations

import re
from pathlib import Path

import optuna
import pytest
from helpers.cli import TINY_NO_ANIMATION, run_learnai
from optuna.trial import TrialState

pytestmark = pytest.mark.e2e

NOISE = re.compile(r"warn|error|traceback|exception", re.IGNORECASE)


def test_a_sweep_with_pruned_and_diverged_trials_prints_no_warning(tmp_path: Path) -> None:
    proc = run_learnai(
        tmp_path,
        "-m",
        "experiment=lr_depth_search",
        "hydra.sweeper.n_trials=6",
        "hydra.sweeper.pruner.n_startup_trials=1",
        "hydra.sweeper.pruner.n_warmup_steps=0",
        "trainer.report_every=1",
        *TINY_NO_ANIMATION,
    )
    study = optuna.load_study(
        study_name="lr_depth_search", storage=f"sqlite:///{tmp_path / 'mlruns' / 'optuna.db'}"
    )
    outcomes = [t.user_attrs.get("outcome") for t in study.trials]
    assert any(t.state == TrialState.PRUNED for t in study.trials), outcomes
    assert "diverged" in outcomes and "pruned" in outcomes, outcomes
    lines = (proc.stdout + proc.stderr).splitlines()
    assert [line for line in lines if NOISE.search(line)] == [], "\n".join(lines)
    # each trial is one line of its own, naming its outcome
    for trial in study.trials:
        said = [line for line in lines if f"- #{trial.number} " in line]
        assert len(said) == 1 and trial.user_attrs["outcome"] in said[0], said
