"""What a multirun is checked against before its parent run exists: the sweep's base
config, every job of a grid, every bound and choice of an Optuna search space.

A bad value found here exits 2 with one line, before any run, study or job exists
(:meth:`learnai.sweep.lifecycle.Sweep.prepare`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from learnai.config import ConfigError, validate, validate_job

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from learnai.sweep.invocation import Invocation


def _is_sweep(override: Any) -> bool:
    return bool(override.is_sweep_override())


def sweep_params(cfg: DictConfig) -> list[str]:
    """The sweeper's ``params`` (a config's own search space) as override strings."""
    return [f"{k}={v}" for k, v in (cfg.hydra.sweeper.get("params") or {}).items()]


def compose_sweep(inv: Invocation, config_dir: str) -> tuple[DictConfig, Any]:
    """The sweep's base config (sweep overrides left out) and Hydra's config loader."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(inv.overrides)
    base = [o.input_line for o in parsed if not _is_sweep(o)]
    if inv.config_dir:
        base.append(f"hydra.searchpath=[file://{Path(inv.config_dir).resolve()}]")
    initialize_config_dir(config_dir=config_dir, version_base="1.3", job_name="learnai")
    cfg = compose(inv.config_name or "config", overrides=base, return_hydra_config=True)
    return cfg, GlobalHydra.instance().config_loader()


def _grid_jobs(cfg: DictConfig, overrides: list[str]) -> list[list[str]]:
    """Every job of a grid sweep: the product of the sweep overrides' values."""
    import itertools

    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = sweep_params(cfg)
    axes: list[list[str]] = []
    fixed: list[str] = []
    for o in OverridesParser.create().parse_overrides(params + overrides):
        if not _is_sweep(o):
            fixed.append(o.input_line)
            continue
        key = o.get_key_element()
        try:
            values = list(o.sweep_string_iterator())
        except Exception as err:  # interval(): nothing to enumerate
            raise ConfigError(f"invalid sweep value for {key}: {o.input_line!r} ({err})") from err
        axes.append([f"{key}={v}" for v in values])
    return [[*fixed, *job] for job in itertools.product(*axes)]


def _validate_optuna(cfg: DictConfig, loader: Any, overrides: list[str]) -> None:
    """The sweeper's settings, and every bound and choice of the search space gives a
    valid learnai config."""
    from hydra_plugins.learnai_optuna_sweeper import search_space, settings

    try:
        settings.check(cfg.hydra.sweeper)
    except settings.SettingsError as err:
        raise ConfigError(str(err)) from err

    params = sweep_params(cfg)
    try:
        space, fixed = search_space.parse(params + overrides)
    except search_space.SearchSpaceError as err:
        raise ConfigError(f"invalid sweep param {err}") from err
    if cfg.hydra.runtime.choices.get("hydra/sweeper/sampler") == "grid":
        try:  # the grid's points: refused here, before the parent run exists
            search_space.grid(params + overrides, space)
        except search_space.SearchSpaceError as err:
            raise ConfigError(f"invalid sweep param {err}") from err
    base = [f"{k}={v}" for k, v in fixed.items()]
    try:
        validate_job(loader, cfg, base)
        for key, dist in space.items():
            for value in search_space.endpoints(dist):
                validate_job(loader, cfg, [*base, f"{key}={value}"])
    except ConfigError as err:
        raise ConfigError(f"{err} [from the sweep's search space]") from err


# Launchers whose jobs may run on other machines, where the launch directory is not.
_REMOTE_LAUNCHERS = ("submitit_", "ray")


def check_artifacts_reach_jobs(cfg: DictConfig) -> None:
    """Refuse jobs that would write their artifacts where no one will find them.

    With a database tracking URI and no server, MLflow writes artifacts straight to the
    experiment's artifact location, and with none given that is a folder under the
    directory that created the experiment. A job on another machine (submitit, Ray)
    writes there on its own disk: the run ends FINISHED, its files lost. A server
    (``http://``) takes the files itself; a SQLite store keeps them beside its file, so
    a job that can reach the store reaches them too.
    """
    launcher = str(cfg.hydra.runtime.choices.get("hydra/launcher") or "basic")
    uri = str(cfg.tracking.uri)
    scheme = uri.split("://", 1)[0].split("+", 1)[0].lower()
    if not launcher.startswith(_REMOTE_LAUNCHERS) or scheme in ("http", "https", "sqlite"):
        return
    if cfg.tracking.get("artifact_location"):
        return  # the user's choice: a shared folder or an object store
    from learnai.secrets import mask_secrets

    raise ConfigError(
        f"invalid value for tracking.artifact_location: None (hydra/launcher={launcher} may "
        f"run jobs on other machines, and with tracking.uri={mask_secrets(uri)}, a database "
        "without a server, each job would write its artifacts to a folder on its own disk: "
        "use a tracking server (tracking.uri=http://...), or set tracking.artifact_location "
        "to storage every job can write)"
    )


def validate_sweep(cfg: DictConfig, loader: Any, sweeper: str, overrides: list[str]) -> None:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    validate(cfg)
    check_artifacts_reach_jobs(cfg)
    if cfg.hydra.runtime.choices.get("hydra/launcher") == "vectorized":
        from hydra_plugins.learnai_vectorized_launcher.vectorized_launcher import check

        reason = check(cfg.hydra.launcher.get("max_group"))
        if reason is not None:
            raise ConfigError(reason)
    # What Hydra hands a sweeper: the task's overrides. Hydra's own (hydra/launcher=ray,
    # +hydra.launcher.ray.init.x=1) are in cfg already and load_sweep_config adds them
    # again; passed twice, a `+` one fails ("An item is already at ...").
    parsed = OverridesParser.create().parse_overrides(overrides)
    overrides = [o.input_line for o in parsed if not o.is_hydra_override()]
    if sweeper == "basic":
        for job in _grid_jobs(cfg, overrides):
            validate_job(loader, cfg, job)
    elif sweeper == "optuna":
        _validate_optuna(cfg, loader, overrides)
    # Other sweepers: each job validates its own config before its run exists.
