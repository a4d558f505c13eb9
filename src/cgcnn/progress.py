"""Progress a person can see, on a terminal, in a log file and in a notebook.

On a terminal, :func:`progress_bar` is a tqdm bar (rate, time left).  Anywhere else -- a log
file, CI, a notebook cell, where a bar's carriage returns pile up into one unreadable line
-- it is a :class:`LineProgress`: one plain line every :data:`LINE_EVERY` seconds and one
at the end, with the count, the share done, the time spent and the time left (work done
within the first :data:`LINE_EVERY` seconds prints nothing).

Training's epoch lines and bar are :class:`cgcnn.training_progress.TrainingProgress`.  This
module imports neither torch nor Lightning.
"""

from __future__ import annotations

import math
import sys
import time
from typing import IO, Any

#: seconds between two lines off a terminal
LINE_EVERY = 10.0
_FORCED: dict[str, Any] = {}


def use_lines(prefix: str = "") -> None:
    """Draw plain lines even on a terminal, each starting with ``prefix`` (for processes
    that share one terminal: the members of an ensemble trained side by side)."""
    _FORCED.update(lines=True, prefix=prefix)


def forced_lines() -> bool:
    """Whether :func:`use_lines` was called in this process."""
    return bool(_FORCED.get("lines"))


def line_prefix() -> str:
    """The prefix given to :func:`use_lines`."""
    return str(_FORCED.get("prefix", ""))


def on_terminal(stream: IO[str] | None = None) -> bool:
    """Whether bars can be drawn on ``stream`` (stderr by default)."""
    if forced_lines():
        return False
    stream = sys.stderr if stream is None else stream
    return bool(getattr(stream, "isatty", lambda: False)())


def duration(seconds: float) -> str:
    """``42 s``, ``3.5 min``, ``2.1 h``."""
    if not math.isfinite(seconds):
        return "?"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def plural(n: int, noun: str) -> str:
    """``1 structure``, ``3 structures``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


class LineProgress:
    """tqdm's ``update`` / ``set_postfix_str`` / ``close``, as plain lines (see the module).

    Args:
        total: the count expected (None: unknown).
        desc: what is counted, first on each line.
        unit: the noun counted (``structure``).
        every: seconds between lines.
        stream: where lines go (stderr by default).
    """

    def __init__(
        self,
        total: int | None,
        desc: str,
        unit: str,
        every: float = LINE_EVERY,
        stream: IO[str] | None = None,
    ) -> None:
        self.total, self.desc, self.unit, self.every = total, desc, unit, every
        self.stream = stream
        self.n = 0
        self.postfix = ""
        self.started = self.last = time.perf_counter()
        self._shown_n = 0

    def update(self, n: int | float = 1) -> None:
        self.n += n
        now = time.perf_counter()
        if now - self.last >= self.every:
            self._line(now)

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        self.postfix = text

    def close(self) -> None:
        """The last line, for work that has had a line already (work done within
        :data:`LINE_EVERY` seconds stays silent: nobody waited for it)."""
        if self._shown_n and self.n != self._shown_n:
            self._line(time.perf_counter())

    def _line(self, now: float) -> None:
        spent = now - self.started
        count = f"{_count(self.n)} {self.unit}s"
        if self.total:
            share = self.n / self.total
            count = f"{_count(self.n)}/{_count(self.total)} {self.unit}s ({100 * share:.0f} %)"
            left = spent * (1 - share) / share if share > 0 else math.inf
            timing = f"{duration(spent)}, ~{duration(left)} left" if share < 1 else duration(spent)
        else:
            timing = duration(spent)
        text = f"{line_prefix()}{self.desc}: {count}, {timing}"
        if self.postfix:
            text += f"; {self.postfix}"
        print(text, file=self.stream or sys.stderr, flush=True)
        self.last, self._shown_n = now, self.n


def _count(n: int | float) -> str:
    return f"{n:,}" if float(n).is_integer() else f"{n:,.1f}"


def progress_bar(
    total: int | None, desc: str, unit: str, enabled: bool = True, stream: IO[str] | None = None
) -> Any:
    """A tqdm bar on a terminal, :class:`LineProgress` elsewhere, or a silent tqdm when not
    ``enabled``; all three take ``update``, ``set_postfix_str`` and ``close``."""
    from tqdm import tqdm

    if not enabled:
        return tqdm(total=total, disable=True)
    if on_terminal(stream):
        return tqdm(total=total, desc=desc, unit=unit, file=stream or sys.stderr)
    return LineProgress(total, desc, unit, stream=stream)
