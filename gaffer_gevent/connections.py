"""Open HTTP connections: deadlines while gafferd waits for a client, a cap, room made at limits.

A client holds a descriptor and a greenlet for as long as it keeps its
connection, whether or not it ever finishes a request. Without bounds, 500
idle and 50 slowloris connections were all still open after a minute, and
with ``ulimit -n 256`` 300 idle sockets left no descriptor for ``/ping``
(accept failed with EMFILE, and gevent's server retried, printing a traceback
each time). So:

- while gafferd waits for the client (TLS handshake, request line, headers,
  or the next request on a kept-alive connection), a ``Deadline`` runs:
  ``header_timeout`` from connect to the end of the headers,
  ``keepalive_timeout`` between two requests;
- connections count against ``max_connections``: one gevent ``Pool`` shared
  by every endpoint of a gafferd;
- at a limit (the cap, or no descriptor left) the connection that has waited
  longest for its client is closed to make room. Only waiting connections are
  candidates: a request being answered, a feed or a websocket is never cut.
  With none waiting, a new connection waits for a slot (the cap), or, out of
  descriptors, is accepted on one reserved descriptor and closed at once, so
  its client hears "no" instead of hanging in the backlog.
"""

from __future__ import annotations

import errno
import os
import posix
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import gevent
from gevent.pool import Pool

from .config import ConnectionLimits

#: accept() errors that mean "no descriptor (or socket memory) left", not "no client".
OUT_OF_DESCRIPTORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
#: Seconds between two log lines about running out of descriptors.
LOG_EVERY = 10.0


class Deadline(gevent.Timeout):  # type: ignore[misc]
    """The time a connection has to send what gafferd waits for.

    Raised into the connection's greenlet when it runs out, or earlier when
    the connection is closed to make room. A ``BaseException``, like every
    ``gevent.Timeout``: the handler catches it where it reads.
    """


class Connections:
    """The connections of one gafferd: their cap, their deadlines, and who goes first at a limit."""

    def __init__(self, limits: ConnectionLimits, log: Callable[[str], None] | None = None) -> None:
        self.limits = limits
        self.pool = Pool(limits.max_connections)
        self.log = log or (lambda message: None)
        # Greenlets waiting for their client, the longest waiting first, with their deadline.
        self._waiting: OrderedDict[Any, Deadline] = OrderedDict()
        self._reserve: int | None = _reserve_descriptor()
        self._logged_at = -LOG_EVERY
        self.closed_to_make_room = 0
        self.refused = 0

    @property
    def waiting(self) -> int:
        """How many connections are waiting for their client right now."""
        return len(self._waiting)

    def expect(self, seconds: float) -> None:
        """The current connection waits for its client now, for ``seconds`` at most.

        Until ``received`` it may be closed to make room. A new ``expect``
        replaces the running deadline and makes this the newest waiter.
        """
        self.received()
        deadline = Deadline(seconds)
        deadline.start()
        self._waiting[gevent.getcurrent()] = deadline

    def received(self) -> None:
        """What the current connection waited for arrived: no deadline, no closing it now."""
        deadline = self._waiting.pop(gevent.getcurrent(), None)
        if deadline is not None:
            deadline.close()

    def is_waiting(self) -> bool:
        return gevent.getcurrent() in self._waiting

    def make_room(self) -> bool:
        """Close the connection that has waited longest for its client; False when none waits.

        The deadline is thrown into that greenlet from the hub, as a running-out
        ``gevent.Timeout`` would be: there it is certainly still blocked in its
        read, so the throw lands where the handler catches it, and its
        descriptor is free when this returns. The server's accept callback
        runs in the hub; any other caller has the work done on the hub's next
        turn.
        """
        if not self._waiting:
            return False
        hub = gevent.get_hub()
        if gevent.getcurrent() is not hub:
            hub.loop.run_callback(self.make_room)
            return True
        while self._waiting:
            glet, deadline = self._waiting.popitem(last=False)
            if not glet.dead:
                self.closed_to_make_room += 1
                glet.throw(deadline)
                return True
        return False

    def close_waiting(self) -> None:
        """Close every connection that only waits for its client (at shutdown), from the hub."""
        hub = gevent.get_hub()
        if gevent.getcurrent() is not hub:
            hub.loop.run_callback(self.close_waiting)
            return
        while self.make_room():
            pass

    def starting(self) -> bool:
        """Are some accepted connections not yet running (so not yet waiting, nor closable)?

        gevent's accept loop takes up to 100 clients in one go before any of
        their greenlets runs; those may well be the idle ones to close next.
        """
        return any(glet.gr_frame is None and not glet.dead for glet in self.pool.greenlets)

    def refuse_one(self, listener: Any) -> bool:
        """Out of descriptors, nobody waiting: accept the next client on the reserve and close it.

        Returns False when that was not possible (no reserve, or no client
        left in the backlog); the caller then backs off before trying again.
        """
        if self._reserve is None:
            self._reserve = _reserve_descriptor()
            return False
        # posix.close, not os.close: gevent (>= 25.8) patches os.close to close on the
        # next loop turn, and the descriptor is needed free now.
        posix.close(self._reserve)
        try:
            fd, _ = listener._accept()
        except OSError:
            return False
        else:
            posix.close(fd)
            self.refused += 1
            return True
        finally:
            self._reserve = _reserve_descriptor()

    def out_of_descriptors(self, error: OSError) -> None:
        """Say so in gafferd's log, at most once every ``LOG_EVERY`` seconds."""
        now = time.monotonic()
        if now - self._logged_at >= LOG_EVERY:
            self._logged_at = now
            self.log(
                f"out of file descriptors ({errno.errorcode.get(error.errno or 0, error)}): "
                f"{self.closed_to_make_room} waiting connections closed and {self.refused} "
                "new ones refused so far; raise `ulimit -n` or lower max_connections"
            )

    def close(self) -> None:
        """Give the reserved descriptor back."""
        if self._reserve is not None:
            posix.close(self._reserve)
            self._reserve = None


def _reserve_descriptor() -> int | None:
    """One descriptor kept aside for accepting (and closing) a client when none is left."""
    try:
        return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
