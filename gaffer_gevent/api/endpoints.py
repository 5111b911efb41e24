"""The HTTP API's endpoints, one row each: what ``openapi.py`` builds the document from.

A row: (method, path, summary, query parameter names, request body kind, the
error codes the route itself answers). Guard errors and rerouted answers are
added by ``openapi.py``; a test checks every route of the app has its row.
"""

from __future__ import annotations

__all__ = ["ENDPOINTS"]

# (method, path, summary, parameters (query names), request body kind, error codes)
ENDPOINTS: list[tuple[str, str, str, list[str], str | None, list[str]]] = [
    ("get", "/", "Welcome and version", [], None, []),
    ("get", "/ping", "Liveness: the text OK (no token needed)", [], None, []),
    ("get", "/health", "gafferd is alive: status and template count (no token needed)", [],
     None, []),
    ("get", "/ready", "200 when every pid of every template with a readiness check is ready, "
     "else 503 listing those that are not", [], None, []),
    ("get", "/auth/whoami", "The caller's name, role and scope", [], None, []),
    ("post", "/auth/ticket",
     "A single-use ticket (30 s) for ?ticket= on a GET feed or the websocket", [], None, []),
    ("get", "/openapi.json", "This document", [], None, []),
    ("get", "/processes", "Template names, or running pids with running=true", ["running"],
     None, []),
    ("post", "/processes", "Create a template (and start it unless start=false)", [], "template",
     ["invalid_json", "invalid_process_info", "bad_value", "conflict", "payload_too_large",
      "dependency_cycle", "unknown_dependency"]),
    ("head", "/processes/{name}", "Does the template (or pid, if digits) exist", [], None,
     ["not_found"]),
    ("get", "/processes/{name}", "Template settings (of the pid's template, if digits)", [], None,
     ["not_found", "bad_value"]),
    ("put", "/processes/{name}", "Replace a template's settings and restart it", [], "update",
     ["invalid_json", "invalid_process_info", "bad_value", "not_found", "payload_too_large",
      "method_not_allowed", "dependency_cycle", "unknown_dependency"]),
    ("delete", "/processes/{name}", "Stop and remove a template (or stop one pid, if digits)",
     [], None, ["not_found", "bad_value"]),
    ("get", "/processes/{name}/{action}",
     "_pids: running pids of a template (state: only those in it); _logs: its log file "
     "history (tail: last N lines)",
     ["label", "tail", "state"], None,
     ["not_found", "resource_not_found", "io_not_found", "bad_value", "method_not_allowed"]),
    ("post", "/processes/{name}/{action}",
     "_start, _stop, _restart, _add, _sub, _signal, _rotate on a template; _stop, _signal on a pid",
     ["rolling", "max_unavailable", "ready_timeout"], None,
     ["not_found", "resource_not_found", "bad_value", "no_signal_number", "conflict"]),
    ("get", "/processes/{name}/{action}/{arg}", "_logs/<label>; _pids (the argument is ignored)",
     ["label", "tail", "state"], None,
     ["not_found", "resource_not_found", "io_not_found", "bad_value", "method_not_allowed"]),
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
     ["bad_event_type", "bad_value"]),
    ("get", "/watch/{a}/{b}", "Event feed for a pattern a.b", ["feed", "heartbeat"], None,
     ["bad_value"]),
    ("get", "/watch/{a}/{b}/{c}", "Event feed for proc.<name>.<event>", ["feed", "heartbeat"],
     None, ["bad_event_type", "bad_value"]),
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
     ["bad_request"]),
]  # fmt: skip
