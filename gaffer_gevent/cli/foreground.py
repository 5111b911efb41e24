"""The console of ``gaffer start``: an in-process manager whose output becomes prefixed lines."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

import gevent
from gevent.event import Event

from ..manager import Manager
from . import ERROR_COLOUR, EXIT_OK, EXIT_REFUSED, PALETTE, paint

if TYPE_CHECKING:
    from ..template import ProcessTemplate


class Foreground:
    """The console of ``gaffer start``: prefixed, coloured lines and the exit code.

    Output chunks arrive from the manager's reader greenlets and events from
    the bus; both are turned into whole lines ``HH:MM:SS name.N | text`` where
    N numbers the processes of a type from 1 (a freed number is reused, as in
    honcho). A process that exits without ever having spawned failed to start:
    that stops the app and makes the exit code 1.
    """

    def __init__(
        self,
        names: list[str],
        counts: dict[str, int],
        *,
        colour: bool,
        request_stop: Callable[[], None],
        out: TextIO,
    ) -> None:
        self.width = max([len("system")] + [len(f"{n}.{counts.get(n, 1)}") for n in names])
        self.colours = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}
        self.colour = colour
        self.request_stop = request_stop
        self.out = out
        self.failure: str | None = None
        self._numbers: dict[str, dict[int, int]] = {}
        self._partial: dict[tuple[int, str], bytes] = {}
        self._spawned: set[int] = set()

    def number(self, name: str, pid: int) -> str:
        """``web.1``: the lowest number not used by another running process of ``name``."""
        numbers = self._numbers.setdefault(name, {})
        if pid not in numbers:
            used = set(numbers.values())
            numbers[pid] = next(n for n in range(1, len(used) + 2) if n not in used)
        return f"{name}.{numbers[pid]}"

    def write(self, who: str, colour: str | None, text: str) -> None:
        prefix = f"{time.strftime('%H:%M:%S')} {who.ljust(self.width)} |"
        self.out.write(f"{paint(prefix, colour, self.colour)} {text}\n")
        self.out.flush()

    def system(self, text: str) -> None:
        self.write("system", ERROR_COLOUR if self.failure else None, text)

    def on_output(self, name: str, pid: int, label: str, data: bytes) -> None:
        """Manager output listener: print the complete lines, keep the rest for later."""
        buffered = self._partial.pop((pid, label), b"") + data
        *lines, rest = buffered.split(b"\n")
        if len(rest) > 65536:  # a process that never ends its line still gets shown
            lines, rest = [*lines, rest], b""
        if rest:
            self._partial[(pid, label)] = rest
        for line in lines:
            text = line.decode("utf-8", "replace").rstrip("\r")
            self.write(self.number(name, pid), self.colours.get(name), text)

    def on_event(self, event: str, payload: dict[str, Any]) -> None:
        """Bus listener for the global ``spawn`` and ``exit`` events."""
        name, pid = str(payload.get("name")), int(payload.get("pid") or 0)
        if event == "spawn":
            self._spawned.add(pid)
            who = self.number(name, pid)
            self.write(who, self.colours.get(name), f"started with pid {payload.get('os_pid')}")
        elif event == "exit":
            for key in [key for key in self._partial if key[0] == pid]:
                self.on_output(name, pid, key[1], self._partial.pop(key) + b"\n")
            who = self.number(name, pid)
            signum, status = payload.get("term_signal") or 0, payload.get("exit_status")
            how = f"killed by signal {signum}" if signum else f"exited with code {status}"
            if pid not in self._spawned:
                how = f"failed to start (exit status {status})"
                self.failure = self.failure or f"{who} {how}"
            self.write(who, self.colours.get(name), how)
            self._numbers.get(name, {}).pop(pid, None)
            self._spawned.discard(pid)
            if self.failure:
                self.request_stop()


def run_foreground(
    templates: list[ProcessTemplate],
    counts: dict[str, int],
    *,
    colour: bool,
    out: TextIO,
    timeout: float,
) -> int:
    """Run ``templates`` until a signal (or a process that cannot start); the exit code.

    Signal handlers only hand over to this greenlet, which stops everything.
    """
    stop = Event()
    names = [template.name for template in templates]
    console = Foreground(names, counts, colour=colour, request_stop=stop.set, out=out)
    manager = Manager(output_listener=console.on_output)
    manager.bus.subscribe("spawn", console.on_event)
    manager.bus.subscribe("exit", console.on_event)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT):
        gevent.signal_handler(signum, stop.set)
    for template in templates:
        if not stop.is_set():
            manager.add_template(template, start=True)
    stop.wait()
    console.system("stopping all processes")
    manager.stop_all(timeout + 5.0)
    manager.bus.flush()
    if console.failure:
        console.system(f"stopped because {console.failure}")
        return EXIT_REFUSED
    console.system("all processes stopped")
    return EXIT_OK
