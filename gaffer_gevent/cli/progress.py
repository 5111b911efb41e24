"""What a command is waiting for, and for how long: a spinner on stderr while it waits.

``with waiting("stopping web (graceful 10 s)", enabled=...) as status:`` shows
``⠋ stopping web (graceful 10 s) 3.2 s`` on the terminal and erases it when
the block ends; ``status.update("...")`` changes the text. Disabled (stderr
is not a terminal, ``--json``, or ``NO_COLOR``-free pipes alike) it prints
nothing and costs nothing: ``rich`` is imported only when the spinner shows.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from rich.console import RenderableType


def progress_enabled(as_json: bool = False, stream: TextIO | None = None) -> bool:
    """Spinners only for a person: stderr is a terminal and the output is not JSON."""
    stream = sys.stderr if stream is None else stream
    try:
        return not as_json and stream.isatty()
    except (AttributeError, ValueError):  # closed or not a real stream
        return False


class Waiting:
    """The text of a running wait; the elapsed time is added at each redraw."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.started = time.monotonic()

    def update(self, what: str) -> None:
        self.what = what

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def __str__(self) -> str:
        return f"{self.what} {self.elapsed:.1f} s"

    def __rich__(self) -> RenderableType:
        return str(self)


@contextlib.contextmanager
def waiting(what: str, *, enabled: bool, stream: TextIO | None = None) -> Iterator[Waiting]:
    """A spinner saying ``what`` and the seconds spent, on ``stream`` (stderr), while enabled.

    The spinner is transient: once the block ends the line is erased, so what
    the command prints afterwards reads as it does without a terminal.
    """
    status = Waiting(what)
    if not enabled:
        yield status
        return
    from rich.console import Console

    console = Console(file=sys.stderr if stream is None else stream, highlight=False)
    with console.status(status, spinner="dots"):
        yield status
