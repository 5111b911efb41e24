"""/wstreams/<pid>: stdin in, the first output label out, over one websocket."""

from __future__ import annotations

import contextlib
import json
import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import gevent
from flask import Blueprint, Response, current_app, request
from gevent.event import Event
from gevent.lock import Semaphore
from gevent.pool import Group
from geventwebsocket.exceptions import WebSocketError

from ..feeds import ChunkFormatter, Feed, Lease
from ..streams import Chunk, Subscription
from .extension import manager
from .guard import track_session
from .params import pid_of

if TYPE_CHECKING:
    from ..process import Process

bp = Blueprint("websocket", __name__)

#: A normal websocket close once the process is gone.
NORMAL_CLOSURE = 1000
#: The close code for a refused or revoked caller.
POLICY_VIOLATION = 1008
#: Seconds a client has to answer our close frame before the connection is dropped.
CLOSE_GRACE = 2.0
#: Closing a client that answered nothing, not even a ping, within the idle limit.
GOING_AWAY = 1001
#: app.config keys (gafferd sets them from [gaffer]), with their defaults in seconds.
PING_INTERVAL_CONFIG, PING_INTERVAL = "GAFFER_WEBSOCKET_PING_INTERVAL", 20.0
IDLE_TIMEOUT_CONFIG, IDLE_TIMEOUT = "GAFFER_WEBSOCKET_IDLE_TIMEOUT", 60.0
#: A ping frame without payload, as the server sends it (final, opcode 9, unmasked, length 0).
EMPTY_PING = b"\x89\x00"


@bp.route("/wstreams/<segment>", websocket=True)
def wstream(segment: str) -> Response:
    ws = request.environ.get("wsgi.websocket")
    if ws is None:
        return Response(
            json.dumps({"error": "websocket_required"}), status=400, mimetype="application/json"
        )
    _serve(ws, segment)
    return Response(status=200)


def close_websocket(ws: Any, code: int = NORMAL_CLOSURE) -> None:
    """Send a close frame that carries ``code``, then mark the socket closed.

    gevent-websocket 0.10.1's ``close(code)`` drops the code and sends an empty
    close frame, which clients report as 1005 ("no status"), not a normal close.
    The stream is left to the handler, which closes the connection when the
    view returns; a ``receive`` still blocked on it returns None.
    """
    if ws.closed:
        return
    # Bounded: a client that reads nothing (a full send buffer) must not hold the view.
    with contextlib.suppress(WebSocketError, OSError), gevent.Timeout(CLOSE_GRACE, False):
        ws.send_frame(struct.pack("!H", code), ws.OPCODE_CLOSE)
    ws.closed = True


def _keep_alive(ws: Any) -> Callable[[], None]:
    """What a greenlet runs to ping the client every interval; it returns once the client is
    idle too long.

    Anything read from the client (a message, a pong, a ping) counts as life,
    so a connection whose peer vanished without a FIN is noticed. Frames are
    written under a lock from then on: a ping must never land inside a frame
    another greenlet is halfway through sending.
    """
    interval = float(current_app.config.get(PING_INTERVAL_CONFIG, PING_INTERVAL))
    idle_limit = float(current_app.config.get(IDLE_TIMEOUT_CONFIG, IDLE_TIMEOUT))
    heard = [time.monotonic()]
    read, write, lock = ws.stream.read, ws.raw_write, Semaphore()

    def reading(size: int) -> bytes:
        data: bytes = read(size)
        heard[0] = time.monotonic()
        return data

    def writing(data: bytes) -> None:
        with lock:
            write(data)

    ws.stream.read, ws.raw_write = reading, writing

    def ping_until_idle() -> None:
        next_ping = time.monotonic() + interval
        with contextlib.suppress(OSError):
            while not ws.closed:
                now = time.monotonic()
                if now - heard[0] >= idle_limit:
                    return
                # Skipped while a frame is on its way (it tests the client as well), and
                # never waited on longer than the idle limit: this greenlet must stay free
                # to notice the client is gone.
                if now >= next_ping and lock.acquire(blocking=False):
                    try:
                        with gevent.Timeout(idle_limit, False):
                            write(EMPTY_PING)
                    finally:
                        lock.release()
                    next_ping = now + interval
                gevent.sleep(max(0.0, min(next_ping, heard[0] + idle_limit) - time.monotonic()))

    return ping_until_idle


def _refuse(ws: Any, code: str) -> None:
    ws.send(json.dumps({"error": code}))
    close_websocket(ws)


def _serve(ws: Any, segment: str) -> None:
    pid = pid_of(segment)
    if pid is None:
        return _refuse(ws, "bad_value")
    process = manager().find_process(pid)
    if process is None or not process.alive:
        return _refuse(ws, "not_found")
    if not process.template.redirect_input:
        return _refuse(ws, "forbidden_write")
    labels = process.template.labels
    label = labels[0] if labels else None
    sub = process.streams[label].subscribe() if label is not None else None
    with Lease(sub, sub.close if sub is not None else _nothing, "websocket"):
        _relay(ws, process, label, sub)
    return None


def _nothing() -> None:
    """What releasing a websocket of a process without output labels does."""


def _relay(ws: Any, process: Process, label: str | None, sub: Subscription | None) -> None:
    """Output to the client, messages to stdin, until one side or the token ends."""

    def pump_output() -> None:
        """Relay the first label until the process is gone (or the client is)."""
        with contextlib.suppress(WebSocketError, OSError):
            if sub is None or label is None:
                process.exited.wait()
                return
            formatter = ChunkFormatter(Feed.CONTINUOUS, label, as_json=False, ids={})
            for item in sub:
                if isinstance(item, Chunk):
                    ws.send(formatter.text(item.data))

    def pump_input() -> None:
        """Write each message to stdin until the client leaves or closes."""
        try:
            while not ws.closed:
                message = ws.receive()
                if message is None:
                    return
                process.write(message.encode() if isinstance(message, str) else message)
        except Exception as exc:  # a dead socket or a full stdin ends this connection only
            if not ws.closed:
                with contextlib.suppress(WebSocketError, OSError):
                    ws.send(json.dumps({"error": getattr(exc, "code", "internal_error")}))

    revoked = Event()
    forget = track_session(revoked.set)
    crew = Group()  # this connection's greenlets: none outlives the view
    pinger = crew.spawn(_keep_alive(ws))
    sender, receiver = crew.spawn(pump_output), crew.spawn(pump_input)
    try:
        first = gevent.wait([sender, receiver, pinger, revoked], count=1)
        if revoked.is_set():
            close_websocket(ws, POLICY_VIOLATION)  # its token was removed
        elif receiver not in first:
            # The process is gone, or the client went silent: close, and give the client
            # a moment to answer before the connection is dropped.
            close_websocket(ws, GOING_AWAY if pinger in first else NORMAL_CLOSURE)
            receiver.join(CLOSE_GRACE)
    finally:
        forget()
        sender.kill(block=False)
        pinger.kill(block=False)
        receiver.kill(block=True, timeout=1)
        crew.kill(block=False)
        close_websocket(ws)
