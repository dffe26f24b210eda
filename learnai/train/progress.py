"""Console progress: a live line on a terminal, a line every few seconds in logs."""

from __future__ import annotations

import logging
import sys
import time

from learnai.train.loop import TrainState

log = logging.getLogger("learnai")


class Progress:
    """Training callback; updates at the loop's sync rhythm, so it costs no extra syncs.

    Without a terminal (a log file, a scheduler) it writes a line at every quarter of the
    run and at least every ``every_s`` seconds, so a long run never looks hung. Epochs are
    counted 1..N, as in the metrics' steps.
    """

    def __init__(
        self,
        epochs: int,
        enabled: bool = True,
        lines: int = 4,
        every_s: float = 10.0,
        name: str = "",
        after_divergence: int = 0,
    ) -> None:
        self.epochs = epochs
        self.prefix = f"{name}: " if name else ""  # parallel jobs' lines interleave
        self.after_divergence = after_divergence
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.every = max(1, epochs // lines)
        self.every_s = every_s
        self._next = self.every
        self._last = time.monotonic()
        self._told_divergence = False

    def on_chunk(self, state: TrainState) -> None:
        if not self.enabled or not state.train_loss:
            return
        done = len(state.train_loss)
        text = self.prefix + (
            f"epoch {done}/{self.epochs}  train_loss {state.train_loss[-1]:.4g}  "
            f"val_loss {state.val_loss[-1]:.4g}"
        )
        if state.diverged_at is not None and not self._told_divergence:
            self._told_divergence = True
            if self.tty:
                sys.stderr.write("\n")
            more = min(self.after_divergence, self.epochs - state.diverged_at)
            why = (
                f"; {more} more epochs so its animation shows the blow-up "
                "(trainer.animation.after_divergence)"
                if more > 0
                else ""
            )
            log.info(
                "%sloss blew up at epoch %d: the run has diverged%s",
                self.prefix,
                state.diverged_at,
                why,
            )
        if self.tty:
            width = 30
            bar = "#" * (width * done // self.epochs)
            end = "\n" if done >= self.epochs or state.stop else ""
            sys.stderr.write(f"\r[{bar:<{width}}] {text}{end}")
            sys.stderr.flush()
            return
        now = time.monotonic()
        due = done >= self._next or now - self._last >= self.every_s
        if due or done >= self.epochs or state.stop:
            log.info(text)
            self._last = now
            while self._next <= done:
                self._next += self.every
