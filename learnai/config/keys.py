"""The keys a command line may set, read from ``conf/`` and the schemas without composing.

Hydra answers a mistyped key (``optimizer.lrr=0.1``) with a six-line block advising
``+optimizer.lrr=0.1``, advice that ends in a TypeError from the optimizer. Composing
the config to find the valid keys costs Hydra a second or more (plugin discovery, two
passes); reading the few YAML files and structured schemas the primary config names
costs milliseconds, so a typo is refused before anything is created.

The tree is built only as far as it can be read with certainty: a defaults entry this
module does not understand (a package override, an interpolated choice) makes
:class:`Unreadable` be raised, and Hydra judges the command line as before.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class Unreadable(Exception):
    """A config this module cannot read with certainty: leave the judging to Hydra."""


@dataclass(frozen=True)
class ConfSource:
    """Where group options live: ``conf/`` plus an optional ``--config-dir``."""

    dirs: tuple[Path, ...]

    def option_file(self, group: str, option: str) -> Path | None:
        for conf in reversed(self.dirs):  # --config-dir wins, as in Hydra's search path
            path = conf / group / f"{option}.yaml"
            if path.is_file():
                return path
        return None

    def primary(self, name: str) -> Path | None:
        for conf in reversed(self.dirs):
            path = conf / f"{name}.yaml"
            if path.is_file():
                return path
        return None


def _schema(name: str) -> Any:
    """A structured config registered in Hydra's ConfigStore (``/adam_schema``)."""
    from hydra.core.config_store import ConfigStore

    try:
        return ConfigStore.instance().load(f"{name.lstrip('/')}.yaml").node
    except Exception as err:
        raise Unreadable(name) from err


def _schema_keys(name: str) -> dict[str, Any]:
    return tree_of(_schema(name))


def _merge(into: dict[str, Any], more: dict[str, Any]) -> None:
    for key, sub in more.items():
        if isinstance(sub, dict) and isinstance(into.get(key), dict):
            _merge(into[key], sub)
        else:
            into[key] = sub


def _load_yaml(path: Path) -> tuple[dict[str, Any], list[Any], bool]:
    """A YAML config's own values, its defaults list and whether it is ``_global_``."""
    from omegaconf import OmegaConf

    try:
        text = path.read_text()
        own = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    except Exception as err:  # unreadable YAML: Hydra's to report, in its words
        raise Unreadable(str(path)) from err
    if not isinstance(own, dict):
        raise Unreadable(str(path))
    defaults = own.pop("defaults", [])
    is_global = any(
        line.strip().startswith("# @package") and "_global_" in line
        for line in text.splitlines()[:5]
    )
    return own, list(defaults or []), is_global


def _keys_of(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _keys_of(v) if isinstance(v, dict) else None for k, v in values.items()}


def option_config(source: ConfSource, group: str, option: str) -> Any:
    """One group option's config as Hydra would place it under ``group``: its schemas
    merged with its own values (a DictConfig); None for a ``_global_`` option (an
    experiment), which sets values elsewhere and adds no keys."""
    from omegaconf import OmegaConf

    path = source.option_file(group, option)
    if path is None:
        raise Unreadable(f"{group}/{option}")
    own, defaults, is_global = _load_yaml(path)
    if is_global:
        return None
    parts = []
    for entry in defaults:
        if entry == "_self_":
            continue
        if not (isinstance(entry, str) and entry.startswith("/")):
            raise Unreadable(f"{group}/{option}: defaults entry {entry!r}")
        parts.append(_schema(entry))
    try:
        return OmegaConf.merge(*parts, own)
    except Exception as err:  # a value its schema refuses: Hydra's to report
        raise Unreadable(f"{group}/{option}") from err


def option_tree(source: ConfSource, group: str, option: str) -> dict[str, Any] | None:
    """The keys one group option holds; None for a ``_global_`` option."""
    node = option_config(source, group, option)
    return None if node is None else tree_of(node)


def tree_of(node: Any) -> dict[str, Any]:
    """``{key: subtree}`` of a DictConfig, a leaf's subtree None (missing values too)."""
    from omegaconf import OmegaConf

    values = OmegaConf.to_container(node, resolve=False, throw_on_missing=False)
    return _keys_of(values) if isinstance(values, dict) else {}


