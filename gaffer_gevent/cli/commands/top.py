"""gafferctl top: the live table (``cli/top.py``); rich is imported only for this command."""

from __future__ import annotations

import argparse

from . import Context


def top(ctx: Context, args: argparse.Namespace) -> int:
    """A live table of every template and pid (q quits); one snapshot when not a terminal.

    Columns: state, CPU %, RSS (whole process tree), restarts, uptime, last
    output line. Keys: arrows select, s cycles the sort (c cpu, m memory, n
    name), r restarts the selected pid or template, k stops its template.
    """
    from ..top import run_top

    return run_top(ctx.client, args, ctx.out)
