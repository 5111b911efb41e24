"""/streams/<pid>/<label>: output feeds, and POST /streams/<pid>/stdin.

A feed subscribes before the response starts, so nothing read after the
request arrived is lost; replay (``since``, ``Last-Event-ID``, ``tail``)
comes from the stream's ring buffer.
"""

from __future__ import annotations

from typing import Any

import gevent
from flask import Blueprint, Response, request

from ..errors import BadValue, NotFound, PayloadTooLarge
from ..feeds import ChunkFormatter, Feed, frame_cache_for, stream_body
from ..limits import ascii_digits, ascii_int
from ..streams import Chunk, Overflow, Subscription
from .disconnect import streamed, watch_disconnect
from .extension import gaffer, manager
from .guard import track_session
from .params import STREAM_HEADERS, feed, heartbeat, ok, optional_int, parse_pid

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
    kind = feed()
    beat = heartbeat()
    since, tail = _since(), optional_int("tail")
    sub = source.subscribe(since=since, tail=tail, overflow=_overflow())
    sub.owner = f"{kind.value} {request.remote_addr or ''}".rstrip()
    if kind is Feed.LONGPOLL:
        return _longpoll(sub, replay=since is not None or tail is not None)
    as_json = request.args.get("format") == "json"
    ids = {"pid": process.pid, "os_pid": process.os_pid}
    formatter = ChunkFormatter(kind, label, as_json=as_json, ids=ids, cache=frame_cache_for(source))
    mimetype = "text/event-stream" if kind is Feed.EVENTSOURCE else "application/octet-stream"
    if as_json and kind is Feed.CONTINUOUS:
        mimetype = "application/x-ndjson"
    return streamed(stream_body(sub, formatter, beat), sub.close, mimetype=mimetype)


def _since() -> int | None:
    """Where a replay starts: the ``Last-Event-ID`` header first, then ``since``/``last_event_id``.

    A browser's EventSource reconnects to the very same URL, adding only the
    header: a page that asked for ``?since=0`` must resume after the last event
    it saw, not replay everything again.
    """
    value = request.headers.get("Last-Event-ID", "").strip()
    if value:
        seq = ascii_int(value) if ascii_digits(value) else None
        if seq is None:
            raise BadValue("Last-Event-ID must be a sequence number")
        return seq
    since = optional_int("since")
    return optional_int("last_event_id") if since is None else since


def _overflow() -> Overflow:
    try:
        return Overflow(request.args.get("overflow", "skip"))
    except ValueError:
        raise BadValue("overflow must be skip or close") from None


def _longpoll(sub: Subscription, *, replay: bool) -> Response:
    """The first chunk read after the request (or the chunks after ``since``), then end."""
    watcher = watch_disconnect(sub.close)  # a client that leaves while we wait
    forget = track_session(sub.close)  # or whose token is removed
    try:
        batch = sub.read(None) or []
    finally:
        forget()
        if watcher is not None:
            watcher.kill(block=True, timeout=1)
        sub.close()
    chunks = [item for item in batch if isinstance(item, Chunk)]
    if not replay:
        chunks = chunks[:1]  # gaffer answers with exactly one pipe read
    headers: dict[str, Any] = {**STREAM_HEADERS, "X-Last-Seq": str(sub.last_seq)}
    if chunks:
        headers["X-Last-Seq"] = str(chunks[-1].seq)
    gaps = [item for item in batch if not isinstance(item, Chunk)]
    if gaps:
        headers["X-Gap-Chunks"] = str(sum(g.chunks for g in gaps))
        if all(g.bytes is not None for g in gaps):
            headers["X-Gap-Bytes"] = str(sum(g.bytes or 0 for g in gaps))
    body = b"".join(c.data for c in chunks)
    return Response(body, mimetype="application/octet-stream", headers=headers)


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
