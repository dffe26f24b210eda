"""What users type besides a run: ``--help``, bad group options, ``learnai runs``,
``learnai rerun`` and ``learnai.runs_frame``.

Fast tests run the CLI on argument errors (answered before anything heavy is imported);
slow tests record a tiny sweep and an Optuna study once per module and read them back.
"""

from __future__ import annotations

import math
import re
import subprocess
from pathlib import Path

import pytest
from sweep_helpers import TINY, run_learnai, run_python, tracking_uri

from learnai.commands.choices import check_command_line
from learnai.config import ConfigError

CONF = str(Path(__file__).resolve().parent.parent / "conf")


def run_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_python(cwd, "-m", "learnai", *args)


# --- --help and config group choices (fast) ---------------------------------------------


def test_help_shows_learnai_options_only(tmp_path: Path) -> None:
    proc = run_cli(tmp_path, "--help")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "powered by hydra" not in out.lower()
    assert "_schema" not in out
    assert "learnai runs" in out and "learnai rerun" in out
    assert "optimizer: adam, sgd" in out
    assert "data: linear, nonlinear, polynomial" in out
    assert "model: linear, mlp" in out


HYDRAS_OWN_HELP = (
    "import sys; sys.argv = ['learnai', *sys.argv[1:]]; from learnai.cli import _entry; _entry()"
)


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["--help", "model=linear", "optimizer.lr=0.5"],
        ["-h", "--resolve", "experiment=linear_regression"],
        ["--help", "hydra/help=default"],
    ],
)
def test_help_prints_exactly_what_hydras_help_prints(tmp_path: Path, argv: list[str]) -> None:
    """learnai renders its help template itself (Hydra's --help copies its config
    repository once per config group); the text must stay Hydra's, byte for byte."""
    ours = run_cli(tmp_path, *argv)
    hydras = run_python(tmp_path, "-c", HYDRAS_OWN_HELP, *argv)
    assert ours.returncode == hydras.returncode == 0, ours.stderr + hydras.stderr
    assert ours.stdout == hydras.stdout


def test_a_help_template_that_needs_hydras_flags_is_hydras_to_render(tmp_path: Path) -> None:
    proc = run_cli(tmp_path, "--help", "hydra.help.template='flags: $FLAGS_HELP'")
    assert proc.returncode == 0, proc.stderr
    assert "--multirun,-m : Run multiple jobs" in proc.stdout  # only Hydra knows its flags


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["data=data_schema"], "invalid value for data: 'data_schema' (options: linear,"),
        (["optimizer=adam_schema"], "invalid value for optimizer: 'adam_schema' (options: adam"),
        (["-m", "model=mlp,foo"], "invalid value for model: 'foo' (options: linear, mlp)"),
        (["experiment=nope"], "invalid value for experiment: 'nope'"),
        (["optimizer=choice(sgd, nadam)"], "invalid value for optimizer: 'nadam'"),
    ],
)
def test_a_group_option_that_does_not_exist_is_one_error(argv, message) -> None:
    with pytest.raises(ConfigError, match=r"^" + message.replace("(", r"\(").replace(")", r"\)")):
        check_command_line(argv, CONF)


@pytest.mark.parametrize(
    "argv",
    [
        ["optimizer=sgd", "model=linear", "data=polynomial"],
        ["-m", "optimizer=adam,sgd", "optimizer.lr=0.01,1"],
        ["experiment=lr_depth_search", "hydra/sweeper=optuna", "~experiment"],
        ["experiment=null", "+model.extra=1", "tracking.uri=sqlite:///a=b.db"],
    ],
)
def test_real_options_pass(argv) -> None:
    check_command_line(argv, CONF)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["optimizer.lr=0"], "invalid value for optimizer.lr: 0 (must be a finite number > 0)"),
        (["-m", "optimizer.lr=0.01,-1"], "invalid value for optimizer.lr: -1 ("),
        (["++trainer.epochs=0"], "invalid value for trainer.epochs: 0 (must be >= 1)"),
        (["trainer.device=gpu"], "invalid value for trainer.device: 'gpu' (must be auto,"),
        (["tracking.experiment=''"], "invalid value for tracking.experiment: '' (must not"),
    ],
)
def test_a_typed_value_no_run_accepts_is_refused_before_composition(argv, message) -> None:
    with pytest.raises(ConfigError, match=r"^" + re.escape(message)):
        check_command_line(argv, CONF)


