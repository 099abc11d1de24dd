"""Progress for long commands, shaped for where their output goes.

On a terminal a bar is redrawn in place; anywhere else (a CI log, the systemd journal, a file) each
step is one plain line, because a carriage-return bar turns a log into one unreadable line.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

BAR_WIDTH = 30


class Progress:
    """`total` steps of `label`; `step()` after each, `close()` at the end, `say()` for news."""

    def __init__(
        self, total: int, label: str, stream: TextIO | None = None, tty: bool | None = None
    ) -> None:
        self.total = max(total, 1)
        self.label = label
        self.stream = stream if stream is not None else sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        self.done = 0
        self.started = time.monotonic()
        self._bar_shown = False

    def step(self, note: str = "") -> None:
        self.done = min(self.done + 1, self.total)
        wall_s = time.monotonic() - self.started
        suffix = f"  {note}" if note else ""
        if self.tty:
            filled = BAR_WIDTH * self.done // self.total
            bar = "#" * filled + "." * (BAR_WIDTH - filled)
            self.stream.write(
                f"\r  [{bar}] {self.done}/{self.total} {self.label} {wall_s:5.0f}s{suffix}\x1b[K"
            )
            self._bar_shown = True
        else:
            self.stream.write(f"{self.label} {self.done}/{self.total} ({wall_s:.0f} s){suffix}\n")
        self.stream.flush()

    def say(self, text: str) -> None:
        """A line of its own that does not break the bar (it is redrawn on the next step)."""
        if self.tty and self._bar_shown:
            self.stream.write("\r\x1b[K")
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self._bar_shown:
            self.stream.write("\n")
            self._bar_shown = False
        self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
