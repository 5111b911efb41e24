"""An OpenAPI 3.1 description of the HTTP API, built from one table of endpoints.

A test walks the app's URL map and checks that every route appears here, so
the document cannot silently fall behind the code; a schemathesis run over it
(``tests/test_fuzz_schema.py``) sends what it allows and what it refuses and
checks every answer's status, content type and body against it, so it cannot
lie about the rules or the answers either. Bounds come from ``limits.py`` and
from the serving manager's own ``ProcessLimits``: no number is copied here.

The table of endpoints (method, path, summary, query names, body, own errors)
lives in ``endpoints.py``; this module turns it into the document.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import GafferError
from ..limits import (
    MAX_INT_DIGITS,
    MAX_NAME_LENGTH,
    MAX_READY_TIMEOUT,
    MAX_TEMPLATE_BODY,
    MAX_TIMEOUT,
    MAX_UNAVAILABLE,
    ProcessLimits,
)  # fmt: skip
from ..process import ProcessState
from .endpoints import ENDPOINTS
from .extension import DEFAULT_STDIN_MAX_BODY
from .rules import COUNT, LABEL, NAME, PID, SEGMENT, URL_INT, Schema, template_schema

#: Paths that answer without a credential.
PUBLIC_PATHS = frozenset({"/ping", "/health"})
#: What the guard may answer on any other route (``api.guard``).
GUARD_ERRORS = ["unauthorized", "forbidden", "forbidden_origin", "misdirected_request",
                "too_many_failures"]  # fmt: skip
#: Codes without an error class: routing's answer to a GET on the websocket route that
#: asks for no upgrade.
OTHER_ERRORS = {"bad_request": 400}


def _status_of() -> dict[str, int]:
    """Error code -> status, from the error classes themselves (``errors.py``)."""
    found: dict[str, int] = dict(OTHER_ERRORS)
    pending: list[type[GafferError]] = [GafferError]
    while pending:
        cls = pending.pop()
        found[cls.code] = cls.status
        pending += cls.__subclasses__()
    return found


STATUS_OF = _status_of()


def _string_or_any(*known: str) -> Schema:
    """A query value with known words; any other value is accepted too (gaffer's rule)."""
    return {"anyOf": [{"enum": list(known)}, {"type": "string"}]}


PROCESS_PARAM_OF: dict[tuple[str, str], Schema] = {
    # a name, or a pid (a segment of ASCII digits addresses a pid, always)
    ("/processes/{name}", "name"): {"anyOf": [NAME, PID]},
    ("get", "action"): {"enum": ["_pids", "_logs"]},
    ("post", "action"): {"enum": ["_start", "_stop", "_restart", "_add", "_sub", "_signal",
                                  "_rotate"]},
    ("get", "arg"): LABEL,  # _logs/<label>; _pids ignores it
    ("post", "arg"): {**SEGMENT, "maxLength": MAX_INT_DIGITS},  # n, or a signal
}  # fmt: skip
PATH_PARAMS: dict[str, Schema] = {
    "name": NAME, "pid": PID, "label": LABEL,
    "group": {**SEGMENT, "maxLength": MAX_NAME_LENGTH},
    # gaffer takes the word after the first "_": x_start_y starts
    "action": {"type": "string", "pattern": "^[^_/]*_(start|stop|restart)(_[^/]*)?$"},
    "a": SEGMENT, "b": SEGMENT, "c": SEGMENT,
}  # fmt: skip


def _path_param(method: str, path: str, name: str) -> Schema:
    from ..events import MANAGER_EVENTS, PROC_EVENTS

    if path.startswith("/processes/"):
        if name == "name":
            return PROCESS_PARAM_OF[("/processes/{name}", "name")]
        if name in ("action", "arg"):
            return PROCESS_PARAM_OF[(method, name)]
    if path == "/streams/{pid}/{label}" and method == "post":
        return {"enum": ["stdin", "ttin"]}
    if path == "/watch/{a}":
        return {"enum": [*MANAGER_EVENTS, "restart", "proc", "api", "auth"]}
    if path == "/watch/{a}/{b}/{c}":
        return {"a": {"enum": ["proc"]}, "b": NAME, "c": {"enum": list(PROC_EVENTS)}}[name]
    return PATH_PARAMS[name]


QUERY_PARAMS: dict[str, tuple[Schema, str]] = {
    "running": (_string_or_any("1", "true"), "1 or true: list running pids instead of names"),
    "feed": (_string_or_any("longpoll", "continuous", "eventsource", "normal"),
             "longpoll (default, and any unknown value), continuous or eventsource; stats "
             "default to normal (one answer)"),
    "heartbeat": ({"type": ["boolean", "number"], "minimum": 0, "maximum": MAX_TIMEOUT},
                  "true (60 s, the default), false, or seconds between heartbeats (0: none)"),
    "since": (URL_INT, "replay every chunk after this sequence number (a Last-Event-ID header "
                       "wins)"),
    "last_event_id": (URL_INT, "same as since; the Last-Event-ID header of a reconnecting "
                               "EventSource wins"),
    "tail": (COUNT, "replay the last N lines held (_logs: the last N lines of the files)"),
    "format": (_string_or_any("json"),
               "json: one JSON object per chunk (seq, ts, pid, os_pid, label, data)"),
    "overflow": ({"enum": ["skip", "close"]},
                 "skip (default: jump ahead, report a gap) or close, for a consumer left behind"),
    "state": ({"enum": [state.value for state in ProcessState]},
              "_pids: only the pids in this state (ready: also those without a readiness check)"),
    "per_pid": ({"enum": ["0", "1", "false", "true"]},
                "/metrics: 1 or true adds per-pid series (for debugging; off by default)"),
    "label": (LABEL, "_logs: the label (or stdout / stderr) whose log file to read; default "
                     "stdout"),
    "rolling": ({"enum": ["1", "true", "0", "false"]},
                "_restart: 1 or true replaces the pids a few at a time, each old one stopped "
                "once its replacement is ready (409 while one runs)"),
    "max_unavailable": ({"type": "integer", "minimum": 1, "maximum": MAX_UNAVAILABLE},
                        "_restart?rolling=1: pids replaced at once (default 1)"),
    "ready_timeout": ({"type": "number", "exclusiveMinimum": 0, "maximum": MAX_READY_TIMEOUT},
                      "_restart?rolling=1: seconds a replacement has to get ready, else the roll "
                      "aborts (default 30)"),
}  # fmt: skip


# -- the answers -----------------------------------------------------------------------------

OK: Schema = {"type": "object", "required": ["ok"], "properties": {"ok": {"const": True}}}
NAMES: Schema = {"type": "array", "items": {"type": "string"}}
PIDS: Schema = {"type": "array", "items": {"type": "integer", "minimum": 1}}
_STRING: Schema = {"type": "string"}
_OBJECTS: Schema = {"type": "array", "items": {"type": "object"}}


def _object(required: list[str], **properties: Schema) -> Schema:
    return {"type": "object", "required": required, "properties": properties}


def _json(schema: Schema | None = None) -> dict[str, Any]:
    return {"application/json": {} if schema is None else {"schema": schema}}


#: Feeds of JSON events: one JSON text per line (longpoll: one line), or Server-Sent Events.
EVENT_FEED: dict[str, Any] = {"application/json": {}, "text/event-stream": {}}
ACTION_OK = {**OK, "properties": {**OK["properties"], "numprocesses": {"type": "integer"},
                                  "pids": PIDS, "rotated": NAMES}}  # fmt: skip
TEMPLATE_READ = {"application/json": {"schema": {**ACTION_OK, "required": ["ok", "pids"]}},
                 "text/plain": {}}  # fmt: skip

#: (method, path) -> the content of its 200 answer; unlisted ones answer {"ok": true}.
SUCCESS: dict[tuple[str, str], dict[str, Any]] = {
    ("get", "/"): _json(_object(["welcome", "version"], welcome=_STRING, version=_STRING)),
    ("get", "/ping"): {"text/plain": {"schema": {"const": "OK"}}},
    ("get", "/health"): _json(_object(["status", "templates"], status={"const": "ok"},
                                      templates={"type": "integer", "minimum": 0})),
    ("get", "/ready"): _json(_object(["ready"], ready={"const": True})),
    ("get", "/auth/whoami"): _json(_object(["name", "role", "scope"], name=_STRING,
                                           role={"enum": ["read", "stdin", "operate", "admin"]},
                                           scope=NAMES)),
    ("post", "/auth/ticket"): _json(_object(["ticket", "expires_in"], ticket=_STRING,
                                            expires_in={"type": "integer", "minimum": 1})),
    ("get", "/openapi.json"): _json(_object(["openapi", "info", "paths"])),
    ("get", "/processes"): _json({"anyOf": [NAMES, PIDS]}),
    ("get", "/processes/{name}"): _json(_object(["name", "cmd"], name=_STRING, cmd=_STRING)),
    ("post", "/processes/{name}/{action}"): _json(ACTION_OK),
    ("post", "/processes/{name}/{action}/{arg}"): _json(ACTION_OK),
    ("get", "/processes/{name}/{action}"): TEMPLATE_READ,
    ("get", "/processes/{name}/{action}/{arg}"): TEMPLATE_READ,
    ("get", "/status/{name}"): _json(_object(
        ["active", "running", "max_processes"], active={"type": "boolean"},
        running={"type": "integer", "minimum": 0}, ready={"type": "integer", "minimum": 0},
        max_processes={"type": "integer", "minimum": 0})),
    ("get", "/groups"): _json(NAMES),
    ("get", "/groups/{group}"): _json(NAMES),
    ("get", "/watch"): EVENT_FEED, ("get", "/watch/{a}"): EVENT_FEED,
    ("get", "/watch/{a}/{b}"): EVENT_FEED, ("get", "/watch/{a}/{b}/{c}"): EVENT_FEED,
    ("get", "/stats"): _json(_OBJECTS),
    # feed=normal: one JSON object; other feeds: one per line, or Server-Sent Events
    ("get", "/stats/{name}"): EVENT_FEED, ("get", "/stats/{name}/{pid}"): EVENT_FEED,
    ("get", "/streams/{pid}/{label}"): {
        "application/octet-stream": {}, "text/event-stream": {}, "application/x-ndjson": {}},
    ("get", "/debug/subscriptions"): _json(_object(
        ["subscriptions", "streams", "logfiles"], subscriptions=_OBJECTS, streams=_OBJECTS,
        logfiles=_OBJECTS)),
    ("get", "/metrics"): {"text/plain": {}, "application/openmetrics-text": {}},
}  # fmt: skip
#: Answers other than 200 that are not errors.
OTHER_SUCCESS = {("get", "/wstreams/{pid}"): ("101", "switching protocols: the websocket")}
#: Answers other than 200 that are not errors either, with a body.
NOT_READY: Schema = _object(
    ["ready", "not_ready"], ready={"const": False},
    not_ready={"type": "array", "items": _object(
        ["name", "pid", "state"], name=_STRING, pid={"type": "integer", "minimum": 1},
        state=_STRING)})  # fmt: skip
OTHER_ANSWERS = {("get", "/ready"): {"503": ("some pid is not ready", _json(NOT_READY))}}
#: Headers an error answer always carries.
ERROR_HEADERS = {
    "401": {"WWW-Authenticate": {"required": True, "schema": {"type": "string"}}},
    "429": {"Retry-After": {"required": True, "schema": {"type": "string",
                                                         "pattern": "^[0-9]+$"}}},
}  # fmt: skip


def _errors_of(method: str, path: str, own: list[str]) -> list[str]:
    errors = [*own, *(code for code in _rerouted(method, path) if code not in own)]
    if path not in PUBLIC_PATHS:
        errors += GUARD_ERRORS
    return errors


def _rerouted(method: str, path: str) -> list[str]:
    """What a path parameter holding ``/`` (sent as ``%2F``, decoded before routing) can get.

    The path then has more segments: it names no route (404), or another route, which
    answers with its own errors, or 405 when it has no such method (HEAD: where no GET).
    """
    if "{" not in path:
        return []
    any_segments = r"[^/]+(?:/[^/]+)*"
    reach = re.compile("/".join(any_segments if s.startswith("{") else re.escape(s)
                                for s in path.split("/")))  # fmt: skip
    wanted = "get" if method == "head" else method
    codes = ["not_found"]
    others: dict[str, dict[str, list[str]]] = {}
    for other_method, other_path, *_, other_errors in ENDPOINTS:
        others.setdefault(other_path, {})[other_method] = other_errors
    for other_path, methods in others.items():
        if other_path == path or not reach.fullmatch(re.sub(r"\{[^}]+\}", "x", other_path)):
            continue
        codes += methods.get(wanted, ["method_not_allowed"])
    return list(dict.fromkeys(codes))


def _responses(method: str, path: str, errors: list[str]) -> dict[str, Any]:
    """Every answer of one operation; HEAD answers carry no body (only the GET's headers)."""
    head = method == "head"
    responses: dict[str, Any] = {}
    if (method, path) in OTHER_SUCCESS:
        status, description = OTHER_SUCCESS[(method, path)]
        responses[status] = {"description": description}
    else:
        content = SUCCESS.get((method, path), _json(OK))
        responses["200"] = {"description": "success"}
        if not head:
            responses["200"]["content"] = content
    for status, (description, content) in OTHER_ANSWERS.get((method, path), {}).items():
        responses[status] = {"description": description}
        if not head:
            responses[status]["content"] = content
    codes_of: dict[str, list[str]] = {}
    for code in errors:
        codes_of.setdefault(str(STATUS_OF[code]), []).append(code)
    for status, codes in sorted(codes_of.items()):
        entry: dict[str, Any] = {"description": ", ".join(codes)}
        if not head:
            error = {"allOf": [{"$ref": "#/components/schemas/Error"},
                               {"properties": {"error": {"enum": codes}}}]}  # fmt: skip
            entry["content"] = _json(error)
        if status in ERROR_HEADERS:
            entry["headers"] = ERROR_HEADERS[status]
        responses[status] = entry
    return responses


def _parameters(method: str, path: str, query: list[str]) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": seg[1:-1], "in": "path", "required": True,
         "schema": _path_param(method, path, seg[1:-1])}
        for seg in path.split("/")
        if seg.startswith("{")
    ]  # fmt: skip
    for name in query:
        schema, doc = QUERY_PARAMS[name]
        params.append({"name": name, "in": "query", "description": doc, "schema": schema})
    if (method, path) == ("get", "/streams/{pid}/{label}"):
        resume = "resume after this sequence number (a reconnecting EventSource)"
        params.append({"name": "Last-Event-ID", "in": "header", "schema": COUNT,
                       "description": resume})  # fmt: skip
    return params


