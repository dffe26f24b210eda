"""What users type besides a run: ``--help``, bad group options, ``learnai runs``,
``learnai rerun`` and ``learnai.runs_frame``.

In-process: the command-line checks, the experiment tag, the UI links, and a rerun of a
run recorded in this process. End to end (``e2e``): the ``learnai`` command's help, its
one-line refusals, and ``learnai runs`` on a tiny sweep and an Optuna study recorded once
per module.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from helpers import inproc
from helpers.cli import TINY_NO_ANIMATION, run_learnai
from helpers.processes import REPO
from helpers.stores import child_runs, mlflow_client, parent_runs, tracking_uri

from learnai.commands import COMMANDS
from learnai.config import ConfigError
from learnai.config.command_line import check_command_line

CONF = str(REPO / "conf")


# --- --help: Hydra's own help, with learnai's template (e2e) ------------------------------

GROUPS = (
    "data: linear, nonlinear, polynomial",
    "model: linear, mlp",
    "optimizer: adam, sgd",
)


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("argv", "shown", "hidden"),
    [
        (
            ["--help"],
            (
                "learnai: the PyTorch tutorial's models as tracked, sweepable experiments.",
                "== Commands ==",
                "learnai runs [EXPERIMENT]",
                "learnai rerun RUN_ID",
                *GROUPS,
                "_target_: learnai.train.models.GeneralFit",  # the default run's config
                "Use --hydra-help for Hydra's own options",
            ),
            # no generic Hydra page, no schemas or learnai plumbing among the groups
            ("powered by Hydra", "_schema", "sweep_link", "== Flags =="),
        ),
        (
            ["--help", "model=linear", "optimizer.lr=0.5"],
            ("_target_: learnai.train.models.LinearRegression", "lr: 0.5", *GROUPS),
            ("GeneralFit",),
        ),
        (
            ["-h", "--resolve", "experiment=linear_regression"],
            ("_target_: learnai.train.data.linear", "== Config groups =="),
            ("learnai.train.data.nonlinear",),
        ),
        (["--help", "hydra/help=default"], ("powered by Hydra",), ("== Commands ==",)),
        (
            ["--help", "hydra.help.template='flags: $FLAGS_HELP'"],
            ("--multirun,-m : Run multiple jobs",),
            ("== Commands ==",),
        ),
        (["--hydra-help"], ("--multirun,-m : Run multiple jobs", "== Flags =="), ()),
    ],
    ids=["help", "help-overrides", "h-resolve", "hydra-default", "flags-template", "hydra-help"],
)
def test_help(tmp_path: Path, argv: list[str], shown: tuple[str, ...], hidden: tuple[str, ...]):
    proc = run_learnai(tmp_path, *argv)
    for text in shown:
        assert text in proc.stdout, f"{text!r} missing from:\n{proc.stdout}"
    for text in hidden:
        assert text not in proc.stdout, f"{text!r} shown:\n{proc.stdout}"
    assert list(tmp_path.iterdir()) == [], "help creates no store and no outputs/"


# --- config group choices and typed values (in-process) -----------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["data=data_schema"], "invalid value for data: 'data_schema' (options: linear,"),
        (["optimizer=adam_schema"], "invalid value for optimizer: 'adam_schema' (options: adam"),
        (["-m", "model=mlp,foo"], "invalid value for model: 'foo' (options: linear, mlp)"),
        (["experiment=nope"], "invalid value for experiment: 'nope'"),
        (["optimizer=choice(sgd, nadam)"], "invalid value for optimizer: 'nadam'"),
        (
            ["experiment=lr_depth_serach"],
            "invalid value for experiment: 'lr_depth_serach'; did you mean lr_depth_search? "
            "(options: lr_depth_search, ",
        ),
        (["model=mpl"], "invalid value for model: 'mpl'; did you mean mlp? (options: mlp, linear)"),
    ],
)
def test_a_group_option_that_does_not_exist_is_one_error(argv, message) -> None:
    """The options are listed, the closest spelling first."""
    with pytest.raises(ConfigError, match=r"^" + re.escape(message)):
        check_command_line(argv, CONF)


# (command line, the whole message): a key no option holds, told with its closest
# spellings or the option that has it, in place of Hydra's advice to add it with '+'
UNKNOWN_KEYS = [
    (["optimizer.lrr=0.1"], "unknown key optimizer.lrr; did you mean optimizer.lr?"),
    (["+optimizer.lrr=0.1"], "unknown key optimizer.lrr; did you mean optimizer.lr?"),
    (["++optimizer.lrr=0.1"], "unknown key optimizer.lrr; did you mean optimizer.lr?"),
    (["trainer.epoch=3"], "unknown key trainer.epoch; did you mean trainer.epochs?"),
    (
        ["trainer.animation.fp=3"],
        "unknown key trainer.animation.fp; did you mean trainer.animation.fps?",
    ),
    (["optimzer.lr=1"], "unknown key optimzer.lr; did you mean optimizer.lr?"),
    (["optimzer=sgd"], "unknown key or group optimzer; did you mean optimizer?"),
    (["experimnt=lr_depth_search"], "unknown key or group experimnt; did you mean experiment?"),
    (
        ["optimizer.momentum=0.9"],
        "unknown key optimizer.momentum for optimizer=adam; it exists only with optimizer=sgd",
    ),
    (  # a sweep over optimizers: the adam jobs would fail
        ["-m", "optimizer=sgd,adam", "optimizer.momentum=0.9"],
        "unknown key optimizer.momentum for optimizer=adam; it exists only with optimizer=sgd",
    ),
    (  # the experiment picks the linear model
        ["experiment=linear_regression", "model.depth=3"],
        "unknown key model.depth for model=linear; it exists only with model=mlp",
    ),
    (["foo.bar=1"], "unknown key foo.bar (keys: data, model, optimizer, trainer, tracking)"),
    (
        ["trainer.xyzzy=1"],
        "unknown key trainer.xyzzy (trainer has: epochs, seed, device, sync_every, "
        "diverge_factor, converged_r2, num_threads, progress, report_every, animation)",
    ),
]


@pytest.mark.parametrize(("argv", "message"), UNKNOWN_KEYS)
def test_an_unknown_key_is_one_line_with_the_closest_spelling(argv, message) -> None:
    with pytest.raises(ConfigError) as err:
        check_command_line(argv, CONF)
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["runz"], "unknown command 'runz'; did you mean runs or rerun? (commands: rerun, runs;"),
        (["trainer.epochs=1", "lr"], "unknown command 'lr' (commands: rerun, runs;"),
        (["-m", "runs"], "'runs' is a command: it comes first (learnai runs ...)"),
    ],
)
def test_a_word_that_is_no_command_and_no_override_is_one_line(argv, message) -> None:
    with pytest.raises(ConfigError, match=r"^" + re.escape(message)):
        check_command_line(argv, CONF, commands=COMMANDS)


@pytest.mark.parametrize(
    "argv",
    [
        ["--cfg", "job", "optimizer.lr=0.1"],
        ["--info", "searchpath"],
        ["-cn", "config", "-p", "optimizer"],
        ["~optimizer.lr"],
        ["optimizer=sgd", "optimizer.momentum=0.9"],
        ["-m", "experiment=lr_depth_search", "hydra.sweeper.n_trials=2"],
    ],
)
def test_flags_their_values_and_real_keys_pass(argv) -> None:
    check_command_line(argv, CONF, commands=COMMANDS)


def test_a_stray_fragment_is_left_to_hydra() -> None:
    """An unquoted space splits an override; Hydra's parse error says more than
    'unknown command' would about ``10))``."""
    check_command_line(["optimizer.lr=interval(1e-4,", "10))"], CONF, commands=COMMANDS)


def test_a_config_dir_option_without_a_schema_takes_plus_keys(tmp_path: Path) -> None:
    """Keys of a plain YAML option are free, as in Hydra: '+' adds one; a typed
    (schema-backed) option still refuses it, and a mistyped key of either is named."""
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "mine.yaml").write_text("_target_: my.Model\nwidth: 3\n")
    base = ["--config-dir", str(tmp_path), "model=mine"]
    check_command_line([*base, "model.width=4", "+model.extra=1"], CONF)
    with pytest.raises(ConfigError) as err:
        check_command_line([*base, "model.widht=4"], CONF)
    assert str(err.value) == "unknown key model.widht; did you mean model.width?"
    with pytest.raises(ConfigError) as err:
        check_command_line(["--config-dir", str(tmp_path), "+model.extra=1"], CONF)
    assert str(err.value) == "unknown key model.extra (model has: depth, hidden)"


@pytest.mark.e2e
def test_the_checks_import_no_heavy_library(tmp_path: Path) -> None:
    """They run before anything is created: torch, mlflow and optuna take seconds to load."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from learnai.config import ConfigError\n"
        "from learnai.config.command_line import check_command_line\n"
        f"conf = {CONF!r}\n"
        "for argv in (['optimizer.lrr=1'], ['model=foo'], ['runz'], ['optimizer.lr=0.1']):\n"
        "    try:\n"
        "        check_command_line(argv, conf, commands=('runs',))\n"
        "    except ConfigError:\n"
        "        pass\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'mlflow', 'optuna',"
        " 'matplotlib', 'pandas'}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert proc.stdout.strip() == "[]", proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["optimizer=sgd", "model=linear", "data=polynomial"],
        ["-m", "optimizer=adam,sgd", "optimizer.lr=0.01,1"],
        ["experiment=lr_depth_search", "hydra/sweeper=optuna", "~experiment"],
        ["experiment=null", "+hydra.job.env_set.X=1", "tracking.uri=sqlite:///a=b.db"],
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


