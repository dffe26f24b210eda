"""``learnai --help``: learnai's help template rendered from one composition.

Hydra's own ``--help`` lists every config group, Hydra's included, and copies its whole
config repository for each one: about 1 s of a 1.4 s ``--help`` here (see
experiments/README.md), even though learnai's template (conf/hydra/help/learnai.yaml)
shows only the app's groups and the config. This renders the same template with the same
values: ``$APP_CONFIG_GROUPS`` from the group folders Hydra reads (conf/ and
``--config-dir``), ``$CONFIG`` from the composed config. A template that asks for
anything else (a user's own ``hydra/help`` with ``$FLAGS_HELP`` or
``$HYDRA_CONFIG_GROUPS``) is left to Hydra: :func:`render` returns None.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import TYPE_CHECKING

from learnai.commands.choices import group_options

if TYPE_CHECKING:
    from learnai.sweep.invocation import Invocation

HYDRA_ONLY = ("FLAGS_HELP", "HYDRA_CONFIG_GROUPS")


def render(inv: Invocation, config_dir: str) -> str | None:
    """The help text Hydra would print for this command line, or None to let Hydra."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf, open_dict

    overrides = list(inv.overrides)
    dirs = [Path(config_dir)]
    if inv.config_dir:
        dirs.append(Path(inv.config_dir))
        overrides.append(f"hydra.searchpath=[file://{Path(inv.config_dir).resolve()}]")
    # job_name: what Hydra names the job of learnai.cli's @hydra.main (help templates
    # may show it as ${hydra.job.name})
    try:
        with initialize_config_dir(config_dir=config_dir, version_base="1.3", job_name="cli"):
            cfg = compose(
                inv.config_name or "config", overrides=overrides, return_hydra_config=True
            )
    except Exception:  # a composition error: Hydra's --help reports it its own way
        return None
    template = str(cfg.hydra.help.template)
    if any(f"${name}" in template or f"${{{name}}}" in template for name in HYDRA_ONLY):
        return None
    groups = group_options(dirs)
    app_groups = "".join(
        f"{group}: {', '.join(sorted(options))}\n" for group, options in sorted(groups.items())
    )
    with open_dict(cfg):
        del cfg["hydra"]
    return string.Template(template).substitute(
        APP_CONFIG_GROUPS=app_groups, CONFIG=OmegaConf.to_yaml(cfg, resolve=inv.resolve)
    )
