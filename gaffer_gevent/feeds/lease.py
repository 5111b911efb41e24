"""The one owner of a feed's subscription: released exactly once, however the client leaves.

A client can leave a feed in many ways: it disconnects (noticed by a watcher
on its socket, or by a failed write), its token is revoked, the stream or the
process ends, the body is never iterated at all (a HEAD request, a client gone
before the first write), or something raises. Each of those used to call its
own cleanup. Now each only asks the feed's ``Lease`` to ``release``; the lease
runs the release and its hooks once, the first time, and every later call is
a no-op. The feed's body holds the lease as a context manager
(``with lease as sub:``), so the end of the body is one more such call, never
a forgotten one.

``open_leases()`` lists the leases not yet released: a test (or a debugger)
sees a feed that outlived its client.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import TracebackType
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Leases not yet released, in the order they were taken.
_OPEN: dict[Lease[Any], None] = {}


class Lease(Generic[T]):
    """Holds ``resource`` (a subscription, an event queue, a stop event) until released.

    ``release`` ends the subscription (it should also wake a body waiting on
    it, so the body ends too); hooks added with ``on_release`` undo what was
    set up around the feed (a disconnect watcher, a session entry). Both run
    exactly once, whichever greenlet asks first.
    """

    def __init__(self, resource: T, release: Callable[[], None], what: str = "") -> None:
        self.resource = resource
        #: What this feeds (``stream``, ``watch``, ``stats``, ``logs``, ``websocket``).
        self.what = what
        self.released = False
        self._release = release
        self._hooks: list[Callable[[], None]] = []
        _OPEN[self] = None

    def on_release(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` once the lease is released (at once if it already is)."""
        if self.released:
            hook()
        else:
            self._hooks.append(hook)

    def release(self) -> None:
        """End the subscription and run the hooks; only the first call does anything."""
        if self.released:
            return
        self.released = True
        _OPEN.pop(self, None)
        hooks, self._hooks = self._hooks, []
        try:
            self._release()
        finally:
            for hook in hooks:
                try:
                    hook()
                except Exception:  # one failing hook must not keep the others from running
                    log.exception("releasing a %s feed: %r failed", self.what or "", hook)

    def __enter__(self) -> T:
        return self.resource

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        state = "released" if self.released else "open"
        return f"<Lease {self.what or type(self.resource).__name__} {state}>"


def open_leases(what: str | None = None) -> list[Lease[Any]]:
    """The leases not released yet (only those feeding ``what``, if given)."""
    return [lease for lease in _OPEN if what is None or lease.what == what]
