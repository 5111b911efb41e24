"""An OpenAPI 3.1 description of the HTTP API, built from one table of endpoints.

A test walks the app's URL map and checks that every route appears here, so
the document cannot silently fall behind the code.
"""

from __future__ import annotations

from typing import Any

from ..errors import GafferError

# (method, path, summary, parameters (query names), request body kind, error codes)
ENDPOINTS: list[tuple[str, str, str, list[str], str | None, list[str]]] = [
    ("get", "/", "Welcome and version", [], None, []),
    ("get", "/ping", "Liveness: the text OK (no token needed)", [], None, []),
    ("get", "/health", "gafferd is alive: status and template count (no token needed)", [],
     None, []),
    ("get", "/auth/whoami", "The caller's name, role and scope", [], None, []),
    ("post", "/auth/ticket",
     "A single-use ticket (30 s) for ?ticket= on a GET feed or the websocket", [], None, []),
    ("get", "/openapi.json", "This document", [], None, []),
    ("get", "/processes", "Template names, or running pids with running=true", ["running"],
     None, []),
    ("post", "/processes", "Create a template (and start it unless start=false)", [], "template",
     ["invalid_json", "invalid_process_info", "bad_value", "conflict", "payload_too_large"]),
    ("head", "/processes/{name}", "Does the template (or pid, if digits) exist", [], None,
     ["not_found"]),
    ("get", "/processes/{name}", "Template settings (of the pid's template, if digits)", [], None,
     ["not_found", "bad_value"]),
    ("put", "/processes/{name}", "Replace a template's settings and restart it", [], "template",
     ["invalid_json", "invalid_process_info", "bad_value", "not_found", "payload_too_large"]),
    ("delete", "/processes/{name}", "Stop and remove a template (or stop one pid, if digits)",
     [], None, ["not_found", "bad_value"]),
    ("get", "/processes/{name}/{action}",
     "_pids: running pids of a template; _logs: its log file history (tail: last N lines)",
     ["label", "tail"], None, ["not_found", "resource_not_found", "io_not_found", "bad_value"]),
    ("post", "/processes/{name}/{action}",
     "_start, _stop, _restart, _add, _sub, _signal, _rotate on a template; _stop, _signal on a pid",
     [], None, ["not_found", "resource_not_found", "bad_value", "no_signal_number"]),
    ("get", "/processes/{name}/{action}/{arg}", "_logs/<...> and other reads with an argument",
     ["label", "tail"], None, ["not_found", "resource_not_found", "io_not_found", "bad_value"]),
    ("post", "/processes/{name}/{action}/{arg}", "_add/n, _sub/n, _signal/SIG on a template or pid",
     [], None, ["not_found", "resource_not_found", "bad_value"]),
    ("get", "/status/{name}", "active, running, max_processes; state, restarts, failures, retry_in",
     [], None,
     ["not_found", "bad_value"]),
    ("get", "/groups", "Group names", [], None, []),
    ("get", "/groups/{group}", "Template names of a group", [], None, ["not_found"]),
    ("delete", "/groups/{group}", "Remove every template of a group, then the group", [], None,
     ["not_found"]),
    ("post", "/groups/{group}/{action}", "_start, _stop or _restart every template of a group",
     [], None, ["not_found", "resource_not_found"]),
    ("get", "/watch", "Event feed (all events)", ["feed", "heartbeat"], None, ["bad_value"]),
    ("get", "/watch/{a}", "Event feed for one event name, or proc", ["feed", "heartbeat"], None,
     ["bad_event_type"]),
    ("get", "/watch/{a}/{b}", "Event feed for a pattern a.b", ["feed", "heartbeat"], None, []),
    ("get", "/watch/{a}/{b}/{c}", "Event feed for proc.<name>.<event>", ["feed", "heartbeat"],
     None, ["bad_event_type"]),
    ("get", "/stats", "Stats of every template", [], None, []),
    ("get", "/stats/{name}", "Stats of a template, or a feed of stat events", ["feed"], None,
     ["not_found", "bad_value"]),
    ("get", "/stats/{name}/{pid}", "Stats of one process, or a feed", ["feed"], None,
     ["not_found", "bad_value"]),
    ("get", "/streams/{pid}/{label}", "Output feed of one label",
     ["feed", "heartbeat", "since", "last_event_id", "tail", "format", "overflow"], None,
     ["bad_value", "not_found", "io_not_redirected", "io_not_found"]),
    ("post", "/streams/{pid}/{label}", "Write the raw body to stdin (label stdin or ttin)", [],
     "raw", ["bad_value", "not_found", "forbidden_write", "payload_too_large", "stdin_full"]),
    ("get", "/debug/subscriptions",
     "Every stream and subscription of every process: lag, dropped chunks and bytes; log files",
     [], None, []),
    ("get", "/wstreams/{pid}", "Websocket: messages to stdin, first output label back", [], None,
     ["bad_value", "not_found", "forbidden_write"]),
]  # fmt: skip

