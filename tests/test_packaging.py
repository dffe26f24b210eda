"""learnai installs the three ways users install it, without packaging warnings, and each
install sweeps with its Optuna plugin from a directory that is not the checkout."""

from __future__ import annotations

import site
import subprocess
import sys
from pathlib import Path

import pytest
from sweep_helpers import learnai_env

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parent.parent
SWEEP = (
    "-m",
    "experiment=lr_depth_search",
    "hydra.sweeper.n_trials=1",
    "trainer.epochs=2",
    "data.n_samples=50",
    "trainer.animation.enabled=false",
    "trainer.progress=false",
)


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        cmd, cwd=cwd, env=env or learnai_env(), capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{cmd}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done.stdout + done.stderr


def _pip(*args: str, cwd: Path, python: str = sys.executable) -> str:
    out = _run([python, "-m", "pip", "--disable-pip-version-check", *args], cwd)
    noise = [line for line in out.splitlines() if "warning" in line.lower()]
    assert not noise, "packaging warnings:\n" + "\n".join(noise)
    return out


def _venv_on_top_of_ours(path: Path) -> str:
    """A bare venv that sees this venv's dependencies (torch, mlflow...) but not learnai."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    (dest,) = path.glob("lib/python*/site-packages")
    ours = [p for p in site.getsitepackages() if Path(p).is_dir()]
    (dest / "deps.pth").write_text("\n".join(ours) + "\n")
    return str(path / "bin" / "python")


def _sweep_with(python: str, work: Path, env: dict[str, str]) -> None:
    work.mkdir()
    where = _run([python, "-c", "import learnai; print(learnai.__file__)"], work, env)
    out = _run([python, "-m", "learnai", *SWEEP], work, env)
    assert "study 'lr_depth_search'" in out, out[-3000:]
    assert (work / "mlruns" / "optuna.db").is_file()
    return where


def _env_without_checkout() -> dict[str, str]:
    env = learnai_env()
    env.pop("PYTHONPATH", None)
    return env


def test_wheel_and_pip_install_dot_ship_conf_and_the_plugin(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    _pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(REPO), cwd=tmp_path)
    (wheel,) = wheels.glob("learnai-*.whl")
    import zipfile

    names = set(zipfile.ZipFile(wheel).namelist())
    assert "learnai/conf/config.yaml" in names
    assert "learnai/conf/experiment/lr_depth_search.yaml" in names
    assert "hydra_plugins/learnai_optuna_sweeper/optuna_sweeper.py" in names
    assert "hydra_plugins/__init__.py" not in names, "hydra_plugins must stay a namespace"

    for how, source in (("wheel", str(wheel)), ("dot", str(REPO))):
        python = _venv_on_top_of_ours(tmp_path / f"venv-{how}")
        _pip("install", "--no-deps", "--no-build-isolation", source, cwd=tmp_path, python=python)
        where = _sweep_with(python, tmp_path / f"work-{how}", _env_without_checkout())
        assert str(REPO) not in where, f"{how}: learnai came from the checkout: {where}"


def test_plain_editable_install_finds_the_plugin_and_conf_in_place(tmp_path: Path) -> None:
    python = _venv_on_top_of_ours(tmp_path / "venv-editable")
    _pip(
        "install", "--no-deps", "--no-build-isolation", "-e", str(REPO), cwd=tmp_path, python=python
    )
    where = _sweep_with(python, tmp_path / "work", _env_without_checkout())
    assert where.strip() == str(REPO / "learnai" / "__init__.py")
    env = _env_without_checkout()
    cfg_dir = _run(
        [python, "-c", "from learnai.cli import config_dir; print(config_dir())"], tmp_path, env
    )
    assert cfg_dir.strip() == str(REPO / "conf"), "an editable install reads conf/ in place"
