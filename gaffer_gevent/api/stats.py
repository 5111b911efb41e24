"""/stats: psutil figures per template or per process, once or as a feed of ``stat`` events."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, request

from ..feeds import Feed, event_mimetype, parse_stat_feed, sample_body, sampling
from ..process import Process
from .disconnect import streamed
from .extension import gaffer, manager
from .guard import visible
from .params import json_response, parse_pid

if TYPE_CHECKING:  # psutil is loaded on the first stats request, not with the app
    from ..stats import ChildrenMap

bp = Blueprint("stats", __name__)

#: Stat events are produced about every 100 ms per monitored process (spec 4.15).
STAT_INTERVAL = 0.1


def _template_stats(name: str, tree: ChildrenMap | None = None) -> dict[str, Any]:
    """Spec 9.2, plus per process ``started_at`` (epoch seconds, for uptimes) and ``restarts``
    (how many crashed processes in a row this one replaces) and ``state``."""
    processes = [p for p in manager().state(name).queue if p.os_pid]
    body = gaffer().stats.template_stats(name, [(p.pid, p.os_pid) for p in processes], tree)
    for info, process in zip(body["stats"], processes, strict=True):
        info["started_at"] = process.started_at
        info["restarts"] = process.restarts
        info["state"] = process.state.value
    return body


@bp.route("/stats", methods=["GET"])
def all_stats() -> Response:
    mgr = manager()
    from ..stats import children_map

    tree = children_map()  # one scan of /proc for every template
    body = [_template_stats(name, tree) for name in mgr.template_names() if visible(name)]
    gaffer().stats.forget(p.os_pid for p in mgr.all_processes())
    return json_response(body)


@bp.route("/stats/<name>", methods=["GET"])
def template_stats(name: str) -> Response:
    kind = _feed()
    if kind is None:
        return json_response(_template_stats(name))
    return _stat_feed(kind, list(manager().state(name).queue))


@bp.route("/stats/<name>/<segment>", methods=["GET"])
def process_stats(name: str, segment: str) -> Response:
    process = manager().get_process(parse_pid(segment))
    kind = _feed()
    if kind is None:
        return json_response(gaffer().stats.process_info(process.os_pid))
    return _stat_feed(kind, [process])


def _feed() -> Feed | None:
    return parse_stat_feed(request.args.get("feed"))


def _stat_feed(kind: Feed, processes: list[Process]) -> Response:
    """``stat`` events for ``processes`` every ``STAT_INTERVAL``, until none is alive."""
    collector = gaffer().stats

    def samples() -> Iterator[dict[str, Any]] | None:
        live = [p for p in processes if p.alive]
        if not live:
            return None
        from ..stats import children_map

        tree = children_map()  # one scan of /proc per round, not one per process
        return (collector.process_info(process.os_pid, tree=tree) for process in live)

    lease = sampling("stats")
    body = sample_body(lease, kind, "stat", samples, STAT_INTERVAL)
    return streamed(body, lease, mimetype=event_mimetype(kind))
