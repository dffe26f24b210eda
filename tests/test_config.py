"""The configs users compose: every group option builds, and bad values never start a run.

Composition and refusals run in-process on the configs the CLI ships (``conf/``); the
``e2e`` tests launch ``python -m learnai`` as a user would and check what they see (the
exit code, the one line on stderr, nothing created).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from helpers import inproc
from helpers.cli import run_learnai, run_python
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from learnai.cli import config_dir
from learnai.config import ConfigError, validate
from learnai.config.command_line import check_command_line
from learnai.train.data import Dataset
from learnai.train.models import GeneralFit, LinearRegression

DATA = ["linear", "polynomial", "nonlinear"]
MODELS = ["linear", "mlp"]
OPTIMIZERS = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}
EXPERIMENTS = ["linear_regression", "polynomial_regression", "neural_network"]


def compose_cfg(*overrides: str) -> DictConfig:
    """The config the CLI composes from ``overrides`` alone: the defaults users get."""
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def build(cfg: DictConfig) -> tuple[Dataset, torch.nn.Module, torch.optim.Optimizer]:
    """What the runner builds from a config, the way the runner builds it."""
    data = instantiate(cfg.data)
    model = instantiate(cfg.model, n_in=data.n_features)
    optimizer = instantiate(cfg.optimizer)(model.parameters())
    return data, model, optimizer


# --- composition ------------------------------------------------------------------------


def test_default_config_is_the_tutorial_network() -> None:
    cfg = compose_cfg()
    assert cfg.data._target_ == "learnai.train.data.nonlinear"
    assert cfg.data.n_samples == 1000
    assert cfg.model._target_ == "learnai.train.models.GeneralFit"
    assert cfg.model.depth == 2
    assert cfg.optimizer._target_ == "torch.optim.Adam"
    assert cfg.optimizer.lr == 0.01
    assert cfg.trainer.epochs == 200
    assert cfg.tracking.uri == "sqlite:///mlruns/mlflow.db"
    validate(cfg)

    data, model, optimizer = build(cfg)
    assert data.n_features == 1
    assert isinstance(model, GeneralFit)
    # depth 2 = the tutorial's three linear layers, ReLU after the first two
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 3
    assert isinstance(optimizer, torch.optim.Adam)
    assert optimizer.defaults["lr"] == 0.01


# Every data set with every model (a model's inputs are the data's features); each
# optimizer with every data set and every model.
PAIRWISE = [
    (data, model, list(OPTIMIZERS)[(i + j) % 2])
    for i, data in enumerate(DATA)
    for j, model in enumerate(MODELS)
]


@pytest.mark.parametrize(("data_name", "model_name", "opt_name"), PAIRWISE)
def test_every_group_option_composes_and_instantiates(
    data_name: str, model_name: str, opt_name: str
) -> None:
    cfg = compose_cfg(f"data={data_name}", f"model={model_name}", f"optimizer={opt_name}")
    validate(cfg)
    data, model, optimizer = build(cfg)

    n = data.x_train.shape[0] + data.x_val.shape[0]
    assert n == cfg.data.n_samples
    assert data.y_train.shape == (data.x_train.shape[0], 1)
    assert data.y_val.shape == (data.x_val.shape[0], 1)
    assert data.x_train.dtype == torch.float32

    expected_model = {"linear": LinearRegression, "mlp": GeneralFit}[model_name]
    assert isinstance(model, expected_model)
    with torch.no_grad():
        out = model(data.x_val)
    assert out.shape == (data.x_val.shape[0], 1)

    assert isinstance(optimizer, OPTIMIZERS[opt_name])
    assert optimizer.defaults["lr"] == cfg.optimizer.lr
    assert len(optimizer.param_groups[0]["params"]) == len(list(model.parameters()))


@pytest.mark.parametrize(
    ("data_name", "n_samples", "n_features"),
    [("linear", 10_000, 1), ("polynomial", 1_000, 2), ("nonlinear", 1_000, 1)],
)
def test_data_shapes_follow_the_tutorial(data_name: str, n_samples: int, n_features: int) -> None:
    cfg = compose_cfg(f"data={data_name}")
    assert cfg.data.n_samples == n_samples
    data = instantiate(cfg.data)
    assert data.n_features == n_features
    assert data.x_train.shape[1] == data.x_val.shape[1] == n_features
    assert data.x_train.shape[0] + data.x_val.shape[0] == n_samples
    assert data.feature_names[0] == "x"


def test_polynomial_features_are_x_and_x_squared() -> None:
    data = instantiate(compose_cfg("data=polynomial").data)
    assert data.feature_names == ["x", "x^2"]
    for x in (data.x_train, data.x_val, data.grid_features):
        torch.testing.assert_close(x[:, 1], x[:, 0] ** 2)


@pytest.mark.parametrize(
    ("experiment", "data_target", "model_cls", "lr", "epochs", "n_samples"),
    [
        ("linear_regression", "learnai.train.data.linear", LinearRegression, None, 100, 10_000),
        (
            "polynomial_regression",
            "learnai.train.data.polynomial",
            LinearRegression,
            None,
            None,
            1_000,
        ),
        ("neural_network", "learnai.train.data.nonlinear", GeneralFit, 0.01, 200, 1_000),
    ],
)
def test_experiments_compose_and_instantiate(
    experiment: str,
    data_target: str,
    model_cls: type,
    lr: float | None,
    epochs: int | None,
    n_samples: int,
) -> None:
    """Pinned values are the tutorial's; None where the tutorial leaves it to us."""
    cfg = compose_cfg(f"experiment={experiment}")
    validate(cfg)
    assert cfg.data._target_ == data_target
    assert cfg.data.n_samples == n_samples
    if lr is not None:
        assert cfg.optimizer.lr == lr
    if epochs is not None:
        assert cfg.trainer.epochs == epochs
    assert cfg.tracking.experiment == experiment
    data, model, optimizer = build(cfg)
    assert isinstance(model, model_cls)
    assert isinstance(optimizer, torch.optim.Adam)
    assert model(data.x_val).shape == (data.x_val.shape[0], 1)


