"""Rolling restarts: new pids replace old ones N at a time, each old one stopped only once
its replacement is ready.

``POST /processes/<name>/_restart?rolling=1&max_unavailable=N&ready_timeout=S``
starts a greenlet that, for each batch of N old pids, spawns N new ones, waits
(on the bus, no polling) until they are ready, then stops the N old ones. A
replacement that is not ready within ``ready_timeout`` (or exits first) aborts the
roll: the replacements of that batch are stopped, the old pids left run on, and
``proc.<name>.rollout_aborted`` says so; a finished roll publishes ``rollout_done``.
While a roll runs, the manager's reconcile leaves the template to it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gevent
from gevent.event import Event

from .dependency_gate import is_ready
from .errors import BadValue, Conflict
from .limits import MAX_READY_TIMEOUT, MAX_UNAVAILABLE, ascii_int, printable
from .process import Process

if TYPE_CHECKING:
    from .manager import Manager
    from .template_state import TemplateState

DEFAULT_READY_TIMEOUT = 30.0


@dataclass(frozen=True)
class RollSettings:
    """How many pids are replaced at once and how long a replacement may take to get ready."""

    max_unavailable: int = 1
    ready_timeout: float = DEFAULT_READY_TIMEOUT

    @classmethod
    def from_query(cls, args: Mapping[str, str]) -> RollSettings | None:
        """The settings of a ``?rolling=1`` restart, or None for an ordinary restart."""
        rolling = args.get("rolling", "").strip().lower()
        if rolling in ("", "0", "false"):
            return None
        if rolling not in ("1", "true"):
            raise BadValue(f"rolling must be 1, true, 0 or false, not {_shown(rolling)}")
        count = args.get("max_unavailable", "1")
        number = ascii_int(count)
        if number is None or not 1 <= number <= MAX_UNAVAILABLE:
            raise BadValue(
                f"max_unavailable must be an integer from 1 to {MAX_UNAVAILABLE}, "
                f"not {_shown(count)}"
            )
        text = args.get("ready_timeout", str(DEFAULT_READY_TIMEOUT))
        seconds = _seconds(text)
        if seconds is None or not 0 < seconds <= MAX_READY_TIMEOUT:  # NaN fails too
            raise BadValue(
                f"ready_timeout must be above 0 and at most {MAX_READY_TIMEOUT:g} seconds, "
                f"not {_shown(text)}"
            )
        return cls(number, seconds)


def _seconds(text: str) -> float | None:
    if not text.isascii() or "_" in text or len(text) > 32:
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _shown(value: str) -> str:
    return repr(printable(value[:40]))


def start_rolling(manager: Manager, name: str, settings: RollSettings) -> None:
    """Begin a rolling restart of ``name`` (409 while one runs); a stopped template or one
    without pids is simply restarted."""
    state = manager.state(name)
    if state.rollout is not None and not state.rollout.dead:
        raise Conflict(f"a rolling restart of {name!r} is in progress")
    if state.stopped or not state.queue:
        manager.restart_template(name)
        return
    state.rollout = manager.greenlets.spawn(_roll, manager, state, settings)


def _roll(manager: Manager, state: TemplateState, settings: RollSettings) -> None:
    name = state.template.name
    old = list(state.queue)
    replaced = 0
    try:
        while old:
            if state.stopped or manager.states.get(name) is not state:
                return
            batch, old = old[: settings.max_unavailable], old[settings.max_unavailable :]
            new = [manager.spawn_one(state) for _ in batch]
            problem = _wait_ready(manager, name, new, settings.ready_timeout)
            if problem is not None:
                for process in new:
                    manager.retire(state, process, "stop_pid")
                kept = [p.pid for p in state.queue]
                manager.publish_twin(
                    "rollout_aborted", name, reason=problem, replaced=replaced, kept=kept,
                    failed=[p.pid for p in new],
                )  # fmt: skip
                return
            for process in batch:
                if process in state.queue:
                    manager.retire(state, process, "reap")
            replaced += len(batch)
        manager.publish_twin("rollout_done", name, replaced=replaced)
    finally:
        if state.rollout is gevent.getcurrent():
            state.rollout = None
            manager.reconcile(state)


def _wait_ready(manager: Manager, name: str, new: list[Process], timeout: float) -> str | None:
    """None once every pid of ``new`` is ready; else why not (an exit, or the timeout)."""
    changed = Event()

    def listener(event: str, payload: dict[str, Any]) -> None:
        changed.set()

    pattern = f"proc.{name}"
    manager.bus.subscribe(pattern, listener)
    deadline = time.monotonic() + timeout
    try:
        while True:
            changed.clear()
            gone = [p.pid for p in new if not p.alive or p.spawn_error is not None]
            if gone:
                return f"replacement {gone[0]} exited before it was ready"
            if all(is_ready(p) for p in new):
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not changed.wait(remaining):
                waiting = [p.pid for p in new if not is_ready(p)]
                return f"replacement {waiting[0]} not ready within {timeout:g} s"
    finally:
        manager.bus.unsubscribe(pattern, listener)