def test_a_logged_config_in_config_dir_is_not_silently_ignored(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("optimizer:\n  lr: 5\n")
    with pytest.raises(ConfigError, match="learnai rerun RUN_ID"):
        check_command_line(["--config-dir", str(tmp_path)], CONF)
    check_command_line(["--config-dir", str(tmp_path), "--config-name", "other"], CONF)


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (
            ["data=data_schema", "trainer.epochs=1"],
            "learnai: invalid value for data: 'data_schema' (options: linear, nonlinear, "
            "polynomial)",
        ),
        (["optimizer.lrr=0.1"], "learnai: unknown key optimizer.lrr; did you mean optimizer.lr?"),
        (["+optimizer.lrr=0.1"], "learnai: unknown key optimizer.lrr; did you mean optimizer.lr?"),
        (
            ["-m", "optimizer.momentum=0.9"],
            "learnai: unknown key optimizer.momentum for optimizer=adam; it exists only with "
            "optimizer=sgd",
        ),
        (
            ["runz"],
            "learnai: unknown command 'runz'; did you mean runs or rerun? (commands: rerun, "
            "runs; or key=value overrides, e.g. optimizer.lr=0.1)",
        ),
    ],
    ids=["group-option", "key", "plus-key", "other-option's-key", "command"],
)
def test_cli_prints_one_line_and_exits_2(tmp_path: Path, argv: list[str], line: str) -> None:
    proc = run_learnai(tmp_path, *argv, expect=2)
    assert proc.stderr.strip().splitlines() == [line]
    assert list(tmp_path.iterdir()) == [], "a refused command creates nothing"


