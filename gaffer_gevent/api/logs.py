"""Log files and stream counters over HTTP.

``install_logfiles(app, logfiles)`` adds two template actions to the processes
routes: ``POST /processes/<name>/_rotate`` (rotate the template's log files
now) and ``GET /processes/<name>/_logs?label=stdout&tail=N`` (its history, read
from the files: backups then the current file, so it outlives the processes
and the daemon; the template must be registered, since it names the files).

The blueprint serves ``GET /debug/subscriptions``: every open subscription
(HTTP feeds and log writers alike) with its lag and what it dropped, and each
stream's totals, so a slow consumer can be seen rather than guessed at.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Flask, Response, request

from ..errors import BadValue
from ..feeds import Lease
from ..logfile import READ_BLOCK, History
from ..logfiles import LogFiles
from .extension import GafferState, gaffer, manager
from .guard import visible
from .params import json_response, ok, optional_int

bp = Blueprint("logs", __name__)

EXTRA_KEY = "logfiles"


def install_logfiles(app: Flask, logfiles: LogFiles) -> None:
    """Serve ``_rotate`` and ``_logs`` from ``logfiles`` on an app made by ``create_app``."""
    state: GafferState = app.extensions["gaffer"]
    state.extra[EXTRA_KEY] = logfiles

    def rotate(name: str, arg: str | None) -> Response:
        return ok(rotated=logfiles.rotate(name))

    def logs(name: str, arg: str | None) -> Response:
        return _logs(logfiles, name, arg or request.args.get("label") or "stdout")

    state.template_actions["_rotate"] = rotate
    state.template_reads["_logs"] = logs


def _logs(logfiles: LogFiles, name: str, label: str) -> Response:
    tail = optional_int("tail")
    if tail is not None and tail < 0:
        raise BadValue("tail must be >= 0")
    history = logfiles.history(name, label)
    lease = Lease(history, history.close, "logs")
    try:
        if tail is not None:
            logfiles.run(history.tail_start, tail)
    except BaseException:
        lease.release()
        raise
    response = Response(_history_body(logfiles, lease), mimetype="text/plain")
    # A body that is never iterated never enters its ``with``: release here too.
    response.call_on_close(lease.release)
    return response


def _history_body(logfiles: LogFiles, lease: Lease[History]) -> Iterator[bytes]:
    with lease as history:
        while block := logfiles.run(history.read, READ_BLOCK):
            yield block


@bp.route("/debug/subscriptions", methods=["GET"])
def subscriptions() -> Response:
    """Every stream of every process, and every cursor reading it, with drop counters."""
    subs: list[dict[str, Any]] = []
    streams: list[dict[str, Any]] = []
    for process in manager().all_processes():
        if not visible(process.name):
            continue
        ids = {"pid": process.pid, "os_pid": process.os_pid, "name": process.name}
        for label, stream in process.streams.items():
            streams.append({
                **ids, "label": label, "first_seq": stream.first_seq,
                "last_seq": stream.last_seq, "total_bytes": stream.total_bytes,
                "held_bytes": stream.held_bytes, "buffer_size": stream.buffer_size,
                "subscriptions": len(stream.subscriptions),
                "dropped_bytes": stream.dropped_bytes,
            })  # fmt: skip
            subs += [{**ids, **sub.stats()} for sub in stream.subscriptions]
    logfiles: LogFiles | None = gaffer().extra.get(EXTRA_KEY)
    return json_response({
        "subscriptions": subs,
        "streams": streams,
        "logfiles": [
            writer for writer in (logfiles.stats() if logfiles is not None else [])
            if any(visible(owner.rpartition("/")[0]) for owner in writer["owners"])
        ],
    })  # fmt: skip
