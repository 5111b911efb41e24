"""Streamed responses: served without extra layers, always released, freed on disconnect.

pywsgi only notices a dead client when a write fails, so an idle feed would
hold its subscription until the next heartbeat. gafferd's handler puts the
client socket in the environ; a small greenlet peeks at it and calls back as
soon as the peer closes. The watcher is killed (and waited for) when the
response closes, before pywsgi reads the next request on that socket.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import gevent
from flask import Response, request

from ..environ import SOCKET_KEY
from .guard import track_session
from .params import STREAM_HEADERS


class StreamBody:
    """A WSGI body that pywsgi iterates directly and that always releases its feed.

    The server gets the feed's own generator from ``__iter__``: no Werkzeug or
    Flask iterator sits between it and the socket, which a hundred busy feeds
    feel. ``close`` runs the cleanups even when the generator never started
    (a HEAD request, a client gone before the first write), which closing the
    generator alone would not.
    """

    def __init__(self, frames: Iterator[bytes], *cleanups: Callable[[], None]) -> None:
        self.frames = frames
        self.cleanups = cleanups

    def __iter__(self) -> Iterator[bytes]:
        return self.frames

    def close(self) -> None:
        try:
            close = getattr(self.frames, "close", None)
            if close is not None:
                close()
        finally:
            for cleanup in self.cleanups:
                cleanup()


def streamed(frames: Iterator[bytes], release: Callable[[], None], *, mimetype: str) -> Response:
    """A streaming response of ``frames``; ``release`` runs when the client leaves or it ends.

    ``release`` must be idempotent: it runs from the disconnect watcher and again on close.
    """
    watcher = watch_disconnect(release)
    cleanups = [release, track_session(release)]
    if watcher is not None:
        cleanups.insert(0, lambda: watcher.kill(block=True, timeout=1))
    return Response(
        StreamBody(frames, *cleanups),
        mimetype=mimetype,
        headers=STREAM_HEADERS,
        direct_passthrough=True,
    )


def watch_disconnect(on_gone: Callable[[], None]) -> gevent.Greenlet[None] | None:
    """A greenlet calling ``on_gone`` if the client closes; the caller kills it when done.

    Views that wait before returning (a longpoll) use it directly: nothing is
    written while they wait, so only this notices a client that left.
    """
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
