"""Config group choices and values typed on the command line, checked before Hydra
composes anything.

Hydra answers ``data=nope`` with a multi-line error and a search path listing; learnai
answers with one line naming the value and the options. The options are the YAML files
of each group under ``conf/`` (and under ``--config-dir``), which is what Hydra reads.
A value no run accepts (``optimizer.lr=0``) is refused by the same rule the composed
config meets later (:func:`learnai.config.check_literal`), before Hydra composes the
config twice and makes the run's output folder: a refused command creates nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from learnai.config import ConfigError, check_literal

_CONFIG_DIR_FLAGS = ("--config-dir", "-cd")
_CONFIG_NAME_FLAGS = ("--config-name", "-cn")


def _flag_value(argv: list[str], flags: tuple[str, ...]) -> str | None:
    for i, arg in enumerate(argv):
        for flag in flags:
            if arg == flag and i + 1 < len(argv):
                return argv[i + 1]
            if arg.startswith(flag + "="):
                return arg.split("=", 1)[1]
    return None


def group_options(conf_dirs: list[Path]) -> dict[str, set[str]]:
    """``{"data": {"linear", ...}, ...}``: each group directory's YAML names (not hydra/)."""
    groups: dict[str, set[str]] = {}
    for conf in conf_dirs:
        if not conf.is_dir():
            continue
        for group in conf.iterdir():
            if not group.is_dir() or group.name == "hydra" or group.name.startswith(("_", ".")):
                continue
            names = {str(p.relative_to(group).with_suffix("")) for p in group.rglob("*.yaml")}
            groups.setdefault(group.name, set()).update(names)
    return groups


def _typed_values(override: Any) -> list[Any]:
    """The values an override sets: one, or each of a choice sweep's (``lr=0.01,1``);
    none for ranges, intervals and what Hydra cannot expand (Hydra reports it)."""
    if not override.is_sweep_override():
        return [override.value()]
    if not override.is_choice_sweep():
        return []
    try:
        return list(override.sweep_iterator())
    except Exception:
        return []


def check_command_line(argv: list[str], conf_dir: str) -> None:
    """Raise :class:`ConfigError` for a group option that does not exist (``optimizer=x``),
    a value no run accepts (``optimizer.lr=0``), or a ``--config-dir`` whose
    ``config.yaml`` learnai's own would silently shadow."""
    extra = _flag_value(argv, _CONFIG_DIR_FLAGS)
    if (
        extra is not None
        and _flag_value(argv, _CONFIG_NAME_FLAGS) is None
        and (Path(extra) / "config.yaml").is_file()
    ):
        raise ConfigError(
            f"invalid value for --config-dir: {extra!r} (its config.yaml is shadowed by "
            "learnai's own; re-run a logged config with `learnai rerun RUN_ID` or "
            "`learnai rerun PATH/config.yaml`)"
        )
    candidates = [a for a in argv if "=" in a and not a.startswith("-")]
    if not candidates:
        return
    from hydra.core.override_parser.overrides_parser import OverridesParser

    dirs = [Path(conf_dir)] + ([Path(extra)] if extra else [])
    options = group_options(dirs)
    parser = OverridesParser.create()
    for arg in candidates:
        try:
            override = parser.parse_override(arg)
        except Exception:  # not an override Hydra can parse: Hydra reports it
            continue
        group = override.key_or_group
        if override.is_delete():
            continue
        if group not in options:
            if override.package is None:
                for value in _typed_values(override):
                    check_literal(group, value)
            continue
        if override.is_sweep_override():
            try:
                values = [str(v) for v in override.sweep_string_iterator()]
            except Exception:  # interval/range over a group: Hydra reports it
                continue
        else:
            value = override.value()
            values = [] if value is None else [str(value)]
        for value in values:
            if value not in options[group] and value != "null":
                raise ConfigError(
                    f"invalid value for {group}: {value!r} "
                    f"(options: {', '.join(sorted(options[group]))})"
                )
