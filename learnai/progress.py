"""Console progress: a live line on a terminal, a few quiet lines in logs."""

from __future__ import annotations

import logging
import sys

from learnai.train import TrainState

log = logging.getLogger("learnai")


class Progress:
    """Training callback; updates at the loop's sync rhythm, so it costs no extra syncs."""

    def __init__(self, epochs: int, enabled: bool = True, lines: int = 4) -> None:
        self.epochs = epochs
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.every = max(1, epochs // lines)
        self._next = self.every

    def on_chunk(self, state: TrainState) -> None:
        if not self.enabled or not state.train_loss:
            return
        done = len(state.train_loss)
        text = (
            f"epoch {done}/{self.epochs}  train_loss {state.train_loss[-1]:.4g}  "
            f"val_loss {state.val_loss[-1]:.4g}"
        )
        if self.tty:
            width = 30
            bar = "#" * (width * done // self.epochs)
            end = "\n" if done >= self.epochs or state.stop else ""
            sys.stderr.write(f"\r[{bar:<{width}}] {text}{end}")
            sys.stderr.flush()
        elif done >= self._next or done >= self.epochs or state.stop:
            log.info(text)
            while self._next <= done:
                self._next += self.every