def test_experiment_values_can_still_be_overridden() -> None:
    cfg = compose_cfg("experiment=linear_regression", "optimizer=sgd", "optimizer.lr=0.5")
    assert cfg.optimizer._target_ == "torch.optim.SGD"
    assert cfg.optimizer.lr == 0.5
    assert cfg.trainer.epochs == 100


def test_composed_config_round_trips_through_yaml() -> None:
    """What a run stores as config.yaml loads back to the same values."""
    cfg = compose_cfg("experiment=polynomial_regression")
    back = OmegaConf.create(OmegaConf.to_yaml(cfg, resolve=True))
    assert OmegaConf.to_container(back) == OmegaConf.to_container(cfg, resolve=True)


# --- validation, in-process: keys the CLI table below does not cover -------------------


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("optimizer.momentum=1.0", "optimizer.momentum"),
        ("data.val_fraction=0", "data.val_fraction"),
        ("data.noise=-0.1", "data.noise"),
        ("trainer.sync_every=0", "trainer.sync_every"),
        ("trainer.animation.frames=0", "trainer.animation.frames"),
        ("trainer.animation.after_divergence=-1", "trainer.animation.after_divergence"),
        ("tracking.uri=mlruns", "tracking.uri"),
        ("tracking.experiment=''", "tracking.experiment"),
        ("data.seed=-1", "data.seed"),
        ("trainer.seed=-1", "trainer.seed"),
        ("optimizer.weight_decay=-1", "optimizer.weight_decay"),
        ("trainer.converged_r2=nan", "trainer.converged_r2"),
    ],
)
def test_validate_names_key_and_value(override: str, key: str) -> None:
    overrides = [override]
    if override.startswith("optimizer.momentum"):
        overrides.insert(0, "optimizer=sgd")
    cfg = compose_cfg(*overrides)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate(cfg)


# --- bad input never starts a run ------------------------------------------------------

BAD_INPUT = [
    # (override, the key or group the message must name, the bad value it must show)
    ("optimizer.lr=0", "optimizer.lr", "0"),
    ("optimizer.lr=-1", "optimizer.lr", "-1"),
    ("optimizer.lr=nan", "optimizer.lr", "nan"),
    ("optimizer.lr=inf", "optimizer.lr", "inf"),
    ("trainer.epochs=0", "trainer.epochs", "0"),
    ("model.depth=-1", "model.depth", "-1"),
    ("model.hidden=0", "model.hidden", "0"),
    ("data.n_samples=1", "data.n_samples", "1"),
    ("model=nope", "model", "nope"),
    ("trainer.device=cuda", "trainer.device", "cuda"),  # on a machine without CUDA
    ("trainer.device=gpu", "trainer.device", "gpu"),
]


def names_key_and_value(text: str, key: str, value: str) -> bool:
    """Some line names ``key`` and then shows ``value`` as a token of its own."""
    pattern = re.compile(rf"{re.escape(key)}\W.*?(?<![\w.-]){re.escape(value)}(?!\w)")
    return any(pattern.search(line) for line in text.splitlines())


def refusal(tmp_path: Path, *overrides: str) -> str:
    """What learnai says refusing ``overrides``, checked in the CLI's order: the command
    line, then the composed config, its stores and the machine, before any run."""
    with pytest.raises(ConfigError) as err:
        check_command_line(list(overrides), config_dir())
        inproc.run(tmp_path, *overrides, new_store=False)
    assert not (tmp_path / "mlruns").exists(), "a refused config created an MLflow store"
    return str(err.value)