def _request_body(kind: str | None, limits: ProcessLimits, stdin_max_body: int) -> Schema | None:
    if kind in ("template", "update"):
        schema = template_schema(limits, named=kind == "template")
        return {"required": True, "description": f"at most {MAX_TEMPLATE_BODY} bytes",
                "content": {"application/json": {"schema": schema}}}  # fmt: skip
    if kind == "raw":
        binary = {"type": "string", "format": "binary", "maxLength": stdin_max_body}
        return {"content": {"application/octet-stream": {"schema": binary}}}
    return None


def build_spec(
    prefix: str = "",
    *,
    limits: ProcessLimits | None = None,
    stdin_max_body: int = DEFAULT_STDIN_MAX_BODY,
) -> dict[str, Any]:
    """The document for an app mounted at ``prefix`` over a manager with ``limits``."""
    from .. import __version__

    limits = limits or ProcessLimits()
    paths: dict[str, dict[str, Any]] = {}
    for method, path, summary, query, body, own_errors in ENDPOINTS:
        operation: dict[str, Any] = {
            "summary": summary,
            "parameters": _parameters(method, path, query),
            "responses": _responses(method, path, _errors_of(method, path, own_errors)),
        }
        if path in PUBLIC_PATHS:
            operation["security"] = []
        request_body = _request_body(body, limits, stdin_max_body)
        if request_body is not None:
            operation["requestBody"] = request_body
        paths.setdefault(prefix + path, {})[method] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "gaffer-gevent", "version": __version__},
        "paths": paths,
        # A bearer token, or nothing when gafferd has none configured (loopback only).
        "security": [{"bearer": []}, {}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "additionalProperties": False,
                          "properties": {"error": _STRING, "reason": _STRING}},
                "Template": template_schema(limits),
            },
        },
    }  # fmt: skip
