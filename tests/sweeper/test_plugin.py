"""The plugin as Hydra sees it: discovery, registered configs, every documented sampler
and its keys. In-process: configs are composed with Hydra's compose API, samplers built
and run on a toy objective; only the import checks start a fresh Python (e2e)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import optuna
import pytest
from helpers.cli import run_python
from hydra import compose, initialize_config_dir
from sweeper_helpers import APPS

from hydra_plugins.learnai_optuna_sweeper import factory

# pyproject ignores DeprecationWarning; the sweeper and its API must not raise any.
pytestmark = pytest.mark.filterwarnings("error::DeprecationWarning")

TARGET = "hydra_plugins.learnai_optuna_sweeper.optuna_sweeper.OptunaSweeper"
FACTORY_LOG = "hydra_plugins.learnai_optuna_sweeper.factory"


def test_hydra_discovers_the_optuna_sweeper() -> None:
    from hydra.core.plugins import Plugins
    from hydra.plugins.sweeper import Sweeper

    # Hydra's scan loads plugin modules apart from sys.modules: compare names, not classes.
    found = {f"{c.__module__}.{c.__qualname__}" for c in Plugins.instance().discover(Sweeper)}
    assert TARGET in found


def test_config_store_has_the_published_groups_and_more() -> None:
    from hydra.core.config_store import ConfigStore
    from hydra.core.plugins import Plugins
    from hydra.plugins.sweeper import Sweeper

    Plugins.instance().discover(Sweeper)  # the plugin scan registers the configs
    cs = ConfigStore.instance()
    assert "optuna.yaml" in cs.list("hydra/sweeper")
    published = {"tpe", "random", "cmaes", "nsgaii", "motpe", "grid"}
    assert {f"{s}.yaml" for s in (*published, "qmc", "gp")} <= set(cs.list("hydra/sweeper/sampler"))
    assert {"none.yaml", "median.yaml", "hyperband.yaml"} <= set(cs.list("hydra/sweeper/pruner"))


def sweeper_cfg(*overrides: str, config: str = "sphere"):
    with initialize_config_dir(config_dir=str(APPS / "conf"), version_base=None):
        return compose(config, overrides=list(overrides), return_hydra_config=True).hydra.sweeper


def test_defaults_are_the_published_plugins() -> None:
    cfg = sweeper_cfg(config="minimal")  # selects hydra/sweeper=optuna, sets nothing
    assert cfg._target_ == TARGET
    assert cfg.sampler._target_ == "optuna.samplers.TPESampler"
    assert (cfg.direction, cfg.storage, cfg.study_name) == ("minimize", None, None)
    assert (cfg.n_trials, cfg.n_jobs, cfg.max_failure_rate) == (20, 2, 0.0)
    assert (cfg.search_space, cfg.custom_search_space) == (None, None)
    # the extras are off by default
    assert cfg.pruner._target_ == "optuna.pruners.NopPruner"
    assert (cfg.non_finite, cfg.reseed_on_resume, cfg.heartbeat_interval) == (
        "optuna",
        False,
        None,
    )


def test_a_list_of_directions_composes() -> None:
    cfg = sweeper_cfg("hydra.sweeper.direction=[minimize,maximize]")
    assert list(cfg.direction) == ["minimize", "maximize"]


@pytest.mark.parametrize("prefix", ["", "++"])
def test_params_compose_from_the_command_line(prefix: str) -> None:
    """docs/sweeps.md: ``hydra.sweeper.params={...}`` composes (it did not in 1.3.0),
    and so does ``++``, where the app's config sets no params at all."""
    sweep = "tag(log, interval(1e-3, 1e-1))"
    cfg = sweeper_cfg(f'{prefix}hydra.sweeper.params={{optimizer.lr: "{sweep}"}}', config="minimal")
    assert dict(cfg.params) == {"optimizer.lr": sweep}


