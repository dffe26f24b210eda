"""Which jobs of a batch can share one stacked model.

Jobs are grouped by their whole task config less the values a member may have of its
own. Those are the values that change numbers, not shapes: the optimizer's
hyperparameters, the seeds, the data's noise (each member gets its own data set,
stacked like its parameters), and what only its own run reads afterwards (tracking,
thresholds, picture sizes, pruning rhythm). Everything else -- the model, the data's
generator and size, epochs, sync rhythm, device, threads, animation frames, the
optimizer's class and options -- must be equal.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["MEMBER_KEYS", "group_key"]

MEMBER_KEYS = (
    "optimizer.lr",
    "optimizer.betas",
    "optimizer.eps",
    "optimizer.momentum",
    "optimizer.dampening",
    "optimizer.nesterov",
    "optimizer.weight_decay",
    "trainer.seed",
    "trainer.report_every",
    "trainer.converged_r2",
    "trainer.diverge_factor",
    "trainer.progress",
    "trainer.animation.fps",
    "trainer.animation.width",
    "trainer.animation.height",
    "trainer.animation.after_divergence",
    "data.seed",
    "data.noise",
    "tracking",
)


def group_key(task: dict[str, Any]) -> str:
    """The resolved task config (a plain dict) without :data:`MEMBER_KEYS`, as text:
    jobs with equal keys can be stacked."""
    shape = json.loads(json.dumps(task, default=str))
    for key in MEMBER_KEYS:
        *path, last = key.split(".")
        node = shape
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(last, None)
    return json.dumps(shape, sort_keys=True)
