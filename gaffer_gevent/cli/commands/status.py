"""gafferctl status: one template's state in gaffer 0.4's words, or the table of every pid."""

from __future__ import annotations

import argparse

from ...client import Status
from ...errors import NotFound
from .. import EXIT_OK
from ..process_table import Row, render, template_rows
from . import Context


def status(ctx: Context, args: argparse.Namespace) -> int:
    """Print a table of every pid, or (with NAME) one template's state.

    The table has one row per pid: name, pid, os_pid, state, restarts, uptime,
    CPU and MEM (resident memory); a template with no pid running, or in a
    crash loop, has a row of its own. --json prints the same rows as a list.

    With NAME, print "active" (running), "stopped", "backoff" (a crash loop
    waits to respawn) or "failed" (given up: start or restart retries), with
    the restart count once there is one.
    """
    if args.name is None:
        rows = status_rows(ctx)
        if ctx.as_json:
            ctx.emit(None, rows)
        else:
            ctx.out.write(render(rows))
            ctx.out.flush()
        return EXIT_OK
    info = ctx.client.status(args.name)
    ctx.emit(describe_status(info), info)
    return EXIT_OK


def status_rows(ctx: Context) -> list[Row]:
    """Every template's rows, in creation order: ``/stats`` once, then each one's status."""
    rows: list[Row] = []
    for entry in ctx.client.stats():
        name = str(entry["name"])
        try:
            info = ctx.client.status(name)
        except NotFound:  # removed between the two requests
            continue
        rows.extend(template_rows(name, info, entry.get("stats") or []))
    return rows


def describe_status(info: Status) -> str:
    """``active`` / ``stopped`` as gaffer 0.4 printed, or ``backoff, 6 restarts, next in 3.2 s``."""
    state = info.get("state") or ("running" if info["active"] else "stopped")
    words = ["active" if state == "running" else state]
    restarts = info.get("restarts") or 0
    if restarts:
        words.append(f"{restarts} restart{'s' if restarts != 1 else ''}")
    retry_in = info.get("retry_in")
    if state == "backoff" and retry_in is not None:
        words.append(f"next in {retry_in:.1f} s")
    text = ", ".join(words)
    return text + ": start or restart it to try again" if state == "failed" else text
