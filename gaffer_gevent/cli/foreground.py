"""The console of ``gaffer start``: an in-process manager whose output becomes prefixed lines."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

import gevent
from gevent.event import Event

from ..console import Console, Terminal
from ..manager import Manager
from . import ERROR_COLOUR, EXIT_OK, EXIT_REFUSED, PALETTE, paint

if TYPE_CHECKING:
    from ..process import Process
    from ..template import ProcessTemplate

#: How long the console may take to write what is left once everything stopped.
DRAIN_TIMEOUT = 2.0


class Foreground:
    """The layout of ``gaffer start``'s console: prefixed, coloured lines and the exit code.

    Lines read ``HH:MM:SS name.N | text`` where N numbers the processes of a
    type from 1 (the number of an exited process is reused, as in honcho). The
    lines themselves are written by a ``console.Console``, which reads the
    output like any client. A process that exits without ever having spawned
    failed to start: that stops the app and makes the exit code 1.
    """

    def __init__(
        self,
        names: list[str],
        counts: dict[str, int],
        *,
        colour: bool,
        request_stop: Callable[[], None],
    ) -> None:
        self.width = max([len("system")] + [len(f"{n}.{counts.get(n, 1)}") for n in names])
        self.colours = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}
        self.colour = colour
        self.request_stop = request_stop
        self.failure: str | None = None
        #: Per type, the numbers held: pid -> (number, its process; None once it is gone).
        self._held: dict[str, dict[int, tuple[int, Process | None]]] = {}
        self._who: dict[int, str] = {}
        self._spawned: set[int] = set()

    def number(self, name: str, pid: int, process: Process | None = None) -> str:
        """``web.1``: the lowest number not held by another live process of ``name``."""
        if pid in self._who:
            return self._who[pid]
        held = self._held.setdefault(name, {})
        for other, (_, holder) in list(held.items()):
            if holder is None or holder.exited.is_set():
                del held[other]
        used = {n for n, _ in held.values()}
        number = next(n for n in range(1, len(used) + 2) if n not in used)
        held[pid] = (number, process)
        self._who[pid] = f"{name}.{number}"
        return self._who[pid]

    def format(self, who: str, colour: str | None, text: str) -> str:
        prefix = f"{time.strftime('%H:%M:%S')} {who.ljust(self.width)} |"
        return f"{paint(prefix, colour, self.colour)} {text}"

    def system(self, text: str) -> str:
        return self.format("system", ERROR_COLOUR if self.failure else None, text)

    # -- console.Layout ---------------------------------------------------------

    def who(self, process: Process) -> str:
        return self.number(process.name, process.pid, process)

    def line(self, process: Process, label: str, text: str) -> str:
        return self.format(self.who(process), self.colours.get(process.name), text)

    def started(self, process: Process) -> str:
        return self.line(process, "", f"started with pid {process.os_pid}")

    def ended(self, process: Process) -> str:
        status = process.exit_status
        signum = status.term_signal if status is not None else 0
        code = status.exit_status if status is not None else None
        how = f"killed by signal {signum}" if signum else f"exited with code {code}"
        text = self.line(process, "", how)
        self._who.pop(process.pid, None)
        return text

    # -- what the manager says ---------------------------------------------------

    def spawned(self, process: Process) -> None:
        """Spawn hook: this pid did start (its exit is not a failure to start)."""
        self._spawned.add(process.pid)

    def on_exit(self, event: str, payload: dict[str, Any]) -> str | None:
        """Bus listener for ``exit``: the line for a process that never started, else None."""
        pid = int(payload.get("pid") or 0)
        if pid in self._spawned:
            self._spawned.discard(pid)
            return None  # the console says how it ended, after its last line
        name = str(payload.get("name"))
        who = self.number(name, pid)
        self._who.pop(pid, None)
        how = f"failed to start (exit status {payload.get('exit_status')})"
        self.failure = self.failure or f"{who} {how}"
        self.request_stop()
        return self.format(who, self.colours.get(name), how)


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
    layout = Foreground(names, counts, colour=colour, request_stop=stop.set)
    manager = Manager()
    manager.spawn_hooks.append(layout.spawned)
    out.flush()
    terminal = Terminal(out.fileno())
    console = Console(manager, layout, terminal.write)

    def on_exit(event: str, payload: dict[str, Any]) -> None:
        line = layout.on_exit(event, payload)
        if line is not None:
            console.say(line)

    manager.bus.subscribe("exit", on_exit)
    # The handles must stay referenced: a collected handle stops its watcher.
    handles = [
        gevent.signal_handler(signum, stop.set)
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT)
    ]
    for template in templates:
        if not stop.is_set():
            manager.add_template(template, start=True)
    stop.wait()
    console.say(layout.system("stopping all processes"))
    manager.stop_all(timeout + 5.0)
    manager.bus.flush()
    if layout.failure:
        console.say(layout.system(f"stopped because {layout.failure}"))
        code = EXIT_REFUSED
    else:
        console.say(layout.system("all processes stopped"))
        code = EXIT_OK
    # A terminal that does not read by now loses the last lines: gaffer must still exit.
    console.close(DRAIN_TIMEOUT)
    terminal.close()
    for handle in handles:
        handle.cancel()
    return code