#: Paths that answer without a credential.
PUBLIC_PATHS = frozenset({"/ping", "/health"})
#: What the guard may answer on any other route (``api.guard``).
GUARD_ERRORS = ["unauthorized", "forbidden", "forbidden_origin", "misdirected_request",
                "too_many_failures"]  # fmt: skip


def _status_of() -> dict[str, int]:
    """Error code -> status, from the error classes themselves (``errors.py``)."""
    found: dict[str, int] = {}
    pending: list[type[GafferError]] = [GafferError]
    while pending:
        cls = pending.pop()
        found[cls.code] = cls.status
        pending += cls.__subclasses__()
    return found


STATUS_OF = _status_of()

QUERY_DOCS = {
    "running": "1 or true: list running pids instead of names",
    "feed": "longpoll (default), continuous or eventsource; stats also take normal",
    "heartbeat": "true (60 s), false, or seconds between heartbeats",
    "since": "replay every chunk after this sequence number (a Last-Event-ID header wins)",
    "last_event_id": "same as since; the Last-Event-ID header of a reconnecting EventSource wins",
    "tail": "replay the last N lines held (_logs: the last N lines of the files)",
    "format": "json: one JSON object per chunk (seq, ts, pid, os_pid, label, data)",
    "overflow": "skip (default: jump ahead, report a gap) or close, for a consumer left behind",
    "label": "_logs: the label (or stdout / stderr) whose log file to read; default stdout",
}


def build_spec(prefix: str = "") -> dict[str, Any]:
    from .. import __version__

    paths: dict[str, dict[str, Any]] = {}
    for method, path, summary, query, body, own_errors in ENDPOINTS:
        public = path in PUBLIC_PATHS
        errors = own_errors if public else [*own_errors, *GUARD_ERRORS]
        params: list[dict[str, Any]] = [
            {"name": seg[1:-1], "in": "path", "required": True, "schema": {"type": "string"}}
            for seg in path.split("/")
            if seg.startswith("{")
        ]
        params += [
            {"name": q, "in": "query", "description": QUERY_DOCS.get(q, ""),
             "schema": {"type": "string"}}
            for q in query
        ]  # fmt: skip
        responses: dict[str, Any] = {"200": {"description": "success"}}
        for code in errors:
            status = str(STATUS_OF[code])
            entry = responses.setdefault(
                status,
                {
                    "description": "",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                },
            )
            entry["description"] = ", ".join(filter(None, [entry["description"], code]))
        operation: dict[str, Any] = {"summary": summary, "parameters": params,
                                     "responses": responses}  # fmt: skip
        if public:
            operation["security"] = []
        if body == "template":
            operation["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Template"}}}}  # fmt: skip
        elif body == "raw":
            operation["requestBody"] = {"content": {"application/octet-stream": {}}}
        paths.setdefault(prefix + path, {})[method] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "gaffer-gevent", "version": __version__},
        "paths": paths,
        # A bearer token, or nothing when gafferd has none configured (loopback only).
        "security": [{"bearer": []}, {}],
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
                       "schemas": {
            "Error": {"type": "object", "required": ["error"],
                      "properties": {"error": {"type": "string"}, "reason": {"type": "string"}}},
            "Template": {"type": "object", "required": ["name", "cmd"], "properties": {
                "name": {"type": "string"}, "cmd": {"type": "string"},
                "args": {"oneOf": [{"type": "array", "items": {"type": "string"}},
                                   {"type": "string"}]},
                "env": {"type": "object", "additionalProperties": {"type": "string"}},
                "os_env": {"type": "boolean"}, "cwd": {"type": "string"},
                "uid": {"type": ["integer", "string"]}, "gid": {"type": ["integer", "string"]},
                "shell": {"type": "boolean"}, "detach": {"type": "boolean"},
                "numprocesses": {"type": "integer", "minimum": 0}, "start": {"type": "boolean"},
                "redirect_output": {"type": "array", "items": {"type": "string"}},
                "redirect_input": {"type": "boolean"},
                "graceful_timeout": {"type": "number", "minimum": 0},
                "flapping": {"type": "object"}, "priority": {"type": "integer"},
                "buffer_size": {"type": "integer"}, "stdout_logfile": {"type": "string"},
                "stderr_logfile": {"type": "string"}, "logfile_maxbytes": {"type": "integer"},
                "logfile_backups": {"type": "integer"},
                "logfile_rotate_daily": {"type": "boolean"}}},
        }},
    }  # fmt: skip
