"""Will a run fit in memory? An estimate checked before any run exists.

``data.n_samples=100000000`` used to allocate ~20 GB after its MLflow run was created
and die with a traceback (or the OOM killer). :func:`check_resources` estimates the
bytes a run needs -- generated data, training activations, animation frames -- and
compares them with what the machine has available (``MemAvailable``), so the user gets
one line with the numbers instead.
"""

from __future__ import annotations

import os
from typing import Any

from learnai.config import ConfigError

__all__ = ["available_memory", "check_resources", "estimate_bytes"]

F32, F64, I64 = 4, 8, 8
PLOT_POINTS = 200  # learnai.train.data.PLOT_POINTS, not imported: it would import torch
HEADROOM = 0.8  # leave a fifth of the available memory to everything else


def _n_features(data: Any) -> int:
    return 2 if str(data.get("_target_", "")).endswith("polynomial") else 1


def estimate_bytes(cfg: Any) -> dict[str, int]:
    """Bytes a run needs, by part. ``cfg`` is the composed config.

    The data generator works in float64 numpy (x, noise, y, the permutation, the
    features) before the float32 tensors exist; training keeps each hidden layer's
    output and activation for the backward pass and about as much again for the
    gradients; frames are RGB images held until the GIF is written.
    """
    n, f = int(cfg.data.n_samples), _n_features(cfg.data)
    n_val = int(round(n * cfg.data.val_fraction))
    n_train = n - n_val
    data = n * (F64 * (3 + f) + I64) + n * F32 * (f + 1)
    # a model of your own may have a width and no depth: one hidden layer, then
    widths = (
        [int(cfg.model.hidden)] * int(cfg.model.get("depth", 1)) if "hidden" in cfg.model else []
    )
    per_train_sample = F32 * (3 * sum(widths) + 2 * (f + 2))
    per_val_sample = F32 * (2 * max(widths, default=1) + 2)
    training = n_train * per_train_sample + n_val * per_val_sample
    anim = cfg.trainer.animation
    frames = 0
    if anim.enabled:
        n_frames = min(int(anim.frames), int(cfg.trainer.epochs))
        frames = n_frames * (PLOT_POINTS * F32 + int(anim.width) * int(anim.height) * 3)
    return {"data": data, "training": training, "animation": frames}


def available_memory() -> int | None:
    """Bytes the kernel says can be allocated without swapping (None if unknown)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_resources(cfg: Any, parallel_jobs: int = 1) -> None:
    """Raise :class:`ConfigError` when the run would not fit in memory.

    With ``parallel_jobs`` runs side by side, each gets that share of the memory.
    """
    available = available_memory()
    if available is None:
        return
    parts = estimate_bytes(cfg)
    # The libraries' own ~0.5 GB is not counted: it is mostly shared, mapped pages, and
    # counting it would refuse ordinary runs on small machines; the headroom covers it.
    need = sum(parts.values())
    share = available * HEADROOM / max(parallel_jobs, 1)
    if need <= share:
        return
    key = _culprit(cfg)
    value = _select(cfg, key)
    detail = ", ".join(f"{name} {_gb(b)}" for name, b in parts.items())
    jobs = f" for each of {parallel_jobs} parallel jobs" if parallel_jobs > 1 else ""
    raise ConfigError(
        f"invalid value for {key}: {value!r} (a run needs about {_gb(need)} of memory "
        f"[{detail}], but {_gb(share)} is available{jobs}: {_gb(available)} free)"
    )


# The values a run is too big for, each with its default: the one named is the one whose
# default would shrink the estimate most.
_SIZE_KEYS = {"data.n_samples": 1000, "model.hidden": 64, "trainer.animation.frames": 100}


def _select(cfg: Any, key: str) -> Any:
    node = cfg
    for part in key.split("."):
        node = node[part]
    return node


def _culprit(cfg: Any) -> str:
    """The size key to blame: the one whose default value would save the most memory."""
    from omegaconf import OmegaConf

    saved = {}
    for key, default in _SIZE_KEYS.items():
        section, name = key.rsplit(".", 1)
        if name not in _select(cfg, section):
            continue
        smaller = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
        OmegaConf.update(smaller, key, min(default, _select(cfg, key)), merge=False)
        saved[key] = sum(estimate_bytes(cfg).values()) - sum(estimate_bytes(smaller).values())
    return max(saved, key=saved.__getitem__)


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.0f} MB"
