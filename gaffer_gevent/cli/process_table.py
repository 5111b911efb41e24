"""One row per pid, as ``supervisorctl status`` and ``pm2 ls`` print them.

``gafferctl status`` (every template) and ``gaffer ps`` (one app's templates)
print the same table from the same two answers: ``/stats`` (the pids, their
start time, restarts, CPU and memory) and ``/status/<name>`` (the template's
state, which says ``backoff`` or ``failed`` when no pid runs).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any, TypedDict

HEADER = ("NAME", "PID", "OS_PID", "STATE", "RESTARTS", "UPTIME", "CPU", "MEM")
#: States a template row is printed for even while some of its pids run.
TROUBLE = ("backoff", "failed")


class Row(TypedDict):
    """One line of the table; ``--json`` prints these. A template row has no pid."""

    name: str
    pid: int | None
    os_pid: int | None
    state: str
    restarts: int
    started_at: float | None
    #: Seconds since the pid started, when gafferd reports its start.
    uptime: float | None
    #: CPU percent since gafferd's previous reading of this pid.
    cpu: Any
    #: Resident memory as gafferd reports it (``"9M"``).
    mem: Any


def template_rows(
    name: str,
    status: Mapping[str, Any],
    stats: Iterable[Mapping[str, Any]],
    *,
    numbered: bool = False,
    now: float | None = None,
) -> list[Row]:
    """Rows of one template: one per running pid, and one for the template itself
    when none runs or it is in a crash loop. ``numbered`` names pids ``web.1``, ``web.2``."""
    now = time.time() if now is None else now
    procs = list(stats)
    state = status.get("state") or ("running" if status.get("active") else "stopped")
    rows: list[Row] = []
    if not procs or state in TROUBLE:
        rows.append(
            Row(name=name, pid=None, os_pid=None, state=state,
                restarts=int(status.get("restarts") or 0),
                started_at=None, uptime=None, cpu=None, mem=None)
        )  # fmt: skip
    for n, proc in enumerate(procs, 1):
        started = proc.get("started_at")
        started = started if isinstance(started, int | float) else None
        rows.append(
            Row(
                name=f"{name}.{n}" if numbered else name,
                pid=proc.get("id"),
                os_pid=proc.get("pid"),
                state=str(proc.get("state") or "running"),
                restarts=int(proc.get("restarts") or 0),
                started_at=started,
                uptime=None if started is None else round(max(0.0, now - started), 1),
                cpu=proc.get("cpu"),
                mem=proc.get("mem_info1"),
            )
        )
    return rows


def duration(seconds: float, *, short_days: bool = False) -> str:
    """``M:SS``, ``H:MM:SS``, or ``Nd H:MM:SS`` past a day (``NdHHh`` with ``short_days``,
    for a narrow column)."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d{hours:02d}h" if short_days else f"{days}d {hours}:{minutes:02d}:{secs:02d}"
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def cells(row: Row) -> tuple[str, ...]:
    """The row as text: ``-`` where a template row has no value."""
    cpu = row["cpu"]
    return (
        row["name"],
        "-" if row["pid"] is None else str(row["pid"]),
        "-" if row["os_pid"] is None else str(row["os_pid"]),
        row["state"],
        str(row["restarts"]),
        "-" if row["uptime"] is None else duration(row["uptime"]),
        f"{cpu:.1f}%" if isinstance(cpu, int | float) else str(cpu or "-"),
        str(row["mem"] or "-"),
    )


def render(rows: Iterable[Row]) -> str:
    """The header and one aligned line per row (two spaces between columns)."""
    table = [HEADER, *(cells(row) for row in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADER))]
    lines = ("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in table)
    return "".join(line.rstrip() + "\n" for line in lines)