@pytest.mark.parametrize(("override", "key", "value"), BAD_INPUT)
def test_bad_input_is_refused_naming_key_and_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, override: str, key: str, value: str
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    message = refusal(tmp_path, override)
    assert names_key_and_value(message, key, value), f"{message!r} does not name {key} = {value}"


@pytest.mark.parametrize("device", ["cuda:1", "cuda:abc", "cuda:-1", "cuda:"])
def test_bad_cuda_index_is_refused_on_a_one_gpu_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, device: str
) -> None:
    """cuda:1 passes the CPU-only check on a GPU machine: the GPU count refuses it."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    message = refusal(tmp_path, f"trainer.device={device}")
    assert names_key_and_value(message, "trainer.device", device), message


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("override", "key", "value"),
    [
        ("model=nope", "model", "nope"),  # a group option, refused before Hydra
        ("trainer.epochs=abc", "trainer.epochs", "abc"),  # a type only Hydra judges
    ],
)
def test_bad_input_exits_cleanly_without_a_run(
    tmp_path: Path, override: str, key: str, value: str
) -> None:
    proc = run_learnai(tmp_path, override, expect=None)
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert names_key_and_value(proc.stderr, key, value), (
        f"stderr does not name {key} = {value}:\n{proc.stderr}"
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "mlruns").exists(), "a bad config created an MLflow store"


# A value the job itself refuses (the machine has no such GPU) ends the command the same
# way. The subprocess pretends to have one GPU so this runs the same on any machine.
PRETEND_ONE_GPU = """
import sys, torch
torch.cuda.is_available = lambda: True
torch.cuda.device_count = lambda: 1
sys.argv = ["learnai", *sys.argv[1:]]
from learnai.cli import main
main()
"""


@pytest.mark.e2e
def test_a_missing_gpu_is_one_line_and_exit_2_on_a_gpu_machine(tmp_path: Path) -> None:
    proc = run_python(tmp_path, "-c", PRETEND_ONE_GPU, "trainer.device=cuda:1")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "learnai: invalid value for trainer.device: 'cuda:1' (only 1 CUDA devices)"
    ), proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "mlruns").exists()


@pytest.mark.e2e
def test_a_typed_bad_value_is_refused_before_hydra_makes_anything(tmp_path: Path) -> None:
    """No output folder, no store: the value is judged before Hydra composes."""
    for argv in (["optimizer.lr=0"], ["-m", "optimizer.lr=0.01,0"]):
        proc = run_learnai(tmp_path, *argv, expect=2)
        assert proc.stderr.strip().splitlines() == [
            "learnai: invalid value for optimizer.lr: 0 (must be a finite number > 0)"
        ]
        assert sorted(p.name for p in tmp_path.iterdir()) == [], list(tmp_path.iterdir())


def test_a_bad_value_only_composition_shows_is_still_refused(tmp_path: Path) -> None:
    """Each value passes on its own; together they leave no validation sample."""
    message = refusal(tmp_path, "data.n_samples=10", "data.val_fraction=0.01")
    assert message.startswith("invalid value for data.val_fraction: 0.01 (leaves 0 of 10 samples")


def test_the_memory_check_reads_a_model_of_your_own_with_a_width_and_no_depth() -> None:
    """A plugged-in model with ``hidden`` and no ``depth`` is estimated as one hidden
    layer, not refused with a traceback; a width that cannot fit names its key."""
    from learnai.train.resources import check_resources, estimate_bytes

    cfg = OmegaConf.create(
        {
            "data": {"_target_": "learnai.train.data.nonlinear", "n_samples": 1000,
                     "val_fraction": 0.2},
            "model": {"_target_": "mymodels.Wide", "hidden": 256},
            "trainer": {"epochs": 10, "animation": {"enabled": False}},
        }
    )  # fmt: skip
    one_layer = estimate_bytes(cfg)["training"]
    cfg.model.depth = 2
    assert estimate_bytes(cfg)["training"] > one_layer > 0
    del cfg.model["depth"]
    check_resources(cfg)  # fits: no error
    cfg.data.n_samples = 10**10
    with pytest.raises(ConfigError, match=r"data\.n_samples"):
        check_resources(cfg)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("data.n_samples=100000000", "data.n_samples"),
        ("model.hidden=10000000", "model.hidden"),
        ("trainer.animation.frames=1000000", "trainer.animation.frames"),
    ],
)
def test_a_run_too_big_for_memory_names_the_value_that_makes_it_big(
    tmp_path: Path, override: str, key: str
) -> None:
    from learnai.train.resources import check_resources

    cfg = inproc.compose(tmp_path, override, "trainer.epochs=1000000")
    with pytest.raises(ConfigError, match=rf"invalid value for {re.escape(key)}: "):
        check_resources(cfg)