# --- the experiment kind and the UI links (in-process) -------------------------------------


def test_experiments_are_tagged_as_model_training(tmp_path: Path) -> None:
    """New experiments get the kind tag; ones made before learnai set it get it on use."""
    from mlflow import MlflowClient

    from learnai.tracking.recorder import EXPERIMENT_KIND_TAG, ensure_experiment
    from learnai.tracking.stores import open_store

    uri = inproc.new_store_at(tmp_path / "mlflow.db")
    client = open_store(uri)
    old = MlflowClient(uri).create_experiment("made_elsewhere")
    assert EXPERIMENT_KIND_TAG not in client.get_experiment(old).tags
    assert ensure_experiment(client, "made_elsewhere") == old
    new = ensure_experiment(client, "fresh")
    for experiment_id in (old, new):
        tags = client.get_experiment(experiment_id).tags
        assert tags[EXPERIMENT_KIND_TAG] == "custom_model_development"


def test_ui_links_open_the_runs_table() -> None:
    from learnai.tracking.links import experiment_url, run_url, ui_command

    best_first = "orderByKey=metrics.%60final_val_loss%60&orderByAsc=true"
    assert experiment_url("http://h:5000/", "3") == (
        f"http://h:5000/#/experiments/3/runs?{best_first}&workflowType=machine_learning"
    )
    assert run_url("http://h:5000", "3", "abc", "artifacts/training.gif") == (
        "http://h:5000/#/experiments/3/runs/abc/artifacts/training.gif"
        "?workflowType=machine_learning"
    )
    command = ui_command("sqlite:////tmp/x/mlflow.db", "3")
    assert command.endswith(
        " ui --backend-store-uri sqlite:////tmp/x/mlflow.db then open "
        f"http://127.0.0.1:5000/#/experiments/3/runs?{best_first}&workflowType=machine_learning"
    )
    assert ui_command("http://u:secret@h:5000", "3", "v1") == (
        "open http://u:***@h:5000/#/experiments/3/runs?viewStateShareKey=v1"
        "&workflowType=machine_learning in a browser"
    )


