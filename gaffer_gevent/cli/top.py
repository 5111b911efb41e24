"""``gafferctl top``: a live table of templates and pids, fed by gafferd's feeds.

Nothing polls gafferd: one ``/watch`` feed says when a template changes (its
rows are then read again, once per redraw at most), one ``stat`` feed per pid
brings CPU and memory (gafferd sends them about ten times a second) and one
output feed per pid its last line. Each feed is read by a daemon thread that
puts what it reads in one queue; the main thread owns the client's plain calls,
the table and the terminal, and redraws at most ``1 / MIN_REDRAW`` times a
second. The CLI stays free of gevent: threads and blocking reads only.

When stdout is not a terminal (or with ``--json``) it prints one snapshot and
exits. ``rich`` is imported here only, when the command runs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import queue
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, TextIO

from ..errors import GafferError
from . import EXIT_OK, error_line
from .top_board import SORT_KEYS, SORT_LETTERS, Board, Row, format_bytes, format_uptime, last_line

if TYPE_CHECKING:
    from rich.console import RenderableType

    from ..client import Client, Feed

#: Seconds between two redraws at least (4 a second at most).
MIN_REDRAW = 0.25
#: Seconds between redraws when nothing happens (uptimes move).
IDLE_REDRAW = 1.0
#: Pids followed live (stat and output feeds, two connections each); others show the rows read
#: at their template's last event. gafferd measures a followed pid ten times a second (the stat
#: feed's rate), so this also bounds what an open ``top`` costs it.
MAX_LIVE_PIDS = 32
#: Heartbeat asked of every feed: a gafferd that went silent is noticed after two missed ones.
HEARTBEAT = 15

#: Escape sequences of the arrow keys (normal and application cursor mode).
ARROWS = {"\x1b[A": "up", "\x1bOA": "up", "\x1b[B": "down", "\x1bOB": "down"}

COLUMNS = ("NAME", "PID", "OS_PID", "STATE", "CPU%", "RSS", "RESTARTS", "UPTIME", "OUTPUT")


def cells(row: Row, now: float) -> tuple[str, ...]:
    """A row as the table's text, one string per ``COLUMNS`` entry."""
    return (
        row.name,
        "-" if row.pid is None else str(row.pid),
        "-" if row.os_pid is None else str(row.os_pid),
        row.state,
        "-" if row.cpu is None else f"{row.cpu:.1f}",
        format_bytes(row.rss),
        str(row.restarts),
        format_uptime(row.uptime(now)),
        row.output,
    )


def load_board(client: Client) -> Board:
    """Every template's rows from ``GET /stats`` and ``/status/<name>`` (and labels)."""
    board = Board()
    for body in client.stats():
        name = str(body.get("name"))
        board.set_template(name, body, client.status(name))
        board.set_labels(name, _labels(client, name))
    return board


def _labels(client: Client, name: str) -> list[str]:
    with contextlib.suppress(GafferError):
        return [str(label) for label in client.get_process(name).get("redirect_output") or []]
    return []


