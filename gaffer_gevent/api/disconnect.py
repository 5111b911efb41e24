"""Notice a streaming client that went away without waiting for the next write.

pywsgi only notices a dead client when a write fails, so an idle feed would
hold its subscription until the next heartbeat. gafferd's handler puts the
client socket in the environ; a small greenlet peeks at it and calls back as
soon as the peer closes.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import gevent
from flask import request

ENVIRON_KEY = "gaffer.socket"


def watch_disconnect(on_gone: Callable[[], None]) -> gevent.Greenlet[Any] | None:
    """Call ``on_gone`` when the client closes; kill the returned greenlet when done."""
    sock = request.environ.get(ENVIRON_KEY)
    if sock is None:
        return None

    def peek() -> None:
        try:
            data = sock.recv(1, socket.MSG_PEEK)
        except OSError:
            data = b""
        if not data:
            on_gone()

    return gevent.spawn(peek)
