"""Hydra finds ``hydra/launcher=vectorized`` among its launchers, with its settings."""

from __future__ import annotations

from pathlib import Path


def test_hydra_discovers_the_vectorized_launcher() -> None:
    from hydra.core.plugins import Plugins
    from hydra.plugins.launcher import Launcher

    found = {f"{c.__module__}.{c.__name__}" for c in Plugins.instance().discover(Launcher)}
    assert (
        "hydra_plugins.learnai_vectorized_launcher.vectorized_launcher.VectorizedLauncher" in found
    )


def test_the_launcher_config_composes_with_max_group(tmp_path: Path) -> None:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from learnai.cli import config_dir

    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = hydra_compose(
            "config",
            overrides=["hydra/launcher=vectorized", "hydra.launcher.max_group=8"],
            return_hydra_config=True,
        )
    assert cfg.hydra.launcher.max_group == 8
    assert cfg.hydra.launcher._target_.endswith("VectorizedLauncher")