def python_prints(tmp_path: Path, code: str) -> str:
    """What a fresh ``python -c code`` prints: this process has imported everything."""
    proc = run_python(tmp_path, "-c", code, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.mark.e2e
def test_plugin_scan_does_not_import_heavy_modules(tmp_path: Path) -> None:
    """Hydra imports every plugin module on each start: Optuna and torch must wait."""
    code = (
        "import sys\n"
        "from hydra.core.plugins import Plugins\n"
        "from hydra.plugins.sweeper import Sweeper\n"
        "names = [c.__name__ for c in Plugins.instance().discover(Sweeper)]\n"
        "assert 'OptunaSweeper' in names, names\n"
        "heavy = ['optuna', 'torch', 'mlflow', 'learnai']\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    assert python_prints(tmp_path, code) == "[]"


@pytest.mark.e2e
def test_plugin_imports_no_learnai_app_module(tmp_path: Path) -> None:
    """The sweeper works for any app: importing it loads no learnai module."""
    code = (
        "import sys, hydra_plugins.learnai_optuna_sweeper._impl\n"
        "print(sorted(m for m in sys.modules if m.startswith('learnai')))\n"
    )
    assert python_prints(tmp_path, code) == "[]"


# Every key of the published sampler configs, set to a value other than its default.
PUBLISHED_KEYS = {
    "tpe": [
        "seed=1",
        "consider_prior=true",
        "prior_weight=0.5",
        "consider_magic_clip=false",
        "consider_endpoints=true",
        "n_startup_trials=2",
        "n_ei_candidates=12",
        "multivariate=true",
        "warn_independent_sampling=false",
    ],
    "random": ["seed=1"],
    "cmaes": [
        "seed=1",
        "+x0={x: 0.5}",
        "sigma0=0.3",
        "warn_independent_sampling=false",
        "consider_pruned_trials=true",
        "restart_strategy=ipop",
        "inc_popsize=3",
        "source_trials=null",
        "independent_sampler={_target_: optuna.samplers.RandomSampler, seed: 2}",
    ],
    "nsgaii": [
        "seed=1",
        "population_size=4",
        "mutation_prob=0.1",
        "crossover_prob=0.8",
        "swapping_prob=0.4",
        "constraints_func=null",
    ],
    "motpe": [
        "seed=1",
        "consider_prior=true",
        "prior_weight=0.5",
        "consider_magic_clip=false",
        "consider_endpoints=true",
        "n_startup_trials=2",
        "n_ehvi_candidates=12",
    ],
    "qmc": ["seed=1", "qmc_type=halton", "scramble=true"],
    "gp": ["seed=1", "n_startup_trials=2", "deterministic_objective=true"],
}
EXPECTED_CLASS = {
    "tpe": optuna.samplers.TPESampler,
    "random": optuna.samplers.RandomSampler,
    "cmaes": optuna.samplers.CmaEsSampler,
    "nsgaii": optuna.samplers.NSGAIISampler,
    "motpe": optuna.samplers.TPESampler,  # MOTPESampler is gone from Optuna 4
    "qmc": optuna.samplers.QMCSampler,
    "gp": optuna.samplers.GPSampler,
}


def _key(setting: str) -> str:
    return setting.lstrip("+").split("=", 1)[0]


@pytest.mark.parametrize("name", list(PUBLISHED_KEYS))
def test_every_documented_sampler_key_composes_builds_and_samples(name, caplog) -> None:
    keys = [
        f"{'+' if s.startswith('+') else ''}hydra.sweeper.sampler.{s.lstrip('+')}"
        for s in PUBLISHED_KEYS[name]
    ]
    # x0 has no default in the published config either: 1.3 typed it Optional[Dict]
    keys = [k.replace("+hydra.sweeper.sampler.x0", "hydra.sweeper.sampler.x0") for k in keys]
    cfg = sweeper_cfg(f"hydra/sweeper/sampler={name}", *keys)
    for setting in PUBLISHED_KEYS[name]:
        assert _key(setting) in cfg.sampler, f"{name}: no key {_key(setting)}"
    with caplog.at_level(logging.WARNING, logger=FACTORY_LOG):
        sampler = factory.build(cfg.sampler, "hydra.sweeper.sampler")
    assert type(sampler) is EXPECTED_CLASS[name]
    directions = ["minimize", "minimize"] if name in ("nsgaii", "motpe") else ["minimize"]
    study = optuna.create_study(sampler=sampler, directions=directions)

    def objective(trial: optuna.Trial):
        x = trial.suggest_float("x", -1, 1)
        return (x**2, (x - 1) ** 2) if len(directions) == 2 else x**2

    study.optimize(objective, n_trials=5)
    assert len(study.trials) == 5
    assert all(-1 <= t.params["x"] <= 1 for t in study.trials)


@pytest.mark.parametrize(
    ("name", "setting", "message"),
    [
        ("tpe", "consider_prior=true", "`consider_prior` has been deprecated in v4.3.0"),
        ("tpe", "prior_weight=0.5", "`prior_weight` has been deprecated"),
        ("tpe", "consider_magic_clip=false", "`consider_magic_clip` has been deprecated"),
        ("tpe", "consider_endpoints=true", "`consider_endpoints` has been deprecated"),
        ("tpe", "warn_independent_sampling=false", "`warn_independent_sampling` has been"),
        ("cmaes", "restart_strategy=ipop", "`restart_strategy` has been deprecated"),
        ("motpe", "seed=1", "MOTPESampler was removed in Optuna 4.0"),
    ],
)
def test_keys_current_optuna_deprecated_get_one_clear_line(name, setting, message, caplog):
    cfg = sweeper_cfg(f"hydra/sweeper/sampler={name}", f"hydra.sweeper.sampler.{setting}")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Optuna's FutureWarning becomes our log line
        with caplog.at_level(logging.WARNING, logger=FACTORY_LOG):
            factory.build(cfg.sampler, "hydra.sweeper.sampler")
    lines = [r.getMessage() for r in caplog.records if r.name == FACTORY_LOG]
    assert any(line.startswith("hydra.sweeper.sampler: ") and message in line for line in lines)


def test_a_key_optuna_dropped_is_ignored_with_a_line(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger=FACTORY_LOG):
        sampler = factory.build(
            {"_target_": "optuna.samplers.RandomSampler", "seed": 1, "n_ehvi_candidates": 3},
            "hydra.sweeper.sampler",
        )
    assert isinstance(sampler, optuna.samplers.RandomSampler)
    (line,) = [r.getMessage() for r in caplog.records if r.name == FACTORY_LOG]
    assert line.startswith("hydra.sweeper.sampler.n_ehvi_candidates=3: RandomSampler in Optuna")
    assert line.endswith("ignored")


@pytest.mark.parametrize("name", [*PUBLISHED_KEYS, "grid"])
def test_default_sampler_configs_raise_no_deprecation(name) -> None:
    cfg = sweeper_cfg(f"hydra/sweeper/sampler={name}")
    if name == "grid":
        assert cfg.sampler._partial_ is True  # the points come from the search space
        return
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        warnings.simplefilter("error", FutureWarning)
        factory.build(cfg.sampler, "hydra.sweeper.sampler")


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("none", optuna.pruners.NopPruner),
        ("median", optuna.pruners.MedianPruner),
        ("hyperband", optuna.pruners.HyperbandPruner),
        ("successive_halving", optuna.pruners.SuccessiveHalvingPruner),
    ],
)
def test_pruners_build(name, cls) -> None:
    cfg = sweeper_cfg(f"hydra/sweeper/pruner={name}")
    assert type(factory.build(cfg.pruner, "hydra.sweeper.pruner")) is cls
