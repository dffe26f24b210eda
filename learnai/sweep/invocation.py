"""What the user asked Hydra for, read from the command line before Hydra starts.

learnai's entry point owns a multirun's parent run, so it needs to know, before
``hydra.main`` runs, whether this command is a multirun and with which overrides. The
flags mirror Hydra's own command line (``python -m learnai --hydra-help``); anything that
only asks Hydra a question (``--cfg``, ``--info``, ``--help``...) is left to Hydra alone.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass


@dataclass
class Invocation:
    overrides: list[str]
    multirun: bool
    config_dir: str | None = None  # -cd/--config-dir: an extra config search path
    config_name: str | None = None  # -cn/--config-name
    informational: bool = False  # Hydra prints something and runs no job


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    p.add_argument("overrides", nargs="*")
    p.add_argument("--multirun", "-m", action="store_true")
    p.add_argument("--run", "-r", action="store_true")
    p.add_argument("--config-path", "-cp")
    p.add_argument("--config-name", "-cn")
    p.add_argument("--config-dir", "-cd")
    p.add_argument("--package", "-p")
    p.add_argument("--resolve", action="store_true")
    p.add_argument("--experimental-rerun")
    for flag in ("--help", "-h", "--hydra-help", "--version"):
        p.add_argument(flag, action="store_true", dest=flag.lstrip("-").replace("-", "_"))
    p.add_argument("--cfg", "-c")
    p.add_argument("--info", "-i", nargs="?", const="all")
    p.add_argument("--shell-completion", "-sc", action="store_true")
    return p


def parse(argv: list[str]) -> Invocation | None:
    """The invocation, or None when the arguments are not Hydra's (Hydra reports them)."""
    try:
        args, unknown = _parser().parse_known_args(argv)
    except SystemExit:  # argparse's own error: let Hydra print its usage line
        return None
    if unknown:
        return None
    informational = bool(
        args.help
        or args.h
        or args.hydra_help
        or args.version
        or args.cfg
        or args.info
        or args.shell_completion
        or args.experimental_rerun
        or args.config_path  # a config path is relative to a caller Hydra knows
    )
    return Invocation(
        overrides=list(args.overrides),
        multirun=bool(args.multirun),
        config_dir=args.config_dir,
        config_name=args.config_name,
        informational=informational,
    )
