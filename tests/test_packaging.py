"""learnai installs the three ways users install it (wheel, ``pip install .``, editable),
offline and without packaging warnings; each install ships ``conf/`` (as ``learnai/conf``
in a wheel) and sweeps with its Optuna plugin (``hydra/sweeper=optuna``) from a directory
that is not the checkout."""

from __future__ import annotations

import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from helpers.cli import TIMEOUT_S, check_exit, learnai_env
from helpers.processes import REPO

pytestmark = [pytest.mark.packaging, pytest.mark.e2e]

SWEEP = (
    "-m",
    "hydra/sweeper=optuna",
    "hydra.sweeper.n_trials=1",
    "hydra.sweeper.study_name=packaged",
    "hydra.sweeper.storage=sqlite:///mlruns/optuna.db",
    "optimizer.lr=interval(0.001, 0.01)",
    "trainer.epochs=2",
    "data.n_samples=50",
    "trainer.animation.enabled=false",
    "trainer.progress=false",
    "trainer.device=cpu",
    "trainer.num_threads=1",
)
# Nothing is downloaded: hatchling (the build backend) is this venv's.
OFFLINE = ("--disable-pip-version-check", "--no-index", "--no-deps", "--no-build-isolation")


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        cmd,
        cwd=cwd,
        env=env or _env_without_checkout(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    check_exit(done, 0, " ".join(cmd))
    return done.stdout + done.stderr


def _pip(*args: str, cwd: Path, python: str = sys.executable) -> str:
    out = _run([python, "-m", "pip", *args], cwd)
    noise = [line for line in out.splitlines() if "warning" in line.lower()]
    assert not noise, "packaging warnings:\n" + "\n".join(noise)
    return out


def _env_without_checkout() -> dict[str, str]:
    env = learnai_env()
    env.pop("PYTHONPATH", None)
    return env


def _venv_on_top_of_ours(path: Path) -> str:
    """A bare venv that sees this venv's dependencies (torch, mlflow...) but not learnai:
    directories named in a .pth file are added as they are, their own .pth files (this
    venv's editable learnai) are not read."""
    _run([sys.executable, "-m", "venv", "--without-pip", str(path)], path.parent)
    (dest,) = path.glob("lib/python*/site-packages")
    ours = [p for p in site.getsitepackages() if Path(p).is_dir()]
    (dest / "deps.pth").write_text("\n".join(ours) + "\n")
    return str(path / "bin" / "python")


def _sweep_with(python: str, work: Path) -> str:
    """Where ``python`` imports learnai from, after a 1-trial Optuna sweep in ``work``."""
    work.mkdir()
    where = _run([python, "-c", "import learnai; print(learnai.__file__)"], work).strip()
    out = _run([python, "-m", "learnai", *SWEEP], work)
    assert "study 'packaged'" in out, out[-3000:]
    assert (work / "mlruns" / "optuna.db").is_file(), "the Optuna sweeper recorded the study"
    groups = _run([python, "-m", "learnai", "--help"], work)
    assert "experiment: linear_regression, lr_depth_search" in groups, "conf/ found"
    return where


def test_wheel_and_pip_install_dot_ship_conf_and_the_plugin(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    _pip("wheel", *OFFLINE, "-w", str(wheels), str(REPO), cwd=tmp_path)
    (wheel,) = wheels.glob("learnai-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    conf = {n for n in names if n.startswith("conf/") or "/conf/" in n}
    assert "learnai/conf/config.yaml" in names
    assert "learnai/conf/hydra/help/learnai.yaml" in names
    assert "learnai/conf/experiment/lr_depth_search.yaml" in names
    assert all(n.startswith("learnai/conf/") for n in conf), "conf/ ships only as learnai/conf"
    assert "hydra_plugins/learnai_optuna_sweeper/optuna_sweeper.py" in names
    assert "hydra_plugins/__init__.py" not in names, "hydra_plugins must stay a namespace"
    assert not [n for n in names if n.startswith("tests/")]

    for how, source in (("wheel", str(wheel)), ("dot", str(REPO))):
        python = _venv_on_top_of_ours(tmp_path / f"venv-{how}")
        _pip("install", *OFFLINE, source, cwd=tmp_path, python=python)
        where = _sweep_with(python, tmp_path / f"work-{how}")
        assert str(REPO) not in where, f"{how}: learnai came from the checkout: {where}"
        config_dir = _run(
            [python, "-c", "from learnai.cli import config_dir; print(config_dir())"], tmp_path
        ).strip()
        assert config_dir == str(Path(where).parent / "conf"), f"{how}: the installed conf/"


def test_plain_editable_install_finds_the_plugin_and_conf_in_place(tmp_path: Path) -> None:
    python = _venv_on_top_of_ours(tmp_path / "venv-editable")
    _pip("install", *OFFLINE, "-e", str(REPO), cwd=tmp_path, python=python)
    where = _sweep_with(python, tmp_path / "work")
    assert where == str(REPO / "learnai" / "__init__.py")
    config_dir = _run(
        [python, "-c", "from learnai.cli import config_dir; print(config_dir())"], tmp_path
    ).strip()
    assert config_dir == str(REPO / "conf"), "an editable install reads conf/ in place"