def run_top(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    """The command: live on a terminal, one snapshot otherwise."""
    if getattr(args, "json", False) or not out.isatty():
        return snapshot(client, out, as_json=getattr(args, "json", False))
    return Top(client, out).run()


def snapshot(client: Client, out: TextIO, *, as_json: bool) -> int:
    """Print the table once (or the rows as JSON) and return."""
    board = load_board(client)
    now = time.time()
    rows = board.rows("name", now)
    if as_json:
        import json

        out.write(json.dumps([_json_row(row, now) for row in rows]) + "\n")
        return EXIT_OK
    from rich.console import Console

    width = int(os.environ.get("COLUMNS", "0") or 0) or 160
    console = Console(file=out, width=width, color_system=None, highlight=False)
    console.print(table(rows, now, selected=None))
    out.flush()
    return EXIT_OK


def _json_row(row: Row, now: float) -> dict[str, Any]:
    return {
        "name": row.name, "pid": row.pid, "os_pid": row.os_pid, "state": row.state,
        "cpu": row.cpu, "rss": row.rss, "restarts": row.restarts,
        "uptime": row.uptime(now), "output": row.output,
    }  # fmt: skip


def table(
    rows: Iterable[Row], now: float, selected: int | None, *, expand: bool = False
) -> RenderableType:
    from rich import box
    from rich.table import Table

    grid = Table(box=box.SIMPLE_HEAD, expand=expand, pad_edge=False)
    for column in COLUMNS:
        numeric = column in ("PID", "OS_PID", "CPU%", "RSS", "RESTARTS", "UPTIME")
        if column == "OUTPUT":
            grid.add_column(column, ratio=1, no_wrap=True, overflow="ellipsis")
        else:
            grid.add_column(column, justify="right" if numeric else "left", no_wrap=True)
    for index, row in enumerate(rows):
        grid.add_row(*cells(row, now), style="reverse" if index == selected else None)
    return grid


class Top:
    """The live view: the queue's messages in, frames out."""

    def __init__(self, client: Client, out: TextIO) -> None:
        self.client = client
        self.out = out
        self.inbox: queue.Queue[tuple[str, Any, Any]] = queue.Queue()
        self.board = Board()
        self.sort = "name"
        self.selected: tuple[str, int | None] | None = None
        self.message = ""
        self.stale: set[str] = set()
        self.followed: set[int] = set()
        self.done = False

    # -- feeds ---------------------------------------------------------------

    def _pump(self, kind: str, key: Any, feed: Feed[Any]) -> None:
        """Read ``feed`` in a daemon thread until it ends; each item becomes a message."""

        def read() -> None:
            rest = ""
            try:
                with feed:
                    for item in feed:
                        if kind == "output":
                            line, rest = last_line(rest, item)
                            if line:
                                self.inbox.put((kind, key, line))
                        else:
                            self.inbox.put((kind, key, item))
            except BaseException as exc:  # a thread must not print a traceback over the table
                self.inbox.put(("ended", key, exc))
            else:
                self.inbox.put(("ended", key, None))

        threading.Thread(target=read, name=f"top-{kind}-{key}", daemon=True).start()

    def _follow(self, rows: Iterable[Row]) -> None:
        """Open the stat and output feeds of new pids (up to ``MAX_LIVE_PIDS``)."""
        for row in rows:
            if row.pid is None or row.pid in self.followed:
                continue
            if len(self.followed) >= MAX_LIVE_PIDS:
                return
            self.followed.add(row.pid)
            with contextlib.suppress(GafferError):  # it may have exited already
                self._pump(
                    "stat", row.pid, self.client.stats_feed(row.name, row.pid, heartbeat=HEARTBEAT)
                )
            labels = self.board.templates[row.name].labels
            if labels:
                with contextlib.suppress(GafferError):
                    feed = self.client.follow(row.pid, labels[0], heartbeat=HEARTBEAT, tail=1)
                    self._pump("output", row.pid, feed)

    def _refresh(self, name: str) -> None:
        """Read one template again (after an event said it changed)."""
        try:
            stats = self.client.stats(name)
            status = self.client.status(name)
        except GafferError as exc:
            if exc.code in ("not_found", "resource_not_found"):
                self.board.remove_template(name)
            else:
                self.message = error_line("top", exc)
            return
        if name not in self.board.templates:
            self.board.set_labels(name, _labels(self.client, name))
        self._follow(self.board.set_template(name, stats, status))
        live = {row.pid for t in self.board.templates.values() for row in t.processes.values()}
        self.followed &= live

    # -- messages ------------------------------------------------------------

    def handle(self, kind: str, key: Any, data: Any) -> bool:
        """Apply one message; True if the table changed."""
        if kind == "event":
            event, payload = data
            if event == "update":
                self.board.set_labels(
                    str(payload.get("name")), _labels(self.client, str(payload.get("name")))
                )
            name = self.board.apply_event(event, payload)
            if name is not None:
                self.stale.add(name)
            return event == "delete" or name is not None
        if kind == "stat":
            return self.board.apply_stat(data)
        if kind == "output":
            self.board.set_output(key, data)
            return True
        if kind == "ended" and key == "watch":
            self.message = "the event feed ended: gafferd stopped or went away (q quits)"
            if isinstance(data, GafferError):
                self.message = error_line("top", data)
            return True
        if kind == "key":
            return self.on_key(data)
        return False

    def on_key(self, key: str) -> bool:
        rows = self.board.rows(self.sort, time.time())
        index = self._index(rows)
        if key in ("q", "Q"):
            self.done = True
        elif key == "s":
            self.sort = SORT_KEYS[(SORT_KEYS.index(self.sort) + 1) % len(SORT_KEYS)]
        elif key in SORT_LETTERS:
            self.sort = SORT_LETTERS[key]
        elif key in ("up", "down") and rows:
            index = max(0, min(len(rows) - 1, (index or 0) + (1 if key == "down" else -1)))
            self.selected = rows[index].key
        elif key in ("r", "k") and index is not None:
            self.act(key, rows[index])
        else:
            return False
        return True

    def act(self, key: str, row: Row) -> None:
        """``r``: a pid is replaced (stopped; its template spawns another), a template
        restarted; ``k``: the row's template is stopped. A refusal goes to the footer."""
        try:
            if key == "r" and row.pid is not None:
                self.client.stop_pid(row.pid)
                self.message = f"pid {row.pid} of {row.name} stopped: a fresh one replaces it"
            elif key == "r":
                self.client.restart_process(row.name)
                self.message = f"{row.name} restarted"
            else:
                self.client.stop_process(row.name)
                self.message = f"{row.name} stopped"
        except GafferError as exc:
            self.message = error_line("top", exc)
        self.stale.add(row.name)

    def _index(self, rows: list[Row]) -> int | None:
        if not rows:
            return None
        keys = [row.key for row in rows]
        if self.selected in keys:
            return keys.index(self.selected)
        self.selected = rows[0].key
        return 0

    # -- the screen ----------------------------------------------------------

    def frame(self, height: int) -> RenderableType:
        from rich.console import Group
        from rich.text import Text

        now = time.time()
        rows = self.board.rows(self.sort, now)
        index = self._index(rows)
        room = max(1, height - 6)  # header, the table's head and rule, footer
        first = 0 if index is None or index < room else index - room + 1
        shown = rows[first : first + room]
        selected = None if index is None else index - first
        pids = sum(1 for row in rows if row.pid is not None)
        header = Text(
            f"gafferctl top  {self.client.url}  {len(self.board.templates)} templates, "
            f"{pids} pids  sort: {self.sort}  {time.strftime('%H:%M:%S')}",
            style="bold",
        )
        keys = "q quit  \u2191\u2193 select  s/c/m/n sort  r restart  k stop"
        footer = Text(f"{keys}  {self.message}".rstrip(), style="dim" if not self.message else "")
        return Group(header, table(shown, now, selected, expand=True), footer)

    def run(self) -> int:
        from rich.console import Console
        from rich.live import Live

        watch = self.client.watch(".", heartbeat=HEARTBEAT)  # first: no change is missed
        self._pump("event", "watch", watch)
        self.board = load_board(self.client)
        self._follow(self.board.rows())
        console = Console(file=self.out)
        with (
            _keyboard(self.inbox),
            Live(console=console, screen=True, auto_refresh=False, redirect_stderr=False) as live,
        ):
            live.update(self.frame(console.size.height), refresh=True)
            drawn, dirty = time.monotonic(), False
            while not self.done:
                wait = (MIN_REDRAW if dirty else IDLE_REDRAW) - (time.monotonic() - drawn)
                for message in _drain(self.inbox, max(0.0, wait)):
                    dirty = self.handle(*message) or dirty
                    if self.done:
                        break
                if self.done:
                    break
                due = time.monotonic() - drawn >= (MIN_REDRAW if dirty else IDLE_REDRAW)
                if due:
                    for name in sorted(self.stale):
                        self._refresh(name)
                    self.stale.clear()
                    live.update(self.frame(console.size.height), refresh=True)
                    drawn, dirty = time.monotonic(), False
        return EXIT_OK


def _drain(
    inbox: queue.Queue[tuple[str, Any, Any]], timeout: float
) -> Iterator[tuple[str, Any, Any]]:
    """The next message (waiting up to ``timeout``), then every one already queued."""
    try:
        yield inbox.get(timeout=timeout) if timeout > 0 else inbox.get_nowait()
    except queue.Empty:
        return
    for _ in range(10_000):  # a bound: a flood of stat events still lets the screen redraw
        try:
            yield inbox.get_nowait()
        except queue.Empty:
            return


@contextlib.contextmanager
def _keyboard(inbox: queue.Queue[tuple[str, Any, Any]]) -> Iterator[None]:
    """Keys from the terminal (cbreak: one key at a time, no echo) as ``key`` messages."""
    stdin = sys.stdin
    if stdin is None or not stdin.isatty():
        yield
        return
    import termios
    import tty

    fd = stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)

    def read() -> None:
        while True:
            try:
                data = os.read(fd, 64).decode("utf-8", "replace")
            except OSError:
                return
            if not data:
                return
            for key in _keys(data):
                inbox.put(("key", None, key))

    threading.Thread(target=read, name="top-keys", daemon=True).start()
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _keys(data: str) -> Iterator[str]:
    """Split what one read returned into keys: arrows by their escape sequence, else characters."""
    while data:
        for sequence, name in ARROWS.items():
            if data.startswith(sequence):
                yield name
                data = data[len(sequence) :]
                break
        else:
            yield data[0]
            data = data[1:]
