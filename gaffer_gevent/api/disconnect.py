"""Feeds over HTTP: served without extra layers, released through their lease when the client
leaves.

pywsgi only notices a dead client when a write fails, so an idle feed would
hold its subscription until the next heartbeat. gafferd's handler puts the
client socket in the environ; a small greenlet peeks at it and asks the
feed's lease to release as soon as the peer closes. A revoked token asks the
same. The lease releases once, and then forgets the session and kills the
watcher (waiting for it), before pywsgi reads the next request on that socket.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import gevent
from flask import Response, request

from ..environ import SOCKET_KEY
from ..feeds import STREAM_HEADERS, Lease
from .guard import track_session


class StreamBody:
    """A WSGI body that pywsgi iterates directly and that always releases its feed.

    The server gets the feed's own generator from ``__iter__``: no Werkzeug or
    Flask iterator sits between it and the socket, which a hundred busy feeds
    feel. ``close`` releases the lease even when the generator never started
    (a HEAD request, a client gone before the first write), which closing the
    generator alone would not.
    """

    def __init__(self, frames: Iterator[bytes], lease: Lease[Any]) -> None:
        self.frames = frames
        self.lease = lease

    def __iter__(self) -> Iterator[bytes]:
        return self.frames

    def close(self) -> None:
        try:
            close = getattr(self.frames, "close", None)
            if close is not None:
                close()
        finally:
            self.lease.release()


def streamed(frames: Iterator[bytes], lease: Lease[Any], *, mimetype: str) -> Response:
    """A streaming response of ``frames``, whose ``lease`` is released when the client leaves."""
    guard(lease)
    return Response(
        StreamBody(frames, lease),
        mimetype=mimetype,
        headers=STREAM_HEADERS,
        direct_passthrough=True,
    )


def guard(lease: Lease[Any]) -> None:
    """Let a client that closes its socket, or whose token is removed, release ``lease``.

    Views that wait before returning (a longpoll) use it directly: nothing is
    written while they wait, so only the watcher notices a client that left.
    """
    lease.on_release(track_session(lease.release))
    watcher = watch_disconnect(lease.release)
    if watcher is not None:
        lease.on_release(lambda: _stop(watcher))


def _stop(watcher: gevent.Greenlet[None]) -> None:
    current = gevent.getcurrent()
    if watcher is not current:  # else it released the lease itself, and is ending
        watcher.kill(block=current is not gevent.get_hub(), timeout=1)


def watch_disconnect(on_gone: Callable[[], None]) -> gevent.Greenlet[None] | None:
    """A greenlet calling ``on_gone`` if the client closes; the caller kills it when done."""
    sock = request.environ.get(SOCKET_KEY)
    if sock is None:
        return None  # not served by gafferd's handler: heartbeats will notice

    def peek() -> None:
        try:
            data = sock.recv(1, socket.MSG_PEEK)
        except OSError:
            data = b""
        if not data:
            on_gone()

    return gevent.spawn(peek)
