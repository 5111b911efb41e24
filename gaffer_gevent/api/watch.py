"""/watch[/a[/b[/c]]]: the event feed, filtered by a dotted pattern (spec 4.14 [R])."""

from __future__ import annotations

from flask import Blueprint, Response, request

from ..errors import BadEventType
from ..events import MANAGER_EVENTS, PROC_EVENTS
from ..feeds import Feed, Lease, event_body, event_mimetype, parse_heartbeat
from .disconnect import streamed
from .extension import manager
from .guard import event_filter

bp = Blueprint("watch", __name__)


def pattern_for(segments: list[str]) -> str:
    if not segments:
        return "."
    if len(segments) == 1:
        if segments[0].lower() not in (*MANAGER_EVENTS, "restart", "proc", "api", "auth"):
            raise BadEventType()
        return segments[0].lower()
    if len(segments) == 3 and (segments[0] != "proc" or segments[2] not in PROC_EVENTS):
        raise BadEventType()
    return ".".join(segments)


@bp.route("/watch", methods=["GET"])
@bp.route("/watch/<a>", methods=["GET"])
@bp.route("/watch/<a>/<b>", methods=["GET"])
@bp.route("/watch/<a>/<b>/<c>", methods=["GET"])
def watch(a: str | None = None, b: str | None = None, c: str | None = None) -> Response:
    pattern = pattern_for([s for s in (a, b, c) if s is not None])
    kind = Feed.parse(request.args.get("feed"))
    beat = parse_heartbeat(request.args.get("heartbeat"))
    queue = manager().bus.queue(pattern, accept=event_filter())
    lease = Lease(queue, queue.close, "watch")
    return streamed(event_body(lease, kind, beat), lease, mimetype=event_mimetype(kind))