@pytest.mark.parametrize(
    "argv",
    [
        ["trainer.epochs=abc"],  # a type Hydra converts or refuses: Hydra's to report
        ["optimizer.lr='0.5'"],
        ["optimizer.lr=${oc.env:LR}"],
        ["trainer.progress=false", "trainer.num_threads=0"],
        ["-m", "optimizer.lr=interval(0, 1)", "model.depth=range(0, 4)"],
        ["~optimizer.lr"],  # a delete
    ],
)
def test_values_only_composition_can_judge_are_left_to_it(argv) -> None:
    check_command_line(argv, CONF)


def test_cli_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    proc = run_cli(tmp_path, "data=data_schema", "trainer.epochs=1")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "learnai: invalid value for data: 'data_schema' (options: linear, nonlinear, polynomial)"
    ]
    assert not (tmp_path / "mlruns").exists()


def test_a_logged_config_in_config_dir_is_not_silently_ignored(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("optimizer:\n  lr: 5\n")
    with pytest.raises(ConfigError, match="learnai rerun RUN_ID"):
        check_command_line(["--config-dir", str(tmp_path)], CONF)
    check_command_line(["--config-dir", str(tmp_path), "--config-name", "other"], CONF)


# --- the experiment kind (fast) ---------------------------------------------------------


def test_experiments_are_tagged_as_model_training(tmp_path: Path) -> None:
    """New experiments get the kind tag; ones made before learnai set it get it on use."""
    from mlflow import MlflowClient

    from learnai import tracking

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = tracking.open_store(uri)
    old = MlflowClient(uri).create_experiment("made_elsewhere")
    assert tracking.EXPERIMENT_KIND_TAG not in client.get_experiment(old).tags
    assert tracking.ensure_experiment(client, "made_elsewhere") == old
    new = tracking.ensure_experiment(client, "fresh")
    for experiment_id in (old, new):
        tags = client.get_experiment(experiment_id).tags
        assert tags[tracking.EXPERIMENT_KIND_TAG] == "custom_model_development"


def test_ui_links_open_the_runs_table() -> None:
    from learnai import tracking
    from learnai.ui_links import experiment_url, run_url

    assert experiment_url("http://h:5000/", "3") == (
        "http://h:5000/#/experiments/3/runs?workflowType=machine_learning"
    )
    assert run_url("http://h:5000", "3", "abc", "artifacts/training.gif") == (
        "http://h:5000/#/experiments/3/runs/abc/artifacts/training.gif"
        "?workflowType=machine_learning"
    )
    command = tracking.ui_command("sqlite:////tmp/x/mlflow.db", "3")
    assert command.endswith(
        " ui --backend-store-uri sqlite:////tmp/x/mlflow.db then open "
        "http://127.0.0.1:5000/#/experiments/3/runs?workflowType=machine_learning"
    )
    assert tracking.ui_command("http://u:secret@h:5000", "3") == (
        "open http://u:***@h:5000/#/experiments/3/runs?workflowType=machine_learning in a browser"
    )


# --- runs / rerun on stores that are not there (fast) ------------------------------------


def test_runs_does_not_create_a_store(tmp_path: Path) -> None:
    proc = run_cli(tmp_path, "runs")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("learnai runs: no MLflow store at ")
    assert str(tmp_path / "mlruns" / "mlflow.db") in lines[0]
    other = tmp_path / "elsewhere" / "x.db"
    proc = run_cli(tmp_path, "runs", "--tracking-uri", f"sqlite:///{other}")
    assert proc.returncode == 2 and str(other) in proc.stderr
    assert list(tmp_path.iterdir()) == []  # no mlruns/, no elsewhere/, no outputs/


def test_rerun_of_a_missing_store_or_file_is_one_line(tmp_path: Path) -> None:
    proc = run_cli(tmp_path, "rerun", "0123456789abcdef")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    proc = run_cli(tmp_path, "rerun", "missing/config.yaml")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "learnai rerun: no config file missing/config.yaml"
    assert list(tmp_path.iterdir()) == []


# --- a recorded sweep and study, read back (slow) ---------------------------------------


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-run grid sweep: lr 0.01 converges, lr 1 diverges."""
    cwd = tmp_path_factory.mktemp("grid")
    run_learnai(cwd, "-m", "optimizer.lr=0.01,1", *TINY)
    return cwd


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-trial Optuna study over lr, linked to its MLflow runs."""
    cwd = tmp_path_factory.mktemp("study")
    run_learnai(
        cwd,
        "-m",
        "hydra/sweeper=optuna",
        "hydra.sweeper.n_trials=3",
        "hydra.sweeper.study_name=cmd_study",
        "hydra.sweeper.storage=sqlite:///mlruns/optuna.db",  # in memory, it ends with the command
        "tracking.experiment=cmd_study",
        "optimizer.lr=tag(log, interval(1e-3, 1e-1))",
        *TINY,
        "trainer.animation.enabled=false",
    )
    return cwd


@pytest.mark.slow
def test_runs_table_names_children_by_what_varies(grid: Path) -> None:
    proc = run_cli(grid, "runs")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == [
        "run",
        "outcome",
        "swept",
        "train_loss",
        "val_loss",
        "trial",
        "run_id",
    ]
    parent = next(i for i, line in enumerate(lines) if not line.startswith(" ") and i > 0)
    children = [line for line in lines[parent + 1 :] if line.startswith("  ")]
    assert len(children) == 2
    assert children[0].split()[:3] == ["lr=0.01", "converged", "lr=0.01"]
    assert children[1].split()[:2] == ["lr=1", "diverged"]


@pytest.mark.slow
def test_runs_frame_from_python(grid: Path) -> None:
    import learnai

    frame = learnai.runs_frame("learnai", tracking_uri(grid))
    children = frame[frame["parent_run_id"].notna()]
    assert sorted(children["name"]) == ["lr=0.01", "lr=1"]
    assert set(children["outcome"]) == {"converged", "diverged"}
    assert set(children["optimizer.lr"]) == {"0.01", "1.0"}
    converged = children[children["outcome"] == "converged"].iloc[0]
    assert 0 < converged["final_val_loss"] < 1
    parent = frame[frame["parent_run_id"].isna()].iloc[0]
    assert parent["outcome"] == "sweep"
    assert list(frame["run_id"]).index(parent["run_id"]) == 0  # parent before its children


@pytest.mark.slow
def test_rerun_reproduces_the_logged_run(grid: Path, tmp_path: Path) -> None:
    """From another directory, by URI: same seed, same config -> same losses."""
    from mlflow import MlflowClient

    uri = tracking_uri(grid)
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("learnai")
    original = client.search_runs([exp.experiment_id], "tags.outcome = 'converged'")[0]
    proc = run_cli(tmp_path, "rerun", original.info.run_id, "--tracking-uri", uri)
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "mlruns").exists()  # recorded in the given store only
    rerun = client.search_runs(
        [exp.experiment_id], f"tags.`learnai.rerun_of` = '{original.info.run_id}'"
    )
    assert len(rerun) == 1
    new, old = rerun[0].data, original.data
    assert rerun[0].info.run_name == f"rerun of {original.info.run_name}"
    assert rerun[0].info.status == "FINISHED"
    for key in ("final_train_loss", "final_val_loss", "val_r2"):
        assert math.isclose(new.metrics[key], old.metrics[key], rel_tol=1e-9), key

    # The same config; only where it is recorded (and the run's name) differ.
    def same(params: dict[str, str]) -> dict[str, str]:
        return {k: v for k, v in params.items() if not k.startswith("tracking.")}

    assert same(new.params) == same(old.params)
    assert new.tags["outcome"] == "converged"


@pytest.mark.slow
def test_runs_show_optuna_trial_states(study: Path) -> None:
    import learnai

    frame = learnai.runs_frame("cmd_study", tracking_uri(study))
    trials = frame[frame["parent_run_id"].notna()]
    assert set(trials["optuna_study"]) == {"cmd_study"}
    assert sorted(trials["trial"]) == [0, 1, 2]
    assert set(trials["trial_state"]) <= {"COMPLETE", "PRUNED"}
    assert trials["trial_state"].notna().all()
    assert all(
        name.startswith(f"#{n} lr=")
        for name, n in zip(trials["name"], trials["trial"], strict=True)
    )
    proc = run_cli(study, "runs", "cmd_study")
    assert proc.returncode == 0, proc.stderr
    assert "0 COMPLETE" in proc.stdout or "0 PRUNED" in proc.stdout
