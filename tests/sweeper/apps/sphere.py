"""A Hydra app that knows nothing of learnai: the sphere function, swept by Optuna.

``error=true`` makes every job fail; ``fail_at`` / ``crash_once`` make one point fail or
kill the sweep (SIGKILL, no clean-up) the first time it runs, for the resume tests.
"""

import os
import signal
from pathlib import Path

import hydra
from omegaconf import DictConfig


@hydra.main(version_base=None, config_path="conf", config_name="sphere")
def sphere(cfg: DictConfig) -> float:
    if cfg.get("error", False):
        raise RuntimeError("cfg.error is True")
    point = [cfg.x, cfg.y]
    if cfg.get("fail_at") is not None and list(cfg.fail_at) == point:
        raise ValueError(f"fail_at {point}")
    marker = cfg.get("crash_once")
    if marker and list(cfg.crash_at) == point and not Path(marker).exists():
        Path(marker).write_text("crashed")
        os.kill(os.getpid(), signal.SIGKILL)
    if cfg.get("nan_at") is not None and list(cfg.nan_at) == point:
        return float("nan")
    return float(cfg.x) ** 2 + float(cfg.y) ** 2


if __name__ == "__main__":
    sphere()
