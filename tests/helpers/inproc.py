"""learnai's run in this process, as a notebook would call it: the real config composed
by Hydra's compose API, stores under the test's own folder, nothing started."""

from __future__ import annotations

import functools
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from helpers.cli import TINY

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from learnai.train.run import Result


def compose(tmp_path: Path, *overrides: str, tiny: bool = True) -> DictConfig:
    """learnai's composed config (TINY sizes unless ``tiny=False``), its store in
    ``tmp_path/mlruns``."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from learnai.cli import config_dir

    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return hydra_compose(
            "config", overrides=[*(TINY if tiny else ()), f"tracking.uri={uri}", *overrides]
        )


@functools.cache
def _empty_store() -> Path:
    """An MLflow store with its whole schema and nothing else, made once per session:
    MLflow's migrations take seconds, a copy of their result milliseconds."""
    from learnai.tracking.stores import open_store

    db = Path(tempfile.mkdtemp(prefix="learnai-empty-store-")) / "mlflow.db"
    open_store(f"sqlite:///{db}")
    return db


def run(tmp_path: Path, *overrides: str, tiny: bool = True, new_store: bool = True) -> Result:
    """Train and track one run in this process; its store is ``tmp_path/mlruns``: with
    ``new_store``, a copy of a freshly made empty store when there is none yet (the CLI
    tests make theirs from scratch). A test of what a refusal leaves behind passes
    ``new_store=False``."""
    from learnai.train.run import run as learnai_run

    if new_store:
        new_store_at(tmp_path / "mlruns" / "mlflow.db")
    return learnai_run(compose(tmp_path, *overrides, tiny=tiny))


def new_store_at(db: Path) -> str:
    """The URI of an SQLite MLflow store at ``db``: a copy of a freshly made empty
    store, unless ``db`` exists already."""
    if not db.exists():
        db.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_empty_store(), db)
    return f"sqlite:///{db}"


@contextmanager
def torch_threads(n: int = 1) -> Iterator[None]:
    """Torch on ``n`` threads inside the block, restored after. A test's tiny tensors
    train fastest on one: more threads only wait for each other, and far longer when
    test workers or other programs share the cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
