"""One run, read back from MLflow as a user finds it: params, a loss per epoch, final
values, tags, files; and the tutorial's claims.

The runs are learnai's own, in this process (:func:`helpers.inproc.run`), all in one
store under a module folder; each is made once and shared by the tests that read it.
Only what needs Hydra's command line (the tags of the options and overrides a user
typed) runs ``python -m learnai`` (``e2e``).
"""

from __future__ import annotations

import itertools
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from helpers import inproc
from helpers.cli import run_learnai
from helpers.stores import PARENT_TAG, all_runs, artifact_names, download, mlflow_client, only_run
from omegaconf import OmegaConf
from PIL import Image

from learnai.train.run import Result

# What TINY sets for the machine, without its sizes: these runs keep the tutorial's.
QUIET = ("trainer.device=cpu", "trainer.progress=false", "trainer.num_threads=1")
SMALL = (*QUIET, "data.n_samples=300", "model.hidden=32")
OUTCOMES = {"converged", "stalled", "diverged"}
ARTIFACTS = {"config.yaml", "loss_curve.png", "fit.png", "training.gif", "predictions.npz"}


@dataclass
class Recorded:
    """One finished run: what :func:`learnai.train.run.run` returned, and its store."""

    root: Path  # the store is root/mlruns
    experiment: str
    result: Result
    git_head: tuple[str, str] | None = None  # learnai's checkout as the run started

    def __post_init__(self) -> None:
        self.client = mlflow_client(self.root)
        self.run = only_run(self.client, self.experiment)

    @property
    def run_id(self) -> str:
        return self.run.info.run_id

    def history(self, key: str) -> list:
        return sorted(self.client.get_metric_history(self.run_id, key), key=lambda m: m.step)

    def download(self, name: str) -> Path:
        return download(self.client, self.run_id, name, self.root / "downloaded" / self.run_id)

    def gif(self) -> list[np.ndarray]:
        with Image.open(self.download("training.gif")) as gif:
            frames = []
            for i in range(gif.n_frames):
                gif.seek(i)
                frames.append(np.asarray(gif.convert("RGB")))
        return frames


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("store")


def record(store: Path, experiment: str, *overrides: str) -> Recorded:
    result = inproc.run(store, f"tracking.experiment={experiment}", *overrides, tiny=False)
    return Recorded(store, experiment, result)


# --- a small run: everything a user finds in MLflow --------------------------------------

EPOCHS = 30


@pytest.fixture(scope="module")
def small(store: Path) -> Recorded:
    """Launched from the store's folder with the default, relative store URI."""
    from helpers.processes import REPO

    from learnai.tracking.source import git_head

    head = git_head(REPO)  # the checkout may move on while the tests read the run
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(store)
        recorded = record(
            store,
            "t",
            *QUIET,
            f"trainer.epochs={EPOCHS}",
            "data.n_samples=200",
            "tracking.uri=sqlite:///mlruns/mlflow.db",
        )
    recorded.git_head = head
    return recorded


def test_run_finishes_on_its_own(small: Recorded) -> None:
    assert small.run.info.status == "FINISHED"
    assert PARENT_TAG not in small.run.data.tags  # a single run is no sweep's child
    assert [r.info.run_id for r in all_runs(small.client, "t")] == [small.run_id]
    children = [
        r
        for e in small.client.search_experiments()
        for r in all_runs(small.client, e.name)
        if r.data.tags.get(PARENT_TAG) == small.run_id
    ]
    assert children == []


def test_run_returns_what_it_recorded(small: Recorded) -> None:
    """A notebook's ``run(cfg)`` gives the recorded run's id, outcome and final values."""
    result, run = small.result, small.run
    assert result.run_id == small.run_id
    assert result.experiment_id == run.info.experiment_id
    assert result.outcome == run.data.tags["outcome"]
    assert result.final_val_loss == pytest.approx(run.data.metrics["final_val_loss"])
    assert result.val_r2 == pytest.approx(run.data.metrics["val_r2"])
    assert result.objective == result.final_val_loss  # a run that did not diverge


