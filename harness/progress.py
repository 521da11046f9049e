"""Progress of a long stage, drawn by tqdm: a live bar when the output is a terminal, tqdm's same meter as a plain
line every few seconds when it is a log (CI keeps each line; a redrawn bar would be one line of carriage returns),
nothing under ``-q``.

The library says what happened through a ``Progress`` callable (one line each). A front door that can draw bars
hands in a ``Channel``, which is such a callable with a ``bar`` method; ``open_bar`` falls back to plain lines for
any other callable (``print``, a list's ``append``), so scripts and tests keep working unchanged."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Protocol

Progress = Callable[[str], None]
STEP = "harness:   "  # the prefix of a long stage's step lines (training steps, stage timings); -q leaves them out
LOG_INTERVAL_SECONDS = 10.0  # a bar in a log says a line this often


class Bar(Protocol):
    def update(self, done: int, status: str = "") -> None: ...  # ``done`` steps of the total so far

    def write(self, line: str) -> None: ...  # a line of its own (an evaluation's result) without breaking the bar

    def close(self) -> None: ...


def open_bar(progress: Progress, description: str, total: int, unit: str = "step") -> Bar:
    """The bar ``progress`` draws (a ``Channel``), or plain lines through it for any other callable."""
    maker = getattr(progress, "bar", None)
    if callable(maker):
        return maker(description, total, unit)
    return LineBar(progress, description, total, unit)


def meter(done: int, total: int, elapsed: float, description: str, unit: str, status: str) -> str:
    """tqdm's meter as text: ``fine-tune:  40%|####      | 200/500 [01:10<01:45, 2.85step/s, loss 0.41]``."""
    from tqdm import tqdm

    return tqdm.format_meter(done, total, elapsed, ncols=100, prefix=description, unit=unit, ascii=True,
                             postfix=status or None)  # fmt: skip


class LineBar:
    """tqdm's meter as a step line every ``interval`` seconds and once at the end (a log, or a plain callable)."""

    def __init__(
        self, say: Progress, description: str, total: int, unit: str = "step",
        interval: float = LOG_INTERVAL_SECONDS, clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.say, self.description, self.total, self.unit = say, description, total, unit
        self.interval, self.clock = interval, clock
        self.started = self.said_at = clock()
        self.done, self.status, self.said_done = 0, "", -1

    def update(self, done: int, status: str = "") -> None:
        self.done, self.status = done, status
        if self.clock() - self.said_at >= self.interval:
            self._say()

    def write(self, line: str) -> None:
        self.say(line)

    def close(self) -> None:
        if self.said_done != self.done:  # the last state, unless it was just said
            self._say()

    def _say(self) -> None:
        self.said_at, self.said_done = self.clock(), self.done
        elapsed = self.said_at - self.started
        self.say(STEP + meter(self.done, self.total, elapsed, self.description, self.unit, self.status))


class TerminalBar:
    """tqdm's live bar on standard error; every draw runs inside ``guard`` (pytest's output capture suspended, so
    the bar reaches the terminal while a fixture runs)."""

    def __init__(self, guard: Callable[[], AbstractContextManager], description: str, total: int, unit: str) -> None:
        from tqdm import tqdm

        self.guard = guard
        with guard():  # created while capture is off: tqdm keeps the real standard error
            self.bar = tqdm(total=total, desc=f"{STEP}{description}", unit=unit, file=sys.stderr, leave=True,
                            miniters=1, mininterval=0.2, dynamic_ncols=True)  # fmt: skip

    def update(self, done: int, status: str = "") -> None:
        with self.guard():
            self.bar.set_postfix_str(status, refresh=False)
            self.bar.update(done - self.bar.n)

    def write(self, line: str) -> None:
        with self.guard():
            self.bar.write(line, file=sys.stderr)

    def close(self) -> None:
        with self.guard():
            self.bar.close()


class NoBar:
    """Under ``-q``: no bar; a line written through it still goes to ``say``, which decides whether to show it."""

    def __init__(self, say: Progress) -> None:
        self.say = say

    def update(self, done: int, status: str = "") -> None:
        pass

    def write(self, line: str) -> None:
        self.say(line)

    def close(self) -> None:
        pass


class Channel:
    """A ``Progress`` that also draws bars. ``say`` writes one line; ``live`` tells (when a bar opens) whether the
    output is a terminal a bar can be redrawn on; ``quiet``: step lines and bars are left out; ``guard`` suspends
    whatever captures output."""

    def __init__(self, say: Progress, *, live: Callable[[], bool] = lambda: False, quiet: bool = False,
                 guard: Callable[[], AbstractContextManager] = nullcontext) -> None:  # fmt: skip
        self.say, self.live, self.quiet, self.guard = say, live, quiet, guard

    def __call__(self, line: str) -> None:
        if self.quiet and line.startswith(STEP):
            return
        self.say(line)

    def bar(self, description: str, total: int, unit: str = "step") -> Bar:
        if self.quiet:
            return NoBar(self)
        with self.guard():
            live = self.live()
        if live:
            return TerminalBar(self.guard, description, total, unit)
        return LineBar(self, description, total, unit)


@contextmanager
def bar_over(progress: Progress, description: str, total: int, unit: str = "step") -> Iterator[Bar]:
    """``open_bar`` closed at the end of the block, also when it raises."""
    bar = open_bar(progress, description, total, unit)
    try:
        yield bar
    finally:
        bar.close()


def terminal_channel(quiet: bool = False) -> Channel:
    """The command line's channel: lines on standard output, a live bar where standard error is a terminal."""
    return Channel(lambda line: print(line, flush=True), live=sys.stderr.isatty, quiet=quiet)
