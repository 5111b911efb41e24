"""``gafferctl wait NAME [--ready|--exited] [--timeout S]``: block until a template is up or
gone, for deploy scripts and CI.

``--timeout`` is gafferctl's global option (how long to wait for answers, 30 s by
default): here it is how long to wait at all. The command subscribes to the
template's events (``/watch`` as Server-Sent Events) before it reads
``GET /status/<name>``, then reads the status again after each event: nothing is
missed between the two and nothing polls. An alarm (SIGALRM) ends whatever
blocks at the timeout (exit 1).
"""

from __future__ import annotations

import argparse
import math
import signal
from typing import Any

from ..client import Status
from . import EXIT_OK, EXIT_REFUSED, UsageError
from .commands import Context

#: Seconds between the feed's heartbeats (a silent server is noticed after two missed ones).
HEARTBEAT = 30


def is_ready(status: Status) -> bool:
    """Every wanted pid runs and is ready (``ready`` when gafferd reports it; else running)."""
    info: dict[str, Any] = dict(status)
    wanted = int(info.get("max_processes") or 0)
    running = int(info.get("running") or 0)
    ready = int(info.get("ready", running))
    return wanted > 0 and running >= wanted and ready >= wanted and info.get("state") != "waiting"


def has_exited(status: Status) -> bool:
    """No pid runs and none is due: stopped, completed, or failed for good."""
    info: dict[str, Any] = dict(status)
    return not info.get("running") and info.get("state") in (None, "stopped", "completed", "failed")


def wait(ctx: Context, args: argparse.Namespace) -> int:
    """Block until a template is ready (or, with --exited, has no pid left); exit 0.

    Gives up with exit 1 after --timeout seconds (gafferctl's global option,
    default 30), or when gafferd refuses (e.g. no such template). For deploy
    scripts: gafferctl wait web --timeout 120 && ./smoke-test.
    """
    if args.ready and args.exited:
        raise UsageError("wait takes --ready or --exited, not both")
    if not math.isfinite(args.timeout) or args.timeout <= 0:
        raise UsageError("--timeout must be a finite number of seconds above 0")
    holds = has_exited if args.exited else is_ready
    status: Status | None = None
    previous = signal.signal(signal.SIGALRM, _give_up)
    signal.setitimer(signal.ITIMER_REAL, args.timeout)
    try:
        with ctx.client.watch(f"proc.{args.name}", heartbeat=HEARTBEAT) as feed:
            status = ctx.client.status(args.name)
            events = iter(feed)
            while not holds(status):
                ended = next(events, None) is None  # an event of the template: look again
                status = ctx.client.status(args.name)
                if ended:  # the server ended the feed (it is shutting down)
                    break
            if holds(status):
                ctx.emit("ok", {"ok": True, "status": dict(status)})
                return EXIT_OK
            return _timed_out(ctx, args, status)
    except _TimedOut:
        return _timed_out(ctx, args, status)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class _TimedOut(BaseException):
    """Raised by the alarm in whatever blocks (a BaseException: nothing on the way catches it)."""


def _give_up(signum: int, frame: object) -> None:
    raise _TimedOut()


def _timed_out(ctx: Context, args: argparse.Namespace, status: Status | None) -> int:
    what = "exited" if args.exited else "ready"
    info: dict[str, Any] = dict(status or {})
    ctx.emit(
        f"timeout: {args.name} not {what} ({info.get('state', 'unknown')})",
        {"ok": False, "error": "timeout", "status": info},
    )
    return EXIT_REFUSED