def test_store_and_artifacts_live_under_the_launch_directory(small: Recorded) -> None:
    mlruns = (small.root / "mlruns").resolve()
    assert (mlruns / "mlflow.db").is_file()
    assert small.run.info.artifact_uri.startswith(mlruns.as_uri() + "/")
    stored = {p.name for p in mlruns.rglob("*") if small.run_id in p.parts}
    assert stored >= ARTIFACTS


def test_params_are_the_resolved_config_with_dotted_keys(small: Recorded) -> None:
    params = small.run.data.params
    assert params["optimizer.lr"] == "0.01"
    assert params["model.depth"] == "2"
    assert params["trainer.epochs"] == str(EPOCHS)
    assert params["data.n_samples"] == "200"
    assert params["trainer.device"] == "cpu"
    assert params["data._target_"] == "learnai.train.data.nonlinear"


@pytest.mark.parametrize("key", ["train_loss", "val_loss"])
def test_loss_is_logged_every_epoch(small: Recorded, key: str) -> None:
    history = small.history(key)
    assert [m.step for m in history] == list(range(1, EPOCHS + 1))  # epochs count from 1


def test_final_metrics_and_tags(small: Recorded) -> None:
    metrics, tags = small.run.data.metrics, small.run.data.tags
    assert "val_r2" in metrics
    assert "final_val_loss" in metrics
    assert tags["outcome"] in OUTCOMES
    assert tags["device"] == "cpu"
    assert tags["epochs_run"] == str(EPOCHS)


def test_artifacts_include_config_plots_and_animation(small: Recorded) -> None:
    names = artifact_names(small.client, small.run_id)
    assert names >= ARTIFACTS, f"missing: {ARTIFACTS - names}"
    for png in ("loss_curve.png", "fit.png"):
        with Image.open(small.download(png)) as image:
            assert image.format == "PNG"
            assert image.width > 100 and image.height > 100


def test_animation_has_one_frame_per_epoch_at_the_default_size(small: Recorded) -> None:
    frames = small.gif()
    assert len(frames) == EPOCHS
    height, width, _ = frames[0].shape
    assert (width, height) == (640, 400)


def test_config_artifact_reloads_with_resolved_values(small: Recorded) -> None:
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


# --- the verdict where the eye lands first; the model; the source ----------------------


def test_a_single_run_keeps_the_name_it_was_given_without_overrides(small: Recorded) -> None:
    """Nothing typed to name it: the experiment's name, then its verdict."""
    run = small.run
    verdict = run.data.tags["outcome"]
    assert run.info.run_name == f"t \u00b7 {verdict}"
    assert run.data.tags["learnai.name"] == "t"
    assert small.result.name == "t"  # what the console prints, without the verdict


def test_the_name_and_description_carry_the_verdict(
    converged: Recorded, diverged_search_like: Recorded
) -> None:
    run = converged.run
    assert run.info.run_name == "network_lr_0_01 \u00b7 converged"  # in-process: no overrides
    note = run.data.tags["mlflow.note.content"]
    assert note.startswith("**converged**: the network fits the curve")
    assert f"final val_loss {run.data.metrics['final_val_loss']:.4g}" in note
    assert "loss_curve.png" in note
    run = diverged_search_like.run
    epoch = run.data.tags["diverged_epoch"]
    assert run.info.run_name == f"lr1_search_like \u00b7 diverged at epoch {epoch}"
    note = run.data.tags["mlflow.note.content"]
    assert note.startswith(f"**diverged at epoch {epoch}**: the loss blew up")


def test_a_user_chosen_name_stays_as_given(store: Path) -> None:
    named = record(store, "named", *QUIET, "trainer.epochs=2", "tracking.run_name=mine")
    assert named.run.info.run_name == "mine"
    assert named.run.data.tags["mlflow.note.content"].startswith("**")


