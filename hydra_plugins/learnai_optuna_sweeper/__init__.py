"""learnai's Optuna sweeper for Hydra, on current Optuna (``hydra/sweeper=optuna``)."""
