"""A Hydra callback for tests: SIGTERM to the command's own process group (as a
scheduler's cancel) when Hydra starts the multirun, after learnai's entry point has asked
for the parent run and before any job."""

from __future__ import annotations

import os
import signal
from typing import Any

from hydra.experimental.callback import Callback


class TermOnMultirunStart(Callback):
    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        os.killpg(os.getpgid(0), signal.SIGTERM)
