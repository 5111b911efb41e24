"""The event bus: publish/subscribe on dotted event names, delivered in order.

Publishing never blocks and never runs listeners inline: events go into one
queue drained by a dispatcher greenlet, so listeners see them on a later loop
iteration and always in publish order (spec 6.2). A listener that raises is
logged and kept; feeds use bounded ``EventQueue`` subscriptions so a slow HTTP
client can never hold up the bus.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any

import gevent
from gevent.event import Event
from gevent.pool import Group

from .patterns import matches as matches
from .patterns import normalize_pattern as normalize_pattern

log = logging.getLogger(__name__)

Listener = Callable[[str, dict[str, Any]], None]
#: Decides whether a feed may see an event (a scoped token sees only its templates' events).
EventFilter = Callable[[str, dict[str, Any]], bool]

#: Manager-level event names (spec 6.1); ``proc.<name>.<event>`` twins exist for some.
#: Ours: ``spawn_error``; ``backoff`` (a respawn waits ``delay`` s), ``failed`` (gave up on a
#: crash loop), ``reload_conflict`` (a SIGHUP left an HTTP-created template in place),
#: ``orphans`` (what a crashed manager left was stopped); issue 15: ``waiting`` (depends_on
#: does not hold yet), ``ready``, ``completed``/``failed`` (a pid of restart = never|on-failure
#: exited for good), ``rollout_done``/``rollout_aborted`` (a rolling restart ended).
MANAGER_EVENTS = (
    "create", "start", "stop", "update", "delete", "spawn", "reap", "exit", "stop_pid", "flap",
    "spawn_error", "backoff", "failed", "reload_conflict", "orphans",
    "waiting", "ready", "unhealthy", "completed", "rollout_done", "rollout_aborted",
)  # fmt: skip
#: Events that also have a per-template ``proc.<name>.<event>`` twin.
PROC_EVENTS = (
    "start", "stop", "spawn", "reap", "exit", "stop_pid", "spawn_error", "backoff", "failed",
    "waiting", "ready", "unhealthy", "completed", "rollout_done", "rollout_aborted",
)  # fmt: skip


class EventQueue:
    """A bounded queue of events for one feed; overflowing drops the oldest and counts it."""

    def __init__(
        self, bus: EventBus, pattern: str, maxsize: int = 1024, accept: EventFilter | None = None
    ) -> None:
        self.bus = bus
        self.accept = accept
        self.pattern = normalize_pattern(pattern)
        self.maxsize = maxsize
        self.dropped = 0
        self.closed = False
        self._items: deque[tuple[str, dict[str, Any]]] = deque()
        self._ready = Event()

    def __call__(self, event: str, payload: dict[str, Any]) -> None:
        if self.accept is not None and not self.accept(event, payload):
            return
        if len(self._items) >= self.maxsize:
            self._items.popleft()
            self.dropped += 1
        self._items.append((event, payload))
        self._ready.set()

    def get(self, timeout: float | None) -> tuple[str, dict[str, Any]] | None:
        """The next event, or None on timeout or when closed and empty."""
        if not self._items and not self.closed:
            self._ready.clear()
            self._ready.wait(timeout)
        return self._items.popleft() if self._items else None

    def close(self) -> None:
        """Stop receiving events; a waiting ``get`` returns."""
        if not self.closed:
            self.closed = True
            self.bus.unsubscribe(self.pattern, self)
            self._ready.set()


class EventBus:
    """Dotted-pattern pub/sub with one dispatcher greenlet keeping publish order."""

    def __init__(self) -> None:
        self._listeners: dict[str, list[Listener]] = {}
        self._pending: deque[tuple[str, dict[str, Any]]] = deque()
        self._wakeup = Event()
        self._dispatcher: gevent.Greenlet[Any] | None = None
        #: The bus's greenlets (the dispatcher): ``close`` ends them.
        self._greenlets = Group()

    def subscribe(self, pattern: str, listener: Listener) -> None:
        self._listeners.setdefault(normalize_pattern(pattern), []).append(listener)

    def unsubscribe(self, pattern: str, listener: Listener) -> None:
        pattern = normalize_pattern(pattern)
        listeners = self._listeners.get(pattern, [])
        if listener in listeners:
            listeners.remove(listener)
        if not listeners:
            self._listeners.pop(pattern, None)

    def queue(
        self, pattern: str, maxsize: int = 1024, accept: EventFilter | None = None
    ) -> EventQueue:
        """Subscribe a bounded queue (for HTTP feeds); close it to unsubscribe."""
        q = EventQueue(self, pattern, maxsize, accept)
        self.subscribe(q.pattern, q)
        return q

    @property
    def subscriber_count(self) -> int:
        return sum(len(v) for v in self._listeners.values())

    def publish(self, event: str, **fields: Any) -> None:
        """Queue ``{"event": event, **fields}`` for delivery in order."""
        self._pending.append((event, {"event": event, **fields}))
        if self._dispatcher is None or self._dispatcher.dead:
            self._dispatcher = self._greenlets.spawn(self._dispatch)
        self._wakeup.set()

    def flush(self) -> None:
        """Deliver everything pending now (used at shutdown and in tests)."""
        while self._pending:
            self._deliver(*self._pending.popleft())

    def _dispatch(self) -> None:
        while True:
            self._wakeup.wait()
            self._wakeup.clear()
            self.flush()

    def _deliver(self, event: str, payload: dict[str, Any]) -> None:
        for pattern, listeners in list(self._listeners.items()):
            if matches(pattern, event):
                for listener in list(listeners):
                    try:
                        listener(event, payload)
                    except Exception:
                        log.exception("event listener %r failed on %s", listener, event)

    def close(self) -> None:
        self.flush()
        self._greenlets.kill(block=False)
        self._dispatcher = None
