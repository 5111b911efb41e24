"""gafferctl's feed commands: watch events, tail output, send to stdin."""

from __future__ import annotations

import argparse
import sys
import time

from ...patterns import matches
from .. import EXIT_OK, colour_for, paint, want_colour
from . import OK, Context


def is_twin(pattern: str, event: str) -> bool:
    """Whether ``event`` is the ``proc.<name>.<event>`` twin of a global event ``pattern`` also
    selects: gafferd publishes both, and a watch of everything would print each one twice."""
    prefix, _, rest = event.partition(".")
    _, _, action = rest.partition(".")  # template names hold no dot
    return prefix == "proc" and bool(action) and matches(pattern, action)


def watch(ctx: Context, args: argparse.Namespace) -> int:
    """Print events as they happen until Ctrl-C: "HH:MM:SS name | event name ...".

    PATTERN follows the bus rules: "." is everything, "spawn" only the global
    spawn events, "proc.web" every event of template web. Each event is
    printed once: the proc.<name>.<event> twin of a global event the pattern
    also selects is left out. With --json each event is printed as one JSON
    object per line.
    """
    colour = want_colour(args.colour, ctx.out)
    with ctx.client.watch(args.pattern, heartbeat=args.heartbeat) as feed:
        for event, payload in feed:
            if is_twin(args.pattern, event):
                continue
            if ctx.as_json:
                ctx.emit(payload)
                continue
            name = str(payload.get("name", "-"))
            details = " ".join(
                f"{key}={value}"
                for key, value in payload.items()
                if key not in ("event", "name", "detached")
            )
            line = f"{time.strftime('%H:%M:%S')} {name} | {event} {name} {details}".rstrip()
            ctx.emit(paint(line, colour_for(name), colour))
    return EXIT_OK


def tail(ctx: Context, args: argparse.Namespace) -> int:
    """Follow a process's output until it exits or Ctrl-C.

    The continuous feed (default) writes the output exactly as the process
    wrote it; the eventsource feed prints one line per chunk read from the
    pipe. With --json, one {"event", "data", "id"} object per chunk.
    """
    label = args.label
    if label is None:
        labels = ctx.client.get_process_by_pid(args.pid).get("redirect_output") or ["stdout"]
        label = labels[0]
    extra = {} if args.lines is None else {"tail": args.lines}
    if args.feed == "eventsource":
        feed = ctx.client.stream(args.pid, label, "eventsource", heartbeat=args.heartbeat, **extra)
        with feed as events:
            for event in events:
                data = {"event": event.event, "data": event.data, "id": event.id}
                ctx.emit(event.data, data)
        return EXIT_OK
    with ctx.client.follow(args.pid, label, heartbeat=args.heartbeat, tail=args.lines) as chunks:
        for chunk in chunks:
            if ctx.as_json:
                ctx.emit(None, {"event": label, "data": chunk.decode("utf-8", "replace")})
            else:
                ctx.out.buffer.write(chunk)
                ctx.out.flush()
    return EXIT_OK


def send(ctx: Context, args: argparse.Namespace) -> int:
    """Write DATA and a newline (or all of stdin) to a process's stdin."""
    if args.data is None:
        payload = sys.stdin.buffer.read()
    else:
        payload = args.data.encode() + (b"" if args.no_newline else b"\n")
    ctx.client.write_stdin(args.pid, payload)
    ctx.emit("ok", OK)
    return EXIT_OK
