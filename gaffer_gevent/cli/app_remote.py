"""gaffer's commands on a gafferd: load and unload the app, scale it, list its processes."""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import TYPE_CHECKING

from ..errors import GafferError
from ..procfile import parse_scale_op
from . import EXIT_OK, CommandFailed, UsageError
from .app import client_for, group_of, load_app, say
from .process_table import Row, render, template_rows
from .progress import progress_enabled
from .waits import load_and_wait, scale_and_wait

if TYPE_CHECKING:
    from ..client import Client

#: gaffer 0.4 tried ``g.0``, ``g.0.0``...; names may not contain dots here, so ``g-1``, ``g-2``.
LOAD_ATTEMPTS = 4


def cmd_load(args: argparse.Namespace) -> int:
    """Create the app's processes on gafferd, grouped under the app name, and start them."""
    app = load_app(args)
    base = group_of(args, app)
    with client_for(args) as client:
        existing = set(client.groups())
        group = base
        for attempt in range(1, LOAD_ATTEMPTS + 2):
            if group not in existing:
                break
            if attempt > LOAD_ATTEMPTS:
                raise CommandFailed(f"'{base}' and {LOAD_ATTEMPTS} variants are already loaded")
            group = f"{base}-{attempt}"
        bodies = {f"{group}:{p.name}": app.body(p, f"{group}:{p.name}") for p in app.ptypes}
        try:
            if args.wait:  # each type's processes started (a spinner says which, on a tty)
                load_and_wait(client, bodies, spinner=progress_enabled())
            else:
                for body in bodies.values():
                    client.create_process({**body, "start": True})
        except GafferError:
            _undo_load(client, group)
            raise
        say(f"'{group}' has been loaded in {client.url}")
    return EXIT_OK


def _undo_load(client: Client, group: str) -> None:
    """A half-loaded app is worse than none: remove what was created."""
    with contextlib.suppress(GafferError):
        client.remove_group(group)


def cmd_unload(args: argparse.Namespace) -> int:
    """Stop and remove an app's processes from gafferd."""
    group = group_of(args, None)
    with client_for(args) as client:
        if group not in client.groups():
            raise CommandFailed(f"'{group}' not found")
        client.remove_group(group)
    say(f"'{group}' unloaded")
    return EXIT_OK


def cmd_scale(args: argparse.Namespace) -> int:
    """Set (web=3), raise (web+1) or lower (web-1) the process counts of a loaded app."""
    app = load_app(args)
    words = list(args.ops)
    first = parse_scale_op(words[0])
    # The group comes first when there is more than one word and the first is not an
    # operation on a Procfile type ("shop-1" is a group loaded twice, not "shop" minus 1).
    is_group = first is None or first.name not in {p.name for p in app.ptypes}
    args.group = words.pop(0) if len(words) > 1 and is_group else None
    group = group_of(args, app)
    ops = []
    for word in words:
        op = parse_scale_op(word)
        if op is None:
            raise UsageError(f"{word!r} is not NAME=N, NAME+N or NAME-N")
        app.select(op.name)
        ops.append(op)
    with client_for(args) as client:
        for op in ops:
            name = f"{group}:{op.name}"
            sys.stdout.write(f"Scaling {op.name} processes... ")
            sys.stdout.flush()
            if op.op == "=" and args.wait:
                diff = op.count - client.status(name)["max_processes"]
                now = scale_and_wait(client, name, diff, spinner=progress_enabled())
            elif op.op == "=":
                current = client.status(name)["max_processes"]
                diff = op.count - current
                change = client.add if diff > 0 else client.sub
                now = change(name, abs(diff)) if diff else current
            elif args.wait:  # until the processes started or exited (a spinner on a tty)
                delta = op.count if op.op == "+" else -op.count
                now = scale_and_wait(client, name, delta, spinner=progress_enabled())
            else:
                now = (client.add if op.op == "+" else client.sub)(name, op.count)
            say(f"done, now running {now}")
    return EXIT_OK


def cmd_ps(args: argparse.Namespace) -> int:
    """Show the app's processes on gafferd: name, pid, os_pid, state, restarts, uptime, cpu, mem.

    The table of ``gafferctl status``, for this app's types only: a type with no
    process running, or in a crash loop, gets a row of its own saying ``stopped``,
    ``backoff`` (a respawn waits) or ``failed`` (given up), with its restart count.
    MEM is the resident memory.
    """
    app = load_app(args)
    group = group_of(args, app)
    rows: list[Row] = []
    with client_for(args) as client:
        names = set(client.get_group(group))
        for ptype in app.ptypes:
            name = f"{group}:{ptype.name}"
            if name not in names:
                continue
            procs = client.stats(name).get("stats") or []
            rows.extend(template_rows(ptype.name, client.status(name), procs, numbered=True))
    sys.stdout.write(render(rows))
    return EXIT_OK
