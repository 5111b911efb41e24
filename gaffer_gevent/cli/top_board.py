"""What ``gafferctl top`` shows, as plain data: one row per pid (or per idle template), sorted.

Pure: fed with gafferd's JSON (``/stats`` bodies, ``stat`` events, ``/watch``
events, output lines) and a clock passed in, it knows nothing of sockets,
threads or terminals, so the rules (whole-tree memory, what an event makes
stale, how rows sort) are tested without a server.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .process_table import duration

#: Sort orders, in the order the ``s`` key cycles through them.
SORT_KEYS = ("name", "cpu", "mem", "restarts", "uptime")
#: Keys that pick a sort order directly.
SORT_LETTERS = {"n": "name", "c": "cpu", "m": "mem"}

#: ``bytes2human``'s units (powers of 1024) read back into bytes.
_HUMAN = re.compile(r"^(\d+(?:\.\d+)?)([KMGTPEZY]?)B?$")
_UNITS = "KMGTPEZY"

#: Events of the bus whose template's rows must be read again (the ``proc.*`` twins are skipped).
STALE_EVENTS = frozenset(
    {
        "create", "update", "start", "stop", "spawn", "reap", "exit", "stop_pid",
        "spawn_error", "backoff", "failed", "flap",
    }
)  # fmt: skip


def human_bytes(text: object) -> int | None:
    """``"9M"`` -> 9437184 (what gafferd's ``mem_info1`` says); None for ``N/A`` or garbage."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    match = _HUMAN.match(str(text).strip())
    if match is None:
        return None
    number, unit = match.groups()
    scale = 1 << ((_UNITS.index(unit) + 1) * 10) if unit else 1
    return int(float(number) * scale)


def tree_figures(info: Mapping[str, Any]) -> tuple[float | None, int | None]:
    """CPU % and RSS bytes of a process and all its descendants (``children`` nest).

    A figure gafferd could not read (``N/A``) counts as nothing for a child and
    makes the whole figure unknown only when the process itself has none.
    """
    cpu = info.get("cpu")
    rss = human_bytes(info.get("rss", info.get("mem_info1")))
    total_cpu = float(cpu) if isinstance(cpu, int | float) else None
    total_rss = rss
    for child in info.get("children") or []:
        if not isinstance(child, Mapping):
            continue
        child_cpu, child_rss = tree_figures(child)
        if total_cpu is not None and child_cpu is not None:
            total_cpu += child_cpu
        if total_rss is not None and child_rss is not None:
            total_rss += child_rss
    return total_cpu, total_rss


@dataclass
class Row:
    """One line of the table: a running pid, or a template with none running (``pid`` None)."""

    name: str
    pid: int | None = None
    os_pid: int | None = None
    state: str = "running"
    cpu: float | None = None
    rss: int | None = None
    restarts: int = 0
    started_at: float | None = None
    output: str = ""

    def uptime(self, now: float) -> float | None:
        return None if self.started_at is None else max(0.0, now - self.started_at)

    @property
    def key(self) -> tuple[str, int | None]:
        """What stays the same for this row across redraws (the selection follows it)."""
        return self.name, self.pid


@dataclass
class Template:
    state: str = "stopped"
    restarts: int = 0
    labels: list[str] = field(default_factory=list)
    processes: dict[int, Row] = field(default_factory=dict)


class Board:
    """Templates and their processes as gafferd last described them."""

    def __init__(self) -> None:
        self.templates: dict[str, Template] = {}
        self._by_os_pid: dict[int, Row] = {}

    # -- what gafferd said ---------------------------------------------------

    def set_template(
        self, name: str, stats: Mapping[str, Any], status: Mapping[str, Any] | None = None
    ) -> list[Row]:
        """Replace ``name``'s processes with a ``/stats/<name>`` body; returns the new ones."""
        template = self.templates.setdefault(name, Template())
        if status is not None:
            template.state = str(
                status.get("state") or ("running" if status.get("active") else "stopped")
            )
            template.restarts = int(status.get("restarts") or 0)
        old = template.processes
        template.processes = {}
        added: list[Row] = []
        for info in stats.get("stats") or []:
            if not isinstance(info, Mapping) or not isinstance(info.get("id"), int):
                continue
            pid = int(info["id"])
            row = old.pop(pid, None)
            if row is None:
                row = Row(name, pid)
                added.append(row)
            row.os_pid = info.get("pid") if isinstance(info.get("pid"), int) else row.os_pid
            row.started_at = _number(info.get("started_at"), row.started_at)
            row.restarts = int(info.get("restarts") or 0)
            row.cpu, row.rss = tree_figures(info)
            template.processes[pid] = row
            if row.os_pid is not None:
                self._by_os_pid[row.os_pid] = row
        for gone in old.values():
            self._by_os_pid.pop(gone.os_pid or -1, None)
        return added

    def set_labels(self, name: str, labels: Iterable[str]) -> None:
        self.templates.setdefault(name, Template()).labels = [str(label) for label in labels]

    def remove_template(self, name: str) -> None:
        template = self.templates.pop(name, None)
        for row in template.processes.values() if template else ():
            self._by_os_pid.pop(row.os_pid or -1, None)

    def apply_stat(self, info: Mapping[str, Any]) -> bool:
        """A ``stat`` event (keyed by OS pid); True if it changed a row."""
        os_pid = info.get("pid")
        row = self._by_os_pid.get(os_pid) if isinstance(os_pid, int) else None
        if row is None:
            return False
        row.cpu, row.rss = tree_figures(info)
        return True

    def apply_event(self, event: str, payload: Mapping[str, Any]) -> str | None:
        """A ``/watch`` event; returns the template to read again, if any."""
        name = payload.get("name")
        if not isinstance(name, str) or "." in event:
            return None  # the proc.<name>.<event> twin of an event already seen
        if event == "delete":
            self.remove_template(name)
            return None
        if event == "stop_pid":
            row = self.templates.get(name, Template()).processes.get(payload.get("pid", -1))
            if row is not None:
                row.state = "stopping"
        return name if event in STALE_EVENTS else None

    def set_output(self, pid: int, line: str) -> None:
        for template in self.templates.values():
            row = template.processes.get(pid)
            if row is not None:
                row.output = line
                return

    # -- what the table shows ------------------------------------------------

    def rows(self, sort: str = "name", now: float = 0.0) -> list[Row]:
        """Every pid, plus one row per template that runs none; sorted by ``sort``."""
        rows: list[Row] = []
        for name, template in self.templates.items():
            if template.processes:
                rows.extend(template.processes.values())
            else:
                rows.append(Row(name, state=template.state, restarts=template.restarts))
        return sorted(rows, key=lambda row: _sort_key(row, sort, now))


def _sort_key(row: Row, sort: str, now: float) -> tuple[Any, ...]:
    """Biggest first for figures (what top users look for), then by name and pid."""
    tie = (row.name, row.pid if row.pid is not None else -1)
    if sort == "cpu":
        return (-(row.cpu or 0.0), *tie)
    if sort == "mem":
        return (-(row.rss or 0), *tie)
    if sort == "restarts":
        return (-row.restarts, *tie)
    if sort == "uptime":
        return (-(row.uptime(now) or 0.0), *tie)
    return tie


def _number(value: object, default: float | None) -> float | None:
    return (
        float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default
    )


def last_line(previous: str, chunk: bytes) -> tuple[str, str]:
    """(the last complete non-blank line, the unfinished rest) after ``chunk``.

    ``previous`` is what ``last_line`` returned as the rest last time. A line
    still being written is shown only once it ends, so a progress bar's
    carriage returns do not make the column flicker.
    """
    text = previous + chunk.decode("utf-8", "replace")
    *lines, rest = text.replace("\r", "\n").split("\n")
    complete = [line for line in lines if line.strip()]
    return (complete[-1] if complete else ""), rest[-4096:]


def format_bytes(value: int | None) -> str:
    if value is None:
        return "-"
    size = float(value)
    for unit in ("B", "K", "M", "G", "T"):
        if size < 1024 or unit == "T":
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1024
    return "-"  # pragma: no cover


def format_uptime(seconds: float | None) -> str:
    return "-" if seconds is None else duration(seconds, short_days=True)
