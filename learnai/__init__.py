"""learnai: the tutorial's PyTorch models as tracked, sweepable experiments.

Heavy libraries (torch, mlflow, optuna, matplotlib) are imported where they are used,
so ``python -m learnai --help`` and config errors answer at once.
"""

import logging

from learnai.secrets import MaskingFilter

__version__ = "0.1.0"

# learnai logs through this one logger; its records never show a password.
logging.getLogger("learnai").addFilter(MaskingFilter())


def __getattr__(name: str) -> object:
    # learnai.runs_frame(experiment, uri): runs as a pandas DataFrame, imported on use.
    if name == "runs_frame":
        from learnai.commands.runs import runs_frame

        return runs_frame
    raise AttributeError(f"module 'learnai' has no attribute {name!r}")