@dataclass
class Layout:
    """The primary config's groups and their default options, and the key trees they make."""

    source: ConfSource
    groups: list[str]  # config groups the primary config places under their own key
    choices: dict[str, str | None]  # the defaults list's options
    base: dict[str, Any]  # keys of the primary config and its schemas, groups not filled

    def effective(self, typed: dict[str, str | None]) -> dict[str, str | None]:
        """Each group's option: the defaults, then what a chosen experiment overrides,
        then what the command line typed (Hydra's order of precedence)."""
        choices = dict(self.choices)
        for group in self.groups:
            option = typed.get(group, self.choices.get(group))
            if option is not None:
                overrides = experiment_choices(self.source, group, option)
                choices.update({g: o for g, o in overrides.items() if g in self.groups})
        choices.update(typed)
        return choices

    def tree(self, typed: dict[str, str | None]) -> dict[str, Any]:
        """The full key tree for the options ``typed`` on the command line."""
        import copy

        tree = copy.deepcopy(self.base)
        for group, option in self.effective(typed).items():
            sub = None if option is None else option_tree(self.source, group, option)
            if sub is not None:
                tree[group] = sub
        return tree


def layout(source: ConfSource, config_name: str) -> Layout:
    """Read the primary config's defaults list (:class:`Unreadable` when unsure)."""
    from learnai.config.schema import register_configs

    register_configs()  # the schemas conf/ extends (idempotent; cli.py registers them too)
    path = source.primary(config_name)
    if path is None:
        raise Unreadable(config_name)
    own, defaults, _ = _load_yaml(path)
    own.pop("hydra", None)
    base: dict[str, Any] = {}
    groups: list[str] = []
    choices: dict[str, str | None] = {}
    for entry in defaults:
        if entry == "_self_":
            continue
        if isinstance(entry, str):
            _merge(base, _schema_keys(entry))
            continue
        if not isinstance(entry, dict) or len(entry) != 1:
            raise Unreadable(f"defaults entry {entry!r}")
        ((key, value),) = entry.items()
        if key.startswith("override ") or key.startswith("hydra/"):
            continue
        if key.startswith("optional "):
            continue  # optional groups add no keys a user types (the sweep's link)
        if "@" in key or "/" in key or (value is not None and not isinstance(value, str)):
            raise Unreadable(f"defaults entry {entry!r}")
        groups.append(key)
        choices[key] = value
    _merge(base, _keys_of(own))
    return Layout(source, groups, choices, base)


def experiment_choices(source: ConfSource, group: str, option: str) -> dict[str, str]:
    """The group options a ``_global_`` option (an experiment) overrides."""
    path = source.option_file(group, option)
    if path is None:
        return {}
    _, defaults, is_global = _load_yaml(path)
    if not is_global:
        return {}
    out: dict[str, str] = {}
    for entry in defaults:
        if isinstance(entry, dict) and len(entry) == 1:
            ((key, value),) = entry.items()
            if key.startswith("override /") and isinstance(value, str):
                out[key.removeprefix("override /")] = value
    return out


def has_key(tree: dict[str, Any], key: str) -> bool:
    node: Any = tree
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def dotted(tree: dict[str, Any], prefix: str = "") -> list[str]:
    """Every key of the tree, interior ones too: ``trainer``, ``trainer.animation.fps``."""
    out = []
    for key, sub in tree.items():
        if key.startswith("_"):
            continue  # _target_, _partial_: Hydra's, not the user's
        path = f"{prefix}{key}"
        out.append(path)
        if isinstance(sub, dict):
            out += dotted(sub, path + ".")
    return out


def closest(word: str, candidates: list[str], n: int = 3) -> list[str]:
    """The spellings nearest ``word`` (difflib's ratio), the closest first."""
    return difflib.get_close_matches(word, candidates, n=n, cutoff=0.6)


def ranked(word: str, candidates: Iterable[str]) -> list[str]:
    """All ``candidates``: the close spellings of ``word`` first (closest first), then
    the rest in alphabetical order."""
    names = sorted(candidates)
    near = closest(word, names, n=len(names))
    return near + [c for c in names if c not in near]
