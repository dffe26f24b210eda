"""Single runs end to end: ``python -m learnai`` in a subprocess, read back from MLflow.

Each run is launched from its own temporary directory, so the default store
(``sqlite:///mlruns/mlflow.db``) is that directory's ``mlruns/``. Runs are shared between
tests through module-scoped fixtures: the expensive part is the run, not the checks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf
from PIL import Image

pytestmark = pytest.mark.slow

OUTCOMES = {"converged", "stalled", "diverged"}
ARTIFACTS = {"config.yaml", "loss_curve.png", "fit.png", "training.gif"}
CPU = "trainer.device=cpu"


class Launched:
    """One finished ``python -m learnai`` call and the run it recorded."""

    def __init__(self, cwd: Path, experiment: str, client: Any, run: Any, stderr: str) -> None:
        self.cwd = cwd
        self.stderr = stderr
        self.experiment = experiment
        self.client = client
        self.run = run

    @property
    def run_id(self) -> str:
        return self.run.info.run_id

    def history(self, key: str) -> list[Any]:
        return sorted(self.client.get_metric_history(self.run_id, key), key=lambda m: m.step)

    def artifact_names(self) -> set[str]:
        return {a.path for a in self.client.list_artifacts(self.run_id)}

    def download(self, name: str) -> Path:
        dst = self.cwd / "downloaded"
        dst.mkdir(exist_ok=True)
        return Path(self.client.download_artifacts(self.run_id, name, str(dst)))

    def gif_frames(self) -> tuple[int, tuple[int, int]]:
        with Image.open(self.download("training.gif")) as gif:
            return gif.n_frames, gif.size


@pytest.fixture(scope="module")
def launch(tmp_path_factory, run_learnai, mlflow_client, only_run):
    """Run learnai in a fresh directory and return what it recorded."""

    def _launch(experiment: str, *overrides: str) -> Launched:
        cwd = tmp_path_factory.mktemp(experiment)
        proc = run_learnai(cwd, *overrides, CPU, f"tracking.experiment={experiment}")
        client = mlflow_client(cwd)
        return Launched(cwd, experiment, client, only_run(client, experiment), proc.stderr)

    return _launch


# --- a small run: everything a user finds in MLflow --------------------------------------

EPOCHS = 30


@pytest.fixture(scope="module")
def small(launch) -> Launched:
    return launch("t", f"trainer.epochs={EPOCHS}", "data.n_samples=200")


def test_run_finishes_and_is_the_only_one(small: Launched) -> None:
    assert small.run.info.status == "FINISHED"
    experiments = [e.experiment_id for e in small.client.search_experiments()]
    runs = small.client.search_runs(experiments)
    assert [r.info.run_id for r in runs] == [small.run_id]
    assert "Traceback" not in small.stderr


def test_store_and_artifacts_live_under_the_launch_directory(small: Launched) -> None:
    mlruns = (small.cwd / "mlruns").resolve()
    assert (mlruns / "mlflow.db").is_file()
    assert small.run.info.artifact_uri.startswith(mlruns.as_uri() + "/")
    stored = {p.name for p in mlruns.rglob("*") if small.run_id in p.parts}
    assert stored >= ARTIFACTS


def test_params_are_the_resolved_config_with_dotted_keys(small: Launched) -> None:
    params = small.run.data.params
    assert params["optimizer.lr"] == "0.01"
    assert params["model.depth"] == "2"
    assert params["trainer.epochs"] == str(EPOCHS)
    assert params["data.n_samples"] == "200"
    assert params["trainer.device"] == "cpu"
    assert params["data._target_"] == "learnai.data.nonlinear"


@pytest.mark.parametrize("key", ["train_loss", "val_loss"])
def test_loss_is_logged_every_epoch(small: Launched, key: str) -> None:
    history = small.history(key)
    assert [m.step for m in history] == list(range(1, EPOCHS + 1))  # epochs count from 1


def test_final_metrics_and_tags(small: Launched) -> None:
    metrics, tags = small.run.data.metrics, small.run.data.tags
    assert "val_r2" in metrics
    assert "final_val_loss" in metrics
    assert tags["outcome"] in OUTCOMES
    assert tags["device"] == "cpu"
    assert tags["epochs_run"] == str(EPOCHS)


def test_artifacts_include_config_plots_and_animation(small: Launched) -> None:
    names = small.artifact_names()
    assert names >= ARTIFACTS, f"missing: {ARTIFACTS - names}"
    for png in ("loss_curve.png", "fit.png"):
        with Image.open(small.download(png)) as image:
            assert image.format == "PNG"
            assert image.width > 100 and image.height > 100


def test_animation_has_one_frame_per_epoch(small: Launched) -> None:
    n_frames, (width, height) = small.gif_frames()
    assert n_frames == EPOCHS
    assert width >= 480 and height >= 320


def test_config_artifact_reloads_with_resolved_values(small: Launched) -> None:
    cfg = OmegaConf.load(small.download("config.yaml"))
    assert cfg.optimizer.lr == 0.01
    assert cfg.optimizer._target_ == "torch.optim.Adam"
    assert cfg.model.depth == 2
    assert cfg.trainer.epochs == EPOCHS
    assert cfg.trainer.device == "cpu"
    assert cfg.data.n_samples == 200
    assert cfg.tracking.experiment == "t"
    # resolved: nothing left to interpolate, so the file alone re-creates the run
    text = OmegaConf.to_yaml(cfg)
    assert "${" not in text
    assert OmegaConf.to_container(cfg, resolve=True) == OmegaConf.to_container(cfg)


# --- the tutorial's claims ---------------------------------------------------------------


def test_linear_regression_recovers_the_line(launch) -> None:
    """Part 1: 10,000 points, 100 epochs of Adam: w ~ 2, b ~ 1."""
    launched = launch("linear_regression", "experiment=linear_regression")
    run = launched.run
    assert run.info.status == "FINISHED"
    assert run.data.params["data.n_samples"] == "10000"
    assert run.data.params["trainer.epochs"] == "100"
    assert run.data.metrics["weight.0"] == pytest.approx(2.0, abs=0.1)
    assert run.data.metrics["bias"] == pytest.approx(1.0, abs=0.1)
    assert run.data.tags["outcome"] == "converged"
    assert len(launched.history("train_loss")) == 100


def test_network_converges_at_lr_0_01(launch) -> None:
    """Part 3: 200 epochs at learning rate 0.01 converge; the animation keeps 100 frames."""
    launched = launch("network_lr_0_01", "optimizer.lr=0.01", "data.n_samples=500")
    run = launched.run
    assert run.info.status == "FINISHED"
    assert run.data.params["trainer.epochs"] == "200"
    assert run.data.tags["outcome"] == "converged"
    assert len(launched.history("train_loss")) == 200
    n_frames, _ = launched.gif_frames()
    assert n_frames >= 100


def test_network_fails_at_lr_1(launch) -> None:
    """Part 3: at learning rate 1 training does not converge to a good solution."""
    launched = launch("network_lr_1", "optimizer.lr=1", "data.n_samples=500")
    assert launched.run.info.status == "FINISHED"
    assert launched.run.data.tags["outcome"] in OUTCOMES - {"converged"}


def test_forced_divergence_is_recorded_not_crashed(launch) -> None:
    launched = launch(
        "diverge", "experiment=linear_regression", "optimizer=sgd", "optimizer.lr=1000"
    )
    run = launched.run
    assert run.info.status == "FINISHED"
    assert run.data.tags["outcome"] == "diverged"
    epochs = int(run.data.params["trainer.epochs"])
    train_loss = launched.history("train_loss")
    assert 1 <= len(train_loss) <= epochs
    assert [m.step for m in train_loss] == list(range(1, len(train_loss) + 1))
    assert run.data.tags["epochs_run"] == str(len(train_loss))
    assert "training.gif" in launched.artifact_names()
    assert "Traceback" not in launched.stderr
