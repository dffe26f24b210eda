"""Any Hydra app, swept by learnai's Optuna sweeper, using the job-side trial API.

A toy "training" curve: the loss decays towards ``(lr - 0.1)**2`` at a speed set by
``lr``. Each step reports the loss to the job's Optuna trial; the pruner (configured under
``hydra.sweeper.pruner``) stops hopeless trials early. Nothing here is learnai-specific
except ``current_trial``::

    python experiments/optuna_any_app/app.py -m                     # 12 trials, SQLite
    python experiments/optuna_any_app/app.py -m hydra/launcher=joblib
"""

import math

import hydra
import optuna
from omegaconf import DictConfig

from hydra_plugins.learnai_optuna_sweeper.trial import current_trial


def loss_at(step: int, lr: float) -> float:
    return (lr - 0.1) ** 2 + math.exp(-lr * step)


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    trial = current_trial()  # None when the app runs outside an Optuna sweep
    if trial is not None:
        trial.set_user_attr("run_link", f"my-tracker://runs/{trial.study_name}/{trial.number}")
    loss = math.inf
    for step in range(1, cfg.steps + 1):
        loss = loss_at(step, cfg.lr)
        if trial is None:
            continue
        trial.report(loss, step)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned at step {step}, loss {loss:.4g}")
    return loss


if __name__ == "__main__":
    main()
