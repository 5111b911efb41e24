"""Greenlets that belong to a group: the two things ``gevent.pool.Group`` lacks.

Every component that starts greenlets keeps them in one ``Group`` and kills
it when it stops, so nothing of ours outlives its owner (issue 14, point 3).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gevent
from gevent.pool import Group


def spawn_later_in(
    group: Group, delay: float, run: Callable[..., Any], *args: Any
) -> gevent.Greenlet[Any]:
    """A timer greenlet that belongs to ``group`` (``Group`` has no ``spawn_later``)."""
    timer: gevent.Greenlet[Any] = gevent.Greenlet(run, *args)
    group.add(timer)
    timer.start_later(delay)
    return timer


def kill_others(group: Group, timeout: float | None = 1.0) -> None:
    """Kill every greenlet of ``group`` but the caller (which may be one of them).

    ``Group.kill`` would kill the caller too and then wait for itself. The dead
    are discarded at once: a timer killed before it started leaves the group only
    when its links run, a loop turn later.
    """
    current = gevent.getcurrent()
    others = [g for g in group if g is not current]
    if others:
        gevent.killall(others, block=True, timeout=timeout)
    for g in others:
        if g.dead:
            group.discard(g)