def test_the_trained_model_loads_and_predicts_the_fit_plot(converged: Recorded) -> None:
    """``mlflow.pytorch.load_model`` gives back the network the fit plot drew."""
    import mlflow.pytorch
    import torch
    from mlflow.tracking import set_tracking_uri

    run_id = converged.run_id
    (output,) = converged.run.outputs.model_outputs  # the Models column reads this
    model = converged.client.get_logged_model(output.model_id)
    assert model.status == "READY" and model.source_run_id == run_id
    assert model.params == converged.run.data.params  # its page shows what made it
    scores = {m.key: m.value for m in model.metrics}
    assert scores == {
        k: converged.run.data.metrics[k] for k in ("final_train_loss", "final_val_loss", "val_r2")
    }
    assert output.step == int(converged.run.data.tags["epochs_run"])
    z = np.load(converged.download("predictions.npz"))
    set_tracking_uri(converged.client.tracking_uri)
    try:
        for uri in (f"runs:/{run_id}/model", f"models:/{output.model_id}"):
            net = mlflow.pytorch.load_model(uri)
            with torch.no_grad():
                predicted = net(torch.as_tensor(z["grid"][:, None], dtype=torch.float32))
            np.testing.assert_allclose(predicted.numpy()[:, 0], z["final"], rtol=1e-4, atol=1e-5)
        info = mlflow.models.get_model_info(f"runs:/{run_id}/model")
        assert info.signature is not None and info.saved_input_example_info is not None
        # a user can register it, as the docs show
        version = mlflow.register_model(f"runs:/{run_id}/model", "tutorial-net")
        assert int(version.version) == 1 and version.run_id == run_id
    finally:
        set_tracking_uri("")


def test_a_diverged_run_logs_no_model(diverged_search_like: Recorded) -> None:
    assert not diverged_search_like.run.outputs.model_outputs


def test_the_source_and_git_commit_are_mlflows_tags(small: Recorded) -> None:
    from helpers.processes import REPO

    tags = small.run.data.tags
    assert tags["mlflow.source.type"] == "LOCAL"
    assert tags["mlflow.source.name"] == str(REPO / "learnai")
    commit, branch = small.git_head  # as the run started
    assert tags["mlflow.source.git.commit"] == commit and len(commit) == 40
    assert tags.get("mlflow.source.git.branch", "") == branch


def test_git_head_reads_branches_packed_refs_and_detached_heads(tmp_path: Path) -> None:
    from learnai.tracking.source import git_head

    sha, other = "a" * 40, "b" * 40
    git = tmp_path / "repo" / ".git"
    (git / "refs" / "heads").mkdir(parents=True)
    code = tmp_path / "repo" / "pkg" / "sub"
    code.mkdir(parents=True)
    (git / "HEAD").write_text("ref: refs/heads/dev\n")
    (git / "refs" / "heads" / "dev").write_text(sha + "\n")
    assert git_head(code) == (sha, "dev")
    (git / "refs" / "heads" / "dev").unlink()
    (git / "packed-refs").write_text(f"# pack-refs\n{other} refs/heads/dev\n")
    assert git_head(code) == (other, "dev")
    (git / "HEAD").write_text(sha + "\n")
    assert git_head(code) == (sha, "")
    assert git_head(tmp_path / "elsewhere") is None or git_head(tmp_path)[0] != sha


@pytest.mark.parametrize("name", ["diverged", "converged"])
def test_log10_losses_chart_a_blow_up_next_to_a_converged_run(
    request: pytest.FixtureRequest, name: str
) -> None:
    recorded: Recorded = request.getfixturevalue(name)
    for key in ("train_loss", "val_loss"):
        raw = {m.step: m.value for m in recorded.history(key)}
        logs = {m.step: m.value for m in recorded.history(f"log10_{key}")}
        finite = {s: v for s, v in raw.items() if 0 < v < math.inf}
        assert set(logs) == set(finite) and logs
        for step, value in logs.items():
            assert value == pytest.approx(math.log10(finite[step]), rel=1e-6, abs=1e-9)
    if name == "diverged":
        assert max(m.value for m in recorded.history("log10_val_loss")) < 40


