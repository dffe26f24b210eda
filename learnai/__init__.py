"""learnai: the tutorial's PyTorch models as tracked, sweepable experiments.

Heavy libraries (torch, mlflow, optuna, matplotlib) are imported where they are used,
so ``python -m learnai --help`` and config errors answer at once.
"""

__version__ = "0.1.0"
