"""learnai's subcommands besides training: ``learnai runs``, ``learnai rerun``.

``learnai <overrides>`` is Hydra's command line; a first word naming a subcommand runs
that command instead (Hydra never sees it). Each command module has
``main(argv) -> int`` and imports its heavy libraries inside.
"""

from __future__ import annotations

import importlib

COMMANDS = {"runs": "learnai.commands.runs", "rerun": "learnai.commands.rerun"}


def dispatch(argv: list[str]) -> int | None:
    """Run the subcommand ``argv[0]`` names and return its exit code; None: no subcommand."""
    if not argv or argv[0] not in COMMANDS:
        return None
    return importlib.import_module(COMMANDS[argv[0]]).main(argv[1:])