def test_a_single_runs_link_opens_a_view_of_its_runs_best_first(converged: Recorded) -> None:
    import json

    from learnai.tracking.links import VIEW_TAG_PREFIX, experiment_url

    key = converged.result.view
    tags = converged.client.get_experiment(converged.run.info.experiment_id).tags
    view = json.loads(tags[VIEW_TAG_PREFIX + key])
    assert view["orderByKey"] == "metrics.`final_val_loss`" and view["orderByAsc"] is True
    assert {"tags.`outcome`", "attributes.`Models`"} <= set(view["selectedColumns"])
    url = experiment_url("http://h", "1", key)
    assert (
        url
        == f"http://h/#/experiments/1/runs?viewStateShareKey={key}&workflowType=machine_learning"
    )


# --- the tutorial's claims ---------------------------------------------------------------


@pytest.fixture(scope="module")
def linear_regression(store: Path) -> Recorded:
    return record(store, "linear_regression", *QUIET, "experiment=linear_regression")


@pytest.fixture(scope="module")
def converged(store: Path) -> Recorded:
    return record(store, "network_lr_0_01", *SMALL, "optimizer.lr=0.01")


@pytest.fixture(scope="module")
def diverged(store: Path) -> Recorded:
    return record(store, "network_lr_1", *SMALL, "optimizer.lr=1")


def test_linear_regression_recovers_the_line(linear_regression: Recorded) -> None:
    """Part 1: 10,000 points, 100 epochs of Adam: w ~ 2, b ~ 1."""
    run = linear_regression.run
    assert run.info.status == "FINISHED"
    assert run.data.params["data.n_samples"] == "10000"
    assert run.data.params["trainer.epochs"] == "100"
    assert run.data.metrics["weight.0"] == pytest.approx(2.0, abs=0.1)
    assert run.data.metrics["bias"] == pytest.approx(1.0, abs=0.1)
    assert run.data.tags["outcome"] == "converged"
    assert len(linear_regression.history("train_loss")) == 100
    w, b = run.data.metrics["weight.0"], run.data.metrics["bias"]
    assert linear_regression.result.equation == f"y = {w:.3f} x + {b:.3f}"  # as printed


def test_network_converges_at_lr_0_01(converged: Recorded) -> None:
    """Part 3: 200 epochs at learning rate 0.01 converge; the animation keeps 100 frames."""
    run = converged.run
    assert run.info.status == "FINISHED"
    assert run.data.params["trainer.epochs"] == "200"
    assert run.data.tags["outcome"] == "converged"
    assert len(converged.history("train_loss")) == 200
    assert len(converged.gif()) == 100


def test_network_fails_at_lr_1_and_its_animation_shows_the_failure(diverged: Recorded) -> None:
    """Part 3: at learning rate 1 training blows up; the run records it (not a crash)
    and keeps training a while, so its animation shows the failure happening."""
    run = diverged.run
    assert run.info.status == "FINISHED"
    assert run.data.tags["outcome"] == "diverged"
    assert diverged.result.objective == math.inf  # what a sweeper minimises
    frames = diverged.gif()
    assert len(frames) >= 40
    changed = sum(not np.array_equal(a, b) for a, b in itertools.pairwise(frames))
    assert changed >= 35
    for png in ("loss_curve.png", "fit.png"):
        with Image.open(diverged.download(png)) as image:
            assert image.width > 300


