"""/streams/<pid>/<label>: output feeds, and POST /streams/<pid>/stdin.

A feed subscribes before the response starts, so nothing read after the
request arrived is lost; replay (``since``, ``Last-Event-ID``, ``tail``)
comes from the stream's ring buffer.
"""

from __future__ import annotations

import gevent
from flask import Blueprint, Response, request

from ..errors import NotFound, PayloadTooLarge
from ..feeds import (
    ChunkFormatter,
    Feed,
    Lease,
    StreamOptions,
    frame_cache_for,
    stream_body,
    stream_longpoll,
    stream_mimetype,
)  # fmt: skip
from .disconnect import guard, streamed
from .extension import gaffer, manager
from .params import ok, parse_pid

bp = Blueprint("streams", __name__)

STDIN_NAMES = ("stdin", "ttin")  # "ttin" is the seed document's spelling


@bp.route("/streams/<segment>/<label>", methods=["GET", "POST"])
def stream(segment: str, label: str) -> Response:
    pid = parse_pid(segment)
    if request.method == "POST":
        return _write_stdin(pid, label)
    process = manager().find_process(pid)
    if process is None:
        raise NotFound(f"no running process with pid {pid}")
    source = process.stream(label)
    options = StreamOptions.parse(request.args, request.headers.get("Last-Event-ID"))
    sub = source.subscribe(since=options.since, tail=options.tail, overflow=options.overflow)
    sub.owner = f"{options.feed.value} {request.remote_addr or ''}".rstrip()
    lease = Lease(sub, sub.close, "stream")
    if options.feed is Feed.LONGPOLL:
        guard(lease)  # a client that leaves while we wait, or whose token is removed
        body, headers = stream_longpoll(lease, replay=options.replay)
        return Response(body, mimetype="application/octet-stream", headers=headers)
    ids = {"pid": process.pid, "os_pid": process.os_pid}
    formatter = ChunkFormatter(options.feed, label, as_json=options.as_json, ids=ids,
                               cache=frame_cache_for(source))  # fmt: skip
    body_of = stream_body(lease, formatter, options.heartbeat)
    return streamed(body_of, lease, mimetype=stream_mimetype(options.feed, as_json=options.as_json))


def _write_stdin(pid: int, label: str) -> Response:
    if label not in STDIN_NAMES:
        raise NotFound("only stdin can be written")
    process = manager().get_process(pid)
    limit = gaffer().settings.stdin_max_body
    length = request.content_length
    if length is not None and length > limit:
        raise PayloadTooLarge(f"body larger than {limit} bytes")
    data = request.stream.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(f"body larger than {limit} bytes")
    process.write(data)
    gevent.idle()  # let the writer greenlet start on it before we answer
    return ok()
