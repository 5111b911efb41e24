"""/wstreams/<pid>: stdin in, the first output label out, over one websocket."""

from __future__ import annotations

import json
from typing import Any

import gevent
from flask import Blueprint, Response, request

from ..feeds import ChunkFormatter, Feed
from ..streams import Chunk
from .extension import manager

bp = Blueprint("websocket", __name__)

#: A normal websocket close once the process is gone.
NORMAL_CLOSURE = 1000


@bp.route("/wstreams/<segment>", websocket=True)
def wstream(segment: str) -> Response:
    ws = request.environ.get("wsgi.websocket")
    if ws is None:
        return Response(
            json.dumps({"error": "websocket_required"}), status=400, mimetype="application/json"
        )
    _serve(ws, segment)
    return Response(status=200)


def _refuse(ws: Any, code: str) -> None:
    ws.send(json.dumps({"error": code}))
    ws.close()


def _serve(ws: Any, segment: str) -> None:
    if not segment.isdigit():
        return _refuse(ws, "bad_value")
    process = manager().find_process(int(segment))
    if process is None or not process.alive:
        return _refuse(ws, "not_found")
    labels = process.template.labels
    sub = process.streams[labels[0]].subscribe() if labels else None
    if not process.template.redirect_input:
        if sub is not None:
            sub.close()
        return _refuse(ws, "forbidden_write")

    def pump_output() -> None:
        if sub is None:
            process.exited.wait()
        else:
            formatter = ChunkFormatter(Feed.CONTINUOUS, labels[0], as_json=False, ids={})
            for item in sub:
                if isinstance(item, Chunk):
                    ws.send(formatter.text(item.data))
        ws.close(NORMAL_CLOSURE)

    sender = gevent.spawn(pump_output)
    try:
        while not ws.closed:
            message = ws.receive()
            if message is None:
                break
            process.write(message.encode() if isinstance(message, str) else message)
    except Exception as exc:  # a dead socket or a full stdin ends this connection only
        if not ws.closed:
            ws.send(json.dumps({"error": getattr(exc, "code", "internal_error")}))
    finally:
        if sub is not None:
            sub.close()
        sender.kill(block=False)
        if not ws.closed:
            ws.close(NORMAL_CLOSURE)
    return None