def test_forced_divergence_is_recorded_not_crashed(store: Path) -> None:
    launched = record(
        store,
        "diverge",
        *QUIET,
        "experiment=linear_regression",
        "optimizer=sgd",
        "optimizer.lr=1000",
    )
    run = launched.run
    assert run.info.status == "FINISHED"
    assert run.data.tags["outcome"] == "diverged"
    epochs = int(run.data.params["trainer.epochs"])
    train_loss = launched.history("train_loss")
    assert 1 <= len(train_loss) <= epochs
    assert [m.step for m in train_loss] == list(range(1, len(train_loss) + 1))
    assert run.data.tags["epochs_run"] == str(len(train_loss))
    assert "training.gif" in artifact_names(launched.client, launched.run_id)


def test_a_stalled_run_records_its_outcome_predictions_and_final_loss(store: Path) -> None:
    stalled = record(
        store, "p", *QUIET, "model=linear", "optimizer.lr=0.0001", "trainer.epochs=3",
        "data.n_samples=100",
    )  # fmt: skip
    run = stalled.run
    assert run.data.tags["outcome"] == "stalled"  # a straight line cannot fit the curve
    history = stalled.history("train_loss")
    # the final model on the training data: one optimizer step past the last logged loss
    assert run.data.metrics["final_train_loss"] == pytest.approx(history[-1].value, rel=1e-2)
    assert run.data.metrics["final_train_loss"] < history[0].value
    z = np.load(stalled.download("predictions.npz"))
    assert z["frames"].shape == (len(z["frame_epochs"]), len(z["grid"]))
    assert int(z["epochs"]) == 3


# --- one model state: the final numbers and the pictures agree ---------------------------
# (other sync rhythms: test_pictures.py, on the loop itself)


@pytest.fixture(scope="module")
def diverged_search_like(store: Path) -> Recorded:
    """As a search runs: no epochs after a blow-up."""
    return record(
        store, "lr1_search_like", *SMALL, "optimizer.lr=1", "trainer.animation.after_divergence=0"
    )


@pytest.mark.parametrize("name", ["diverged", "diverged_search_like", "converged"])
def test_final_metrics_and_predictions_agree(request: pytest.FixtureRequest, name: str) -> None:
    recorded: Recorded = request.getfixturevalue(name)
    client, run = recorded.client, recorded.run
    metrics, tags = run.data.metrics, run.data.tags
    outcome = "converged" if name == "converged" else "diverged"
    assert tags["outcome"] == outcome
    epochs_run = int(tags["epochs_run"])
    if name == "diverged_search_like":
        assert epochs_run == 10  # the first sync_every chunk, no more
    val_loss = recorded.history("val_loss")
    # steps count epochs from 1; the last one is the state the final metrics describe
    assert [m.step for m in val_loss] == list(range(1, epochs_run + 1))
    final = client.get_metric_history(run.info.run_id, "final_val_loss")
    assert [m.step for m in final] == [epochs_run]
    assert metrics["final_val_loss"] == pytest.approx(val_loss[-1].value, rel=1e-6)

    z = np.load(recorded.download("predictions.npz"))
    assert int(z["final_epoch"]) == epochs_run
    residual = float(((z["y_val"] - z["val_prediction"]) ** 2).mean())
    assert metrics["final_val_loss"] == pytest.approx(residual, rel=1e-5)
    r2 = 1.0 - residual / float(z["y_val"].var())
    assert metrics["val_r2"] == pytest.approx(r2, rel=1e-4, abs=1e-6)
    if int(z["frame_epochs"][-1]) == epochs_run:
        np.testing.assert_allclose(z["frames"][-1], z["final"], rtol=1e-5)
    if outcome == "diverged":
        assert int(tags["diverged_epoch"]) == int(z["diverged_at"]) >= 1


# --- what only the command line records --------------------------------------------------


