"""Notice a streaming client that went away without waiting for the next write.

pywsgi only notices a dead client when a write fails, so an idle feed would
hold its subscription until the next heartbeat. gafferd's handler puts the
client socket in the environ; a small greenlet peeks at it and calls back as
soon as the peer closes. The watcher is killed (and waited for) when the
response closes, before pywsgi reads the next request on that socket.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

import gevent
from flask import Response, request

ENVIRON_KEY = "gaffer.socket"


def on_disconnect(response: Response, on_gone: Callable[[], None]) -> Response:
    """Call ``on_gone`` if the client closes while ``response`` streams."""
    watcher = watch_disconnect(on_gone)
    if watcher is not None:
        response.call_on_close(lambda: watcher.kill(block=True, timeout=1))
    return response


def watch_disconnect(on_gone: Callable[[], None]) -> gevent.Greenlet[None] | None:
    """A greenlet calling ``on_gone`` if the client closes; the caller kills it when done.

    Views that wait before returning (a longpoll) use it directly: nothing is
    written while they wait, so only this notices a client that left.
    """
    sock = request.environ.get(ENVIRON_KEY)
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
