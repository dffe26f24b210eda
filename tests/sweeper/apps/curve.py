"""A Hydra app that reports to its Optuna trial through the plugin alone (no learnai):
a toy loss curve that decays towards ``(lr - 0.1)**2`` at a speed set by ``lr``; the
median pruner stops hopeless trials."""

import math

import hydra
import optuna
from omegaconf import DictConfig

from hydra_plugins.learnai_optuna_sweeper.trial import current_trial


def loss_at(step: int, lr: float) -> float:
    return (lr - 0.1) ** 2 + math.exp(-lr * step)


@hydra.main(version_base=None, config_path="conf", config_name="curve")
def curve(cfg: DictConfig) -> float:
    trial = current_trial()  # None outside an Optuna sweep
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
    curve()
