"""/processes and /status: templates by name, processes by pid, and their actions.

One view per path shape dispatches on the segment: all digits (or ``^``) is a
pid, anything else a template name, exactly as gaffer's routing table does.
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from ..errors import BadValue, MethodNotAllowed, NoSignalNumber, ResourceNotFound
from ..process import Process, ProcessState
from ..rolling import RollSettings, start_rolling
from ..template import ProcessTemplate
from .extension import manager
from .guard import visible
from .params import (
    is_pid_segment,
    json_body,
    json_response,
    ok,
    parse_int,
    parse_pid,
    pid_of,
)  # fmt: skip

bp = Blueprint("processes", __name__)

#: Flask answers HEAD on every GET route: a HEAD is a read, never one of the POST actions.
READS = ("GET", "HEAD")
#: What ``_pids?state=`` takes.
STATE_NAMES = tuple(state.value for state in ProcessState)


@bp.route("/processes", methods=["GET", "POST"])
def collection() -> Response:
    if request.method == "POST":
        body = json_body()
        template = ProcessTemplate.from_json(body)
        start = body.get("start", True) is not False
        manager().add_template(template, start=start)
        return ok()
    mgr = manager()
    if request.args.get("running", "").lower() in ("1", "true"):
        return json_response([pid for pid, p in mgr.running.items() if visible(p.name)])
    return json_response([name for name in mgr.template_names() if visible(name)])


@bp.route("/processes/<segment>", methods=["GET", "HEAD", "PUT", "DELETE"])
def item(segment: str) -> Response:
    if is_pid_segment(segment):
        return _pid_item(segment)
    mgr = manager()
    if request.method == "HEAD":
        return _head(segment in mgr.states)
    if request.method == "PUT":
        body = json_body()
        template = ProcessTemplate.from_json(body, name=segment)
        mgr.update_template(template, start=body.get("start", True) is not False)
        return ok()
    if request.method == "DELETE":
        mgr.remove_template(segment)
        return ok()
    return json_response(mgr.get_template(segment).to_json())


def _head(exists: bool) -> Response:
    """No body, and the headers the GET would send (JSON either way, not Flask's text/html)."""
    return Response(status=200 if exists else 404, mimetype="application/json")


def _pid_item(segment: str) -> Response:
    mgr = manager()
    if request.method == "PUT":
        raise MethodNotAllowed()
    if request.method == "HEAD":
        pid = pid_of(segment)
        return _head(pid is not None and pid in mgr.running)
    pid = parse_pid(segment)
    if request.method == "DELETE":
        mgr.stop_process(pid)
        return ok()
    process = mgr.get_process(pid)
    body = mgr.get_template(process.name).to_json()
    body.update(state=process.state.value, status_text=process.status_text)
    if process.checks is not None and process.checks.last:
        body["checks"] = process.checks.last  # what each check's last run saw
    return json_response(body)


@bp.route("/processes/<segment>/<action>", methods=["GET", "POST"])
@bp.route("/processes/<segment>/<action>/<path:arg>", methods=["GET", "POST"])
def action(segment: str, action: str, arg: str | None = None) -> Response:
    if is_pid_segment(segment):
        return _pid_action(segment, action, arg)
    mgr = manager()
    mgr.state(segment)  # 404 not_found before resource_not_found
    if request.method in READS:
        if action != "_pids":
            return _extra_action(segment, action, arg, read=True)
        wanted = request.args.get("state")
        if wanted is None:
            return ok(pids=mgr.pids(segment))
        if wanted not in STATE_NAMES:
            raise BadValue(f"state must be one of {', '.join(STATE_NAMES)}", field="state")
        return ok(pids=[p.pid for p in mgr.state(segment).queue if _in_state(p, wanted)])
    if action == "_start":
        mgr.start_template(segment)
    elif action == "_stop":
        mgr.stop_template(segment)
    elif action == "_restart":
        rolling = RollSettings.from_query(request.args)
        if rolling is None:
            mgr.restart_template(segment)
        else:
            start_rolling(mgr, segment, rolling)
    elif action in ("_add", "_sub"):
        n = 1 if arg is None else parse_int(arg, "n")
        if n < 0:
            raise BadValue(f"n must be >= 0, not {n}")
        return ok(numprocesses=mgr.scale(segment, n if action == "_add" else -n))
    elif action == "_signal":
        if not arg:
            raise NoSignalNumber()
        mgr.signal_template(segment, arg)
    else:
        return _extra_action(segment, action, arg)
    return ok()


def _in_state(process: Process, wanted: str) -> bool:
    """``?state=ready`` means ready (also a pid without a readiness check); others match."""
    return process.ready if wanted == "ready" else process.state.value == wanted


def _extra_action(name: str, action: str, arg: str | None, *, read: bool = False) -> Response:
    """Actions of ours beyond gaffer 0.4, contributed by extensions (``_rotate``; GET ``_logs``)."""
    from .extension import gaffer

    handlers = gaffer().template_reads if read else gaffer().template_actions
    handler = handlers.get(action)
    if handler is None:
        raise ResourceNotFound()
    return handler(name, arg)


def _pid_action(segment: str, action: str, arg: str | None) -> Response:
    if request.method in READS:
        raise MethodNotAllowed()
    pid = parse_pid(segment)
    mgr = manager()
    mgr.get_process(pid)
    if action == "_stop":
        mgr.stop_process(pid)
    elif action == "_signal":
        if not arg:
            raise NoSignalNumber()
        mgr.signal_process(pid, arg)
    else:
        raise ResourceNotFound()
    return ok()


@bp.route("/status/<name>", methods=["GET"])
def status(name: str) -> Response:
    return json_response(manager().status(name))
