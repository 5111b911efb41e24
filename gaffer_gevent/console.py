"""The console: children's output as prefixed lines on a terminal, never holding a child.

``gafferd -vv`` and ``gaffer start`` print every line the children write. A
terminal can stop reading at any time (a paused pager, Ctrl-S, a pipe nobody
reads): a write from the pipe reader would then stall the reader, so the
child's pipe would fill and the child would block in its own ``write``. So the
console is a client of the rings like any feed: one ``Subscription`` per
label, read by the console's own greenlet, which writes through a
``Terminal``. When the terminal stops reading, only that greenlet waits; the
cursors fall behind the rings and, once the terminal reads again, each lost
stretch is one notice line (``[gaffer: N bytes of web.1 stdout dropped]``).

A ``Layout`` decides what the lines look like (gafferd's ``name[pid] label |``
or ``gaffer start``'s time, ``name.N`` and colours) and may add a line when a
process starts and when it ends; the console only frames lines and keeps
their order: a process's start line, then its output, then its end line.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from gevent.event import Event
from gevent.pool import Group
from gevent.threadpool import ThreadPool

from .limits import printable
from .manager import Manager
from .process import Process
from .streams import Gap, Subscription

log = logging.getLogger(__name__)

#: Most output bytes the console takes from its cursors for one write.
WRITE_BATCH = 256 * 1024
#: A line that never ends is shown in pieces of this many bytes.
MAX_LINE = 64 * 1024
#: Lines of its own (``say``) the console keeps while the terminal does not read.
MAX_NOTES = 1024
#: How long ``close`` lets the console write what is left before it gives up.
DRAIN_TIMEOUT = 2.0


class Layout(Protocol):
    """How a console's lines look; each method returns one line without its newline."""

    def who(self, process: Process) -> str:
        """The process's name in a notice (``web.1``, ``web[1]``)."""

    def line(self, process: Process, label: str, text: str) -> str:
        """One line of output (or a notice about it), prefixed."""

    def started(self, process: Process) -> str | None:
        """Said before the process's first line, or None."""

    def ended(self, process: Process) -> str | None:
        """Said after its last line, once it exited (``exit_status`` is set), or None."""


