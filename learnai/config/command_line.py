"""Config group choices and values typed on the command line, checked before Hydra
composes anything.

Hydra answers ``data=nope`` with a multi-line error and a search path listing; learnai
answers with one line naming the value and the options. The options are the YAML files
of each group under ``conf/`` (and under ``--config-dir``), which is what Hydra reads.
A value no run accepts (``optimizer.lr=0``) is refused by the same rule the composed
config meets later (:func:`learnai.config.check_literal`), before Hydra composes the
config twice and makes the run's output folder: a refused command creates nothing.
A key no option holds (``optimizer.lrr=0.1``, ``+optimizer.lrr=0.1``) and a word that is
neither an override nor a command (``learnai runz``) get one line too, with the closest
spellings (:mod:`learnai.config.keys` reads the valid keys without composing).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from pathlib import Path
from typing import Any

from learnai.config import ConfigError, check_literal
from learnai.config.keys import closest, ranked

_CONFIG_DIR_FLAGS = ("--config-dir", "-cd")
_CONFIG_NAME_FLAGS = ("--config-name", "-cn")


def learnai_conf_dir() -> str:
    """``conf/`` of a source checkout (editable install), else the wheel's ``learnai/conf``."""
    package = Path(__file__).resolve().parent.parent
    source = package.parent / "conf"
    if (source / "config.yaml").is_file():
        return str(source)
    return str(package / "conf")


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


# Hydra's flags that take the next word as their value (not an override, not a command)
_VALUE_FLAGS = {
    "--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd", "--cfg", "-c",
    "--package", "-p", "--experimental-rerun",
}  # fmt: skip
_WORD = re.compile(r"[A-Za-z_][\w.-]*")  # what a mistyped command looks like
_INFO_TOPICS = {"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"}


def check_words(argv: list[str], commands: Collection[str]) -> None:
    """Refuse a bare word that is neither a ``key=value`` override nor a subcommand
    (``learnai runz``): Hydra would call it an override missing its ``=``."""
    for i, arg in enumerate(argv):
        before = argv[i - 1] if i else ""
        if not _WORD.fullmatch(arg):
            continue  # an override, a flag, a deletion, a stray fragment: Hydra's to judge
        if before in _VALUE_FLAGS or (before in ("--info", "-i") and arg in _INFO_TOPICS):
            continue
        if arg in commands:
            raise ConfigError(f"{arg!r} is a command: it comes first (learnai {arg} ...)")
        near = closest(arg, sorted(commands))
        hint = f"; did you mean {' or '.join(near)}?" if near else ""
        raise ConfigError(
            f"unknown command {arg!r}{hint} (commands: {', '.join(sorted(commands))}; "
            "or key=value overrides, e.g. optimizer.lr=0.1)"
        )


def bad_option(group: str, value: str, options: set[str]) -> ConfigError:
    near = closest(value, sorted(options))
    hint = f"; did you mean {' or '.join(near)}?" if near else ""
    return ConfigError(
        f"invalid value for {group}: {value!r}{hint} (options: {', '.join(ranked(value, options))})"
    )


def check_command_line(argv: list[str], conf_dir: str, commands: Collection[str] = ()) -> None:
    """Raise :class:`ConfigError` for a group option that does not exist (``optimizer=x``),
    a key no option holds (``optimizer.lrr=0.1``), a value no run accepts
    (``optimizer.lr=0``), a word that names no command (``runz``, when ``commands`` are
    given) or a ``--config-dir`` whose ``config.yaml`` learnai's own would silently
    shadow."""
    if commands:
        check_words(argv, commands)
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
    parsed = []
    for arg in candidates:
        try:
            override = parser.parse_override(arg)
        except Exception:  # not an override Hydra can parse: Hydra reports it
            continue
        parsed.append(override)
        group = override.key_or_group
        if override.is_delete():
            continue
        if group not in options:
            if override.package is None:
                for value in _typed_values(override):
                    check_literal(group, value)
            continue
        for value in _group_values(override):
            if value not in options[group] and value != "null":
                raise bad_option(group, value, options[group])
    _check_keys(parsed, tuple(dirs), _flag_value(argv, _CONFIG_NAME_FLAGS) or "config", options)


