"""A progress bar for long commands, drawn on standard error."""

from __future__ import annotations

import sys
import time
from typing import TextIO

WIDTH = 30


class ProgressBar:
    """Redraws in place at most ten times a second, only on a terminal."""

    def __init__(self, *, unit: str = "rows", stream: TextIO | None = None) -> None:
        self.unit = unit
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self.started = time.monotonic()
        self.drawn = 0.0
        self.shown = False

    def show(self, done: int, total: int) -> None:
        now = time.monotonic()
        if not self.live or (now - self.drawn < 0.1 and done < total):
            return
        self.drawn = now
        self.shown = True
        total = max(total, done, 1)
        filled = WIDTH * done // total
        rate = done / max(now - self.started, 1e-6)
        self.stream.write(
            f"\r[{'#' * filled}{' ' * (WIDTH - filled)}] "
            f"{100 * done // total:3d}% {done:,}/{total:,} {self.unit} "
            f"{rate:,.0f}/s"
        )
        self.stream.flush()

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()
            self.shown = False