# --- learnai rerun (in-process) -------------------------------------------------------------


def test_rerun_reproduces_the_logged_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """From another directory, by URI: same seed, same config -> same losses."""
    from learnai.commands import rerun

    recorded = tmp_path / "recorded"
    original = inproc.run(recorded, "optimizer.lr=0.01", "trainer.animation.enabled=false")
    assert original.outcome == "converged"
    uri = tracking_uri(recorded)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    assert rerun.main([original.run_id, "--tracking-uri", uri]) == 0
    assert list(elsewhere.iterdir()) == [], "recorded in the given store only"
    assert f"learnai: re-running {original.run_id} in " in capsys.readouterr().err

    client = mlflow_client(recorded)
    old = client.get_run(original.run_id)
    reruns = client.search_runs(
        [old.info.experiment_id], f"tags.`learnai.rerun_of` = '{original.run_id}'"
    )
    assert len(reruns) == 1
    new = reruns[0]
    assert new.info.run_name == f"rerun of {old.data.tags['learnai.name']}"  # not its verdict
    assert new.info.status == "FINISHED"
    assert new.data.tags["outcome"] == "converged"
    for key in ("final_train_loss", "final_val_loss", "val_r2"):
        assert math.isclose(new.data.metrics[key], old.data.metrics[key], rel_tol=1e-9), key

    # The same config; only where it is recorded (and the run's name) differ.
    def same(params: dict[str, str]) -> dict[str, str]:
        return {k: v for k, v in params.items() if not k.startswith("tracking.")}

    assert same(new.data.params) == same(old.data.params)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """One tiny Adam run in a store of its own: (tracking URI, run id)."""
    where = tmp_path_factory.mktemp("recorded")
    result = inproc.run(where, "trainer.animation.enabled=false")
    return tracking_uri(where), result.run_id


