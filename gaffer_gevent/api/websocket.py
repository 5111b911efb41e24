"""/wstreams/<pid>: stdin in, the first output label out, over one websocket."""

from __future__ import annotations

import contextlib
import json
import struct
from typing import Any

import gevent
from flask import Blueprint, Response, request
from geventwebsocket.exceptions import WebSocketError

from ..feeds import ChunkFormatter, Feed
from ..limits import ascii_digits, ascii_int
from ..streams import Chunk
from .extension import manager

bp = Blueprint("websocket", __name__)

#: A normal websocket close once the process is gone.
NORMAL_CLOSURE = 1000
#: Seconds a client has to answer our close frame before the connection is dropped.
CLOSE_GRACE = 2.0


@bp.route("/wstreams/<segment>", websocket=True)
def wstream(segment: str) -> Response:
    ws = request.environ.get("wsgi.websocket")
    if ws is None:
        return Response(
            json.dumps({"error": "websocket_required"}), status=400, mimetype="application/json"
        )
    _serve(ws, segment)
    return Response(status=200)


def _close(ws: Any, code: int = NORMAL_CLOSURE) -> None:
    """Send a close frame that carries ``code``, then mark the socket closed.

    gevent-websocket 0.10.1's ``close(code)`` drops the code and sends an empty
    close frame, which clients report as 1005 ("no status"), not a normal close.
    The stream is left to the handler, which closes the connection when the
    view returns; a ``receive`` still blocked on it returns None.
    """
    if ws.closed:
        return
    with contextlib.suppress(WebSocketError, OSError):
        ws.send_frame(struct.pack("!H", code), ws.OPCODE_CLOSE)
    ws.closed = True


def _refuse(ws: Any, code: str) -> None:
    ws.send(json.dumps({"error": code}))
    _close(ws)


def _serve(ws: Any, segment: str) -> None:
    pid = ascii_int(segment) if ascii_digits(segment) else None
    if pid is None:
        return _refuse(ws, "bad_value")
    process = manager().find_process(pid)
    if process is None or not process.alive:
        return _refuse(ws, "not_found")
    labels = process.template.labels
    sub = process.streams[labels[0]].subscribe() if labels else None
    if not process.template.redirect_input:
        if sub is not None:
            sub.close()
        return _refuse(ws, "forbidden_write")

    def pump_output() -> None:
        """Relay the first label until the process is gone (or the client is)."""
        with contextlib.suppress(WebSocketError, OSError):
            if sub is None:
                process.exited.wait()
                return
            formatter = ChunkFormatter(Feed.CONTINUOUS, labels[0], as_json=False, ids={})
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

    sender, receiver = gevent.spawn(pump_output), gevent.spawn(pump_input)
    try:
        if sender in gevent.wait([sender, receiver], count=1):
            # The process is gone: close, and give the client a moment to answer
            # before the connection is dropped (a silent client would hold it).
            _close(ws)
            receiver.join(CLOSE_GRACE)
    finally:
        if sub is not None:
            sub.close()
        sender.kill(block=False)
        receiver.kill(block=True, timeout=1)
        _close(ws)
    return None