class Terminal:
    """Writes bytes to a file descriptor from one thread of its own.

    A write to a terminal or a pipe that is not read blocks; in that thread it
    holds only the greenlet that waits for it, never the hub. The descriptor's
    flags stay as they are: making it non-blocking would change it for every
    process sharing it (the shell, gafferd's own stderr when it is the same
    terminal).
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.pool = ThreadPool(1)
        self.busy = False

    def write(self, data: bytes) -> None:
        """Write all of ``data``; only the calling greenlet waits (OSError if the fd is gone)."""
        self.busy = True
        try:
            self.pool.apply(_write_all, (self.fd, data))
        except OSError:
            self.busy = False  # the thread is free again: the write failed, it did not hang
            raise
        self.busy = False

    def close(self) -> None:
        """Let the thread go; one stuck in a write is left to die with the process."""
        if not self.busy:
            self.pool.kill()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


@dataclass(eq=False)
class _Follow:
    """One label of one process: its cursor and the partial line read so far."""

    label: str
    sub: Subscription
    partial: bytes = b""


@dataclass(eq=False)
class _Watch:
    """One process the console shows."""

    process: Process
    follows: list[_Follow] = field(default_factory=list)
    announced: bool = False


class Console:
    """Shows the output of every process ``manager`` spawns, from a greenlet of its own."""

    def __init__(
        self,
        manager: Manager,
        layout: Layout,
        write: Callable[[bytes], None],
        *,
        max_notes: int = MAX_NOTES,
    ) -> None:
        self.manager = manager
        self.layout = layout
        self.write = write
        self.dropped_notes = 0
        self._notes: deque[str] = deque(maxlen=max_notes)
        self._watches: list[_Watch] = []
        self._wakeup = Event()
        self._closing = False
        self._group = Group()
        self.greenlet = self._group.spawn(self._run)
        manager.spawn_hooks.append(self.attach)
        for process in manager.all_processes():
            self.attach(process)

    def attach(self, process: Process) -> None:
        """Spawn hook: follow each label of a new process from its first byte."""
        watch = _Watch(process)
        for label, stream in process.streams.items():
            sub = stream.subscribe(since=0)
            sub.owner = "console"
            watch.follows.append(_Follow(label, sub))
            stream.sinks.append(self._wake)  # setting an event is all a reader may do
        process.exited.rawlink(self._wake)
        self._watches.append(watch)
        self._wake()

    def say(self, line: str) -> None:
        """Queue a line of the console's own; written after the output taken so far."""
        if len(self._notes) == self._notes.maxlen:
            self.dropped_notes += 1
        self._notes.append(line)
        self._wake()

    def _wake(self, *_: Any) -> None:
        self._wakeup.set()

    def close(self, timeout: float = DRAIN_TIMEOUT) -> None:
        """Write what is left (for at most ``timeout``), then stop following."""
        if self.attach in self.manager.spawn_hooks:
            self.manager.spawn_hooks.remove(self.attach)
        self._closing = True
        self._wake()
        if not self._group.join(timeout):
            self._group.kill(block=False)
        for watch in self._watches:
            for follow in watch.follows:
                follow.sub.close()
        self._watches = []

    # -- the console's greenlet -------------------------------------------------

    def _run(self) -> None:
        while True:
            self._wakeup.clear()
            data = self._collect()
            if data:
                try:
                    self.write(data)
                except OSError as exc:  # the terminal is gone: nobody is left to show
                    log.warning("console: cannot write: %s", exc)
                    return
            elif self._closing:
                return
            else:
                self._wakeup.wait()

    def _collect(self) -> bytes:
        """The next write: output up to WRITE_BATCH, then the notes queued before it."""
        notes = list(self._notes)  # notes queued later wait for the output read with them
        self._notes.clear()
        lines: list[str] = []
        size = 0
        for watch in list(self._watches):
            if not watch.announced:
                watch.announced = True
                self._add(lines, self.layout.started(watch.process))
            for follow in watch.follows:
                while size < WRITE_BATCH and (items := follow.sub.take(WRITE_BATCH - size)):
                    for item in items:
                        if isinstance(item, Gap):
                            self._flush(lines, watch.process, follow)
                            lines.append(self._gap_line(watch.process, follow.label, item))
                        else:
                            size += len(item.data)
                            self._frame(lines, watch.process, follow, item.data)
            if size >= WRITE_BATCH:
                self._notes.extendleft(reversed(notes))  # after the rest of the output
                notes = []
                break
            if watch.process.exited.is_set() and all(f.sub.at_end for f in watch.follows):
                for follow in watch.follows:
                    self._flush(lines, watch.process, follow)
                    follow.sub.close()
                self._add(lines, self.layout.ended(watch.process))
                self._watches.remove(watch)
        if self.dropped_notes:
            lines.append(f"[gaffer: {self.dropped_notes} console lines dropped]")
            self.dropped_notes = 0
        lines.extend(notes)
        return "".join(line + "\n" for line in lines).encode("utf-8", "replace")

    @staticmethod
    def _add(lines: list[str], line: str | None) -> None:
        if line is not None:
            lines.append(line)

    def _frame(self, lines: list[str], process: Process, follow: _Follow, data: bytes) -> None:
        """The complete lines of ``data`` (after what was held); keep the partial last one."""
        *complete, rest = (follow.partial + data).split(b"\n")
        if len(rest) >= MAX_LINE:  # a process that never ends its line still gets shown
            complete, rest = [*complete, rest], b""
        follow.partial = rest
        for line in complete:
            text = line.decode("utf-8", "replace").rstrip("\r")
            lines.append(self.layout.line(process, follow.label, text))

    def _flush(self, lines: list[str], process: Process, follow: _Follow) -> None:
        """The partial line held, as it is (before a gap, or at the end)."""
        if follow.partial:
            self._frame(lines, process, follow, b"\n")

    def _gap_line(self, process: Process, label: str, gap: Gap) -> str:
        lost = f"{gap.chunks} chunks" if gap.bytes is None else f"{gap.bytes} bytes"
        notice = f"[gaffer: {lost} of {self.layout.who(process)} {label} dropped]"
        return self.layout.line(process, label, notice)


class EchoLayout:
    """gafferd ``-vv``: ``name[pid] label | line``; the name and label escaped, as in its log."""

    def who(self, process: Process) -> str:
        return f"{printable(process.name)}[{process.pid}]"

    def line(self, process: Process, label: str, text: str) -> str:
        return f"{self.who(process)} {printable(label)} | {text}"

    def started(self, process: Process) -> str | None:
        return None

    def ended(self, process: Process) -> str | None:
        return None
