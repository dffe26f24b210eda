"""learnai's grid sweeper for Hydra (``hydra/sweeper=grid``, learnai's default)."""
