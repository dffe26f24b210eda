"""``key=value`` changes to a config a run logged (``learnai rerun RUN_ID key=value``).

A rerun merges its overrides onto the logged ``config.yaml``, not through Hydra, so it
checks them as the command line is checked: a key the config lacks gets the closest
spellings or the option that has it, a group option that does not exist lists the
options. A valid group option (``optimizer=sgd``) replaces that part of the config with
the option's own, as a new run would get it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from learnai.config import keys
from learnai.config.command_line import bad_option, group_options, unknown_key
from learnai.config.rules import ConfigError, check_literal


def _parse(text: str) -> Any:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        override = OverridesParser.create().parse_override(text)
    except Exception:
        raise ConfigError(f"invalid override {text!r} (expected key=value)") from None
    if (
        override.is_sweep_override()
        or override.is_add()
        or override.is_force_add()
        or override.is_delete()
        or override.package is not None
    ):
        raise ConfigError(f"invalid override {text!r} (a rerun takes plain key=value)")
    return override


def _current(cfg: Any, group: str, source: keys.ConfSource, options: set[str]) -> str | None:
    """The option a logged config's group came from, recognised by its ``_target_``."""
    from omegaconf import OmegaConf

    section = cfg.get(group)
    target = section.get("_target_") if OmegaConf.is_dict(section) else None
    if target is None:
        return None
    for option in sorted(options):
        try:
            node = keys.option_config(source, group, option)
        except keys.Unreadable:
            continue
        if node is not None and node.get("_target_") == target:
            return option
    return None


def apply_overrides(cfg: Any, overrides: list[str], conf_dir: str) -> Any:
    """``cfg`` with ``overrides`` applied; :class:`ConfigError` (one line) for a key or
    group option that does not exist, or a value no run accepts."""
    from omegaconf import OmegaConf

    source = keys.ConfSource((Path(conf_dir),))
    options = group_options(list(source.dirs))
    layout = keys.layout(source, "config")
    values = []
    for text in overrides:
        override = _parse(text)
        key = override.key_or_group
        if key not in options:
            values.append(override)
            continue
        option = str(override.value())
        if option not in options[key]:
            raise bad_option(key, option, options[key])
        node = keys.option_config(source, key, option)
        if node is None:
            raise ConfigError(
                f"{text} sets values across the config: a rerun cannot apply it "
                f"(start a new run: learnai {text} ...)"
            )
        cfg[key] = node
    tree = keys.tree_of(cfg)
    current = {g: _current(cfg, g, source, options.get(g, set())) for g in layout.groups}
    for override in values:
        key = override.key_or_group
        if not keys.has_key(tree, key):
            raise unknown_key(key, tree, layout, current, options)
        check_literal(key, override.value())
        OmegaConf.update(cfg, key, override.value(), merge=True)
    return cfg