@pytest.mark.parametrize(
    ("overrides", "line"),
    [
        (["optimizer.lrr=0.1"], "unknown key optimizer.lrr; did you mean optimizer.lr?"),
        (["trainer.epoch=3"], "unknown key trainer.epoch; did you mean trainer.epochs?"),
        (
            ["optimizer.momentum=0.9"],
            "unknown key optimizer.momentum for optimizer=adam; it exists only with optimizer=sgd",
        ),
        (["model=foo"], "invalid value for model: 'foo' (options: linear, mlp)"),
        (["model=mpl"], "invalid value for model: 'mpl'; did you mean mlp? (options: mlp, linear)"),
        (["optimizer.lr=0"], "invalid value for optimizer.lr: 0 (must be a finite number > 0)"),
        (
            ["+optimizer.lrr=1"],
            "invalid override '+optimizer.lrr=1' (a rerun takes plain key=value)",
        ),
        (
            ["experiment=linear_regression"],
            "experiment=linear_regression sets values across the config: a rerun cannot apply "
            "it (start a new run: learnai experiment=linear_regression ...)",
        ),
    ],
    ids=[
        "key",
        "nested-key",
        "other-option's-key",
        "option",
        "option-typo",
        "value",
        "plus",
        "experiment",
    ],
)
def test_rerun_checks_its_overrides_as_the_command_line(
    recorded: tuple[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    overrides: list[str],
    line: str,
) -> None:
    from learnai.commands import rerun

    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # as learnai's CLI
    uri, run_id = recorded
    runs_before = len(mlflow_client_at(uri).search_runs(experiment_ids=_all_experiments(uri)))
    assert rerun.main([run_id, "--tracking-uri", uri, *overrides]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"learnai rerun: {line}"]
    assert len(mlflow_client_at(uri).search_runs(_all_experiments(uri))) == runs_before


def test_rerun_takes_a_group_option_and_its_keys(recorded: tuple[str, str], tmp_path: Path) -> None:
    """``optimizer=sgd`` replaces the logged optimizer with SGD's config, so its keys
    (momentum) can be set too."""
    from learnai.commands.rerun import load_config

    uri, run_id = recorded
    local = mlflow_client_at(uri).download_artifacts(run_id, "config.yaml", str(tmp_path))
    cfg = load_config(Path(local), ["optimizer=sgd", "optimizer.momentum=0.5", "optimizer.lr=0.2"])
    assert cfg.optimizer._target_ == "torch.optim.SGD"
    assert (cfg.optimizer.momentum, cfg.optimizer.lr) == (0.5, 0.2)
    assert cfg.model._target_ == "learnai.train.models.GeneralFit"  # the rest as logged


def test_rerun_finds_a_run_by_a_unique_start_of_its_id(recorded: tuple[str, str]) -> None:
    from learnai.commands.rerun import _resolve
    from learnai.tracking.uris import StoreError

    uri, run_id = recorded
    client = mlflow_client_at(uri)
    assert _resolve(client, uri, run_id) == run_id
    experiment = client.get_run(run_id).info.experiment_id
    # 17 more runs: two of the 18 ids share a first character (16 hex digits)
    others = [client.create_run(experiment).info.run_id for _ in range(17)]
    for other in others:
        client.delete_run(other)  # deleted runs are not found (nor ambiguous)
    assert _resolve(client, uri, run_id[:6]) == run_id
    for other in others:
        client.restore_run(other)
    ids = [run_id, *others]
    shared = next(i[0] for i in ids if sum(j.startswith(i[0]) for j in ids) > 1)
    with pytest.raises(StoreError, match=rf"^run id '{shared}' is ambiguous: it starts "):
        _resolve(client, uri, shared)
    unknown = next(c for c in "0123456789abcdef" if not any(i.startswith(c) for i in ids))
    with pytest.raises(StoreError, match=rf"^no run '{unknown}' in sqlite:"):
        _resolve(client, uri, unknown)
    with pytest.raises(StoreError, match=r"^no run 'nothex' in "):
        _resolve(client, uri, "nothex")
    for other in others:
        client.delete_run(other)


def mlflow_client_at(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(uri)


def _all_experiments(uri: str) -> list[str]:
    return [e.experiment_id for e in mlflow_client_at(uri).search_experiments()]


# --- runs / rerun on stores that are not there (e2e) ----------------------------------------


@pytest.mark.e2e
def test_runs_does_not_create_a_store(tmp_path: Path) -> None:
    proc = run_learnai(tmp_path, "runs", expect=2)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("learnai runs: no MLflow store at ")
    assert str(tmp_path / "mlruns" / "mlflow.db") in lines[0]
    other = tmp_path / "elsewhere" / "x.db"
    proc = run_learnai(tmp_path, "runs", "--tracking-uri", f"sqlite:///{other}", expect=2)
    assert str(other) in proc.stderr
    assert list(tmp_path.iterdir()) == []  # no mlruns/, no elsewhere/, no outputs/


@pytest.mark.e2e
def test_rerun_of_a_missing_store_or_file_is_one_line(tmp_path: Path) -> None:
    proc = run_learnai(tmp_path, "rerun", "0123456789abcdef", expect=2)
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    proc = run_learnai(tmp_path, "rerun", "missing/config.yaml", expect=2)
    assert proc.stderr.strip() == "learnai rerun: no config file missing/config.yaml"
    assert list(tmp_path.iterdir()) == []


# --- a recorded sweep and study, read back (e2e) --------------------------------------------


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-run grid sweep: lr 0.01 converges, lr 1 diverges."""
    cwd = tmp_path_factory.mktemp("grid")
    run_learnai(cwd, "-m", "optimizer.lr=0.01,1", *TINY_NO_ANIMATION)
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
        *TINY_NO_ANIMATION,
    )
    return cwd


@pytest.mark.e2e
def test_runs_table_names_children_by_what_varies(grid: Path) -> None:
    proc = run_learnai(grid, "runs")
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
    assert children[1].split()[:3] == ["lr=1", "diverged", "lr=1"]  # as typed, not lr=1.0
    best = run_learnai(grid, "runs", "--best", "--sort=-val_loss").stdout.splitlines()
    assert [line.split()[0] for line in best[1:]][-2:] == ["learnai", "lr=0.01"]


@pytest.mark.e2e
def test_runs_frame_from_python(grid: Path) -> None:
    import learnai

    frame = learnai.runs_frame("learnai", tracking_uri(grid))
    (parent_run,) = parent_runs(mlflow_client(grid), "learnai")
    children = frame[frame["parent_run_id"].notna()]
    assert set(children["parent_run_id"]) == {parent_run.info.run_id}
    assert sorted(children["name"]) == ["lr=0.01", "lr=1"]
    assert set(children["outcome"]) == {"converged", "diverged"}
    assert set(children["optimizer.lr"]) == {"0.01", "1.0"}
    converged = children[children["outcome"] == "converged"].iloc[0]
    assert 0 < converged["final_val_loss"] < 1
    parent = frame[frame["parent_run_id"].isna()].iloc[0]
    assert parent["run_id"] == parent_run.info.run_id
    assert parent["outcome"] == "sweep"
    assert list(frame["run_id"]).index(parent["run_id"]) == 0  # parent before its children


@pytest.mark.e2e
def test_runs_show_optuna_trial_states(study: Path) -> None:
    import learnai

    frame = learnai.runs_frame("cmd_study", tracking_uri(study))
    trials = frame[frame["parent_run_id"].notna()]
    client = mlflow_client(study)
    (parent,) = parent_runs(client, "cmd_study")
    assert len(child_runs(client, "cmd_study", parent.info.run_id)) == 3
    assert set(trials["optuna_study"]) == {"cmd_study"}
    assert sorted(trials["trial"]) == [0, 1, 2]
    assert set(trials["trial_state"]) <= {"COMPLETE", "PRUNED"}
    assert trials["trial_state"].notna().all()
    assert all(
        name.startswith(f"#{n} lr=")
        for name, n in zip(trials["name"], trials["trial"], strict=True)
    )
    proc = run_learnai(study, "runs", "cmd_study")
    assert "0 COMPLETE" in proc.stdout or "0 PRUNED" in proc.stdout


# --- learnai runs --sort / --best, on runs written as learnai writes them (in-process) ------

LONG_PARENT = "learnai 12-04 10:32:37: lr=10,2,0.5 model.hidden=8,16 trainer.epochs=20"


@pytest.fixture(scope="module")
def runs_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Two sweeps and a plain run in a real MLflow store, with learnai's tags: the first
    sweep names its best run, the second does not (its best is found by val_loss)."""
    from mlflow import MlflowClient

    from learnai.tracking.recorder import PARENT_TAG

    uri = inproc.new_store_at(tmp_path_factory.mktemp("runs") / "mlflow.db")
    client = MlflowClient(uri)
    experiment = client.create_experiment("learnai")
    clock = iter(range(1_000, 100_000, 1_000))

    def run(name: str, tags: dict[str, str], params=None, metrics=None, parent=None) -> str:
        tags = {**tags, **({PARENT_TAG: parent} if parent else {})}
        made = client.create_run(experiment, start_time=next(clock), tags=tags, run_name=name)
        rid = made.info.run_id
        for key, value in (params or {}).items():
            client.log_param(rid, key, value)
        for key, value in (metrics or {}).items():
            client.log_metric(rid, key, value)
        client.set_terminated(rid, "FINISHED")
        return rid

    first = run(LONG_PARENT, {"learnai.sweep": "true", "sweep.overrides": "optimizer.lr=10,2,0.5"})
    children = {}
    for lr, loss, outcome in (
        ("10", 9e9, "diverged"),
        ("2", 0.5, "stalled"),
        ("0.5", 0.05, "converged"),
    ):
        children[lr] = run(
            f"lr={lr}",
            {"outcome": outcome, "overrides": f"optimizer.lr={lr} trainer.epochs=20"},
            {"optimizer.lr": str(float(lr)), "trainer.epochs": "20"},
            {"final_val_loss": loss, "final_train_loss": loss},
            parent=first,
        )
    client.set_tag(first, "sweep.best_run_id", children["0.5"])
    run("epochs=20", {"outcome": "converged", "overrides": "trainer.epochs=20"},
        metrics={"final_val_loss": 0.2})  # fmt: skip
    second = run("learnai #2: depth=1,2", {"learnai.sweep": "true"})
    for depth, loss in (("1", 0.3), ("2", 0.1)):
        run(f"depth={depth}", {"outcome": "converged", "overrides": f"model.depth={depth}"},
            {"model.depth": depth}, {"final_val_loss": loss}, parent=second)  # fmt: skip
    return uri


def _table(uri: str, capsys: pytest.CaptureFixture[str], *args: str) -> list[list[str]]:
    """``learnai runs``' rows, each as (name, outcome, swept...)."""
    from learnai.commands import runs

    assert runs.main(["--tracking-uri", uri, *args]) == 0
    lines = capsys.readouterr().out.splitlines()
    return [re.split(r"\s{2,}", line.strip()) for line in lines[1:]]


def test_runs_prints_values_as_run_names_do_and_whole_names(runs_store, capsys) -> None:
    rows = _table(runs_store, capsys)
    assert rows[0][0] == LONG_PARENT  # not cut at 50 characters
    swept = {row[0]: row[2] for row in rows if row[0].startswith("lr=")}
    assert swept == {"lr=10": "lr=10", "lr=2": "lr=2", "lr=0.5": "lr=0.5"}  # not lr=10.0


def test_runs_sort_orders_each_sweeps_children_under_their_parent(runs_store, capsys) -> None:
    names = [row[0] for row in _table(runs_store, capsys, "--sort", "lr")]
    assert names[:4] == [LONG_PARENT, "lr=0.5", "lr=2", "lr=10"]  # as numbers, not text
    names = [row[0] for row in _table(runs_store, capsys, "--sort=-val_loss")]
    at = names.index(LONG_PARENT)
    assert names[at : at + 4] == [LONG_PARENT, "lr=10", "lr=2", "lr=0.5"]
    names = [row[0] for row in _table(runs_store, capsys, "--sort", "final_val_loss")]
    # top level: the plain run (0.2) first; the sweeps have no loss of their own: last
    assert names == [
        "epochs=20", LONG_PARENT, "lr=0.5", "lr=2", "lr=10",
        "learnai #2: depth=1,2", "depth=2", "depth=1",
    ]  # fmt: skip
    names = [row[0] for row in _table(runs_store, capsys, "--sort=-start")]
    assert names[0] == "learnai #2: depth=1,2" and names[1:3] == ["depth=2", "depth=1"]


def test_runs_best_shows_each_sweeps_best_run(runs_store, capsys) -> None:
    names = [row[0] for row in _table(runs_store, capsys, "--best")]
    # the first sweep names its best run; the second's is found by its lowest val_loss
    assert names == [LONG_PARENT, "lr=0.5", "learnai #2: depth=1,2", "depth=2"]
    import learnai

    frame = learnai.runs_frame("learnai", runs_store)
    assert sorted(frame[frame["best"]]["name"]) == ["depth=2", "lr=0.5"]


def test_runs_sort_by_an_unknown_key_is_one_line(runs_store, capsys) -> None:
    from learnai.commands import runs

    assert runs.main(["--tracking-uri", runs_store, "--sort", "val_los"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1
    assert err[0].startswith("learnai runs: unknown sort key 'val_los'; did you mean val_loss")
    assert runs.main(["--tracking-uri", runs_store, "--sort", "lrr"]) == 2
    assert "did you mean lr?" in capsys.readouterr().err