@pytest.mark.e2e
def test_a_run_records_the_options_and_overrides_typed(tmp_path: Path) -> None:
    overrides = ("model=linear", "optimizer.lr=0.0001", "trainer.epochs=3", "data.n_samples=100")
    proc = run_learnai(tmp_path, *overrides, "trainer.device=cpu", "tracking.experiment=p")
    client = mlflow_client(tmp_path)
    tags = only_run(client, "p").data.tags
    # the printed link's view shows the values typed (a group's option is no param)
    from learnai.tracking.links import VIEW_TAG_PREFIX

    (key,) = re.findall(r"viewStateShareKey=(learnai-[0-9a-f]+)&", proc.stdout + proc.stderr)
    experiment = client.get_experiment_by_name("p")
    columns = json.loads(experiment.tags[VIEW_TAG_PREFIX + key])["selectedColumns"]
    params = [c for c in columns if c.startswith("params.")]
    assert params == [
        "params.`optimizer.lr`",
        "params.`trainer.epochs`",
        "params.`data.n_samples`",
        "params.`trainer.device`",
    ]
    assert tags["choice.model"] == "linear"
    assert tags["choice.data"] == "nonlinear"
    assert tags["overrides"].split() == [*overrides, "trainer.device=cpu", "tracking.experiment=p"]
    assert tags["outcome"] == "stalled"


def test_a_model_torch_export_cannot_save_is_one_warning_and_the_run_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A plugged-in model with data-dependent control flow: no model, a FAILED
    LoggedModel, one warning line naming the run; the store is untouched otherwise."""
    import torch
    from helpers.inproc import new_store_at

    from learnai.tracking.recorder import RunRecorder

    class Branchy(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(1, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.layer(x) if float(x.sum()) > 0 else -self.layer(x)

    recorder = RunRecorder.start(new_store_at(tmp_path / "mlflow.db"), "branchy")
    with caplog.at_level("WARNING", logger="learnai"):
        assert recorder.log_model(Branchy(), torch.ones(3, 1)) is None
    (line,) = [r.getMessage() for r in caplog.records if r.name == "learnai"]
    assert line.startswith(f"run {recorder.run_id}: its model was not logged (torch.export")
    recorder.end("FINISHED")
    run = recorder.client.get_run(recorder.run_id)
    assert run.info.status == "FINISHED" and not run.outputs.model_outputs
    (model,) = recorder.client.search_logged_models([recorder.experiment_id])
    assert model.status == "FAILED"


def test_a_store_that_refuses_the_view_is_one_warning_and_the_link_sorts_anyway(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The view is an experiment tag; a store that refuses it (here: the experiment was
    deleted under the run) costs one line, not the run."""
    from helpers.inproc import new_store_at

    from learnai.tracking.links import experiment_url, runs_view
    from learnai.tracking.recorder import RunRecorder

    recorder = RunRecorder.start(new_store_at(tmp_path / "mlflow.db"), "gone")
    recorder.client.delete_experiment(recorder.experiment_id)
    with caplog.at_level("WARNING", logger="learnai"):
        assert recorder.share_view(runs_view(["optimizer.lr"])) is None
    (line,) = [r.getMessage() for r in caplog.records if r.name == "learnai"]
    assert line.startswith("could not store the runs-table view: ")
    assert "orderByKey=metrics.%60final_val_loss%60&orderByAsc=true" in experiment_url("h", "1")


def test_a_huge_r2_prints_in_a_few_digits(caplog: pytest.LogCaptureFixture) -> None:
    import torch

    from learnai.train.run import OpenRun, summarise

    job = OpenRun(recorder=None, uri="sqlite://", device=torch.device("cpu"), trial=None,
                  is_multirun=True)  # fmt: skip
    with caplog.at_level("INFO", logger="learnai"):
        summarise(Result("r", "diverged", math.inf, 1e25, 2e25, -2.6e24, name="lr=1"), job)
        summarise(Result("r", "converged", 0.04, 0.04, 0.04, 0.98512, name="lr=0.01"), job)
    assert caplog.messages == [
        "lr=1: diverged | val_loss 2e+25 | val_r2 -2.6e+24",
        "lr=0.01: converged | val_loss 0.04 | val_r2 0.985",
    ]