def _group_values(override: Any) -> list[str]:
    """The options a group override chooses (each of a sweep's)."""
    if override.is_sweep_override():
        try:
            return [str(v) for v in override.sweep_string_iterator()]
        except Exception:  # interval/range over a group: Hydra reports it
            return []
    value = override.value()
    return [] if value is None else [str(value)]


def _check_keys(
    parsed: list[Any], dirs: tuple[Path, ...], config_name: str, options: dict[str, set[str]]
) -> None:
    """Refuse a value override (``+`` and ``++`` too) whose key the config it would be
    set in does not have: for each option a swept group may take."""
    import itertools

    from learnai.config import keys

    try:
        layout = keys.layout(keys.ConfSource(dirs), config_name)
    except keys.Unreadable:
        return
    typed: dict[str, list[str | None]] = {}
    values = []
    for override in parsed:
        key = override.key_or_group
        if override.package is not None or override.is_delete():
            continue
        if key == "hydra" or key.startswith(("hydra.", "hydra/")):
            continue  # Hydra's own settings: Hydra checks them
        if key in layout.groups:
            chosen = [None if v == "null" else v for v in _group_values(override)]
            typed[key] = chosen or [None]
        elif "/" not in key:
            values.append(override)
    if not values:
        return
    for combo in itertools.islice(itertools.product(*typed.values()), 64):
        choices = dict(zip(typed, combo, strict=True))
        try:
            tree = layout.tree(choices)
        except keys.Unreadable:
            return
        for override in values:
            key = override.key_or_group
            if keys.has_key(tree, key):
                continue
            if (override.is_add() or override.is_force_add()) and _open(layout, choices, key):
                continue  # '+' adds a key to an untyped config, as Hydra does
            raise unknown_key(key, tree, layout, choices, options)


def _open(layout: Any, choices: dict[str, str | None], key: str) -> bool:
    """Whether the group option ``key`` falls in is a plain YAML config without a schema
    (its keys are free); learnai's are typed, and a key they lack fails at construction."""
    from omegaconf import OmegaConf

    from learnai.config import keys

    top, _, rest = key.partition(".")
    option = layout.effective(choices).get(top)
    if not rest or top not in layout.groups or option is None:
        return False
    try:
        node = keys.option_config(layout.source, top, option)
    except keys.Unreadable:
        return False
    return node is not None and OmegaConf.get_type(node) is dict


def unknown_key(
    key: str, tree: dict[str, Any], layout: Any, typed: dict[str, str | None], options: Any
) -> ConfigError:
    """One line for a key the config lacks: the option that has it, else the closest
    spellings, else the keys where it was meant to go."""
    from learnai.config import keys

    top, _, rest = key.partition(".")
    if rest and top in layout.groups:
        current = layout.effective(typed).get(top)
        holders = []
        for option in sorted(options.get(top, ())):
            if option == current:
                continue
            try:
                sub = keys.option_tree(layout.source, top, option)
            except keys.Unreadable:
                continue
            if sub is not None and keys.has_key(sub, rest):
                holders.append(f"{top}={option}")
        if holders:
            return ConfigError(
                f"unknown key {key} for {top}={current}; it exists only with {' or '.join(holders)}"
            )
    parts = key.split(".")
    for n in range(len(parts) - 1, 0, -1):  # the deepest part of the key that exists
        parent = ".".join(parts[:n])
        node: Any = tree
        for part in parts[:n]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            names = [k for k in node if not k.startswith("_")]
            near = closest(".".join(parts[n:]), names)
            if near:
                spelled = " or ".join(f"{parent}.{k}" for k in near)
                return ConfigError(f"unknown key {key}; did you mean {spelled}?")
            return ConfigError(f"unknown key {key} ({parent} has: {', '.join(names)})")
    what = "key" if rest else "key or group"
    same_depth = [k for k in keys.dotted(tree) if k.count(".") == key.count(".")]
    near = closest(key, same_depth + [g for g in layout.groups if g not in tree and not rest])
    if near:
        return ConfigError(f"unknown {what} {key}; did you mean {' or '.join(near)}?")
    names = [k for k in tree if not k.startswith("_")]
    return ConfigError(f"unknown {what} {key} (keys: {', '.join(names)})")
