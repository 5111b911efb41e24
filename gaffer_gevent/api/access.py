"""The one table of who may call what: every route and method with the role it needs.

The guard refuses any route and method missing here (deny by default), and a
test walks the app's URL map to prove each one is listed. ``action`` names the
audit event (``api.<action>``) of a route that changes something; reads have
none. ``ticket`` marks the feeds a browser may open with ``?ticket=`` (an
EventSource or a WebSocket cannot set an ``Authorization`` header).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..auth import Role


@dataclass(frozen=True)
class Access:
    role: Role | None  # None: public (load balancers' health checks)
    action: str | None = None
    ticket: bool = False


PUBLIC = Access(None)
READ = Access(Role.READ)
FEED = Access(Role.READ, ticket=True)

#: (endpoint, method) -> access. HEAD is checked as GET; OPTIONS (CORS preflight) needs none.
ROUTES: dict[tuple[str, str], Access] = {
    ("root.ping", "GET"): PUBLIC,
    ("auth.health", "GET"): PUBLIC,
    ("auth.ready", "GET"): READ,
    ("root.welcome", "GET"): READ,
    ("root.openapi", "GET"): READ,
    ("auth.whoami", "GET"): READ,
    ("auth.ticket", "POST"): Access(Role.READ, "ticket"),
    ("processes.collection", "GET"): READ,
    ("processes.collection", "POST"): Access(Role.ADMIN, "create"),
    ("processes.item", "GET"): READ,
    ("processes.item", "PUT"): Access(Role.ADMIN, "update"),
    # DELETE of a name removes a template (admin); of a pid, stops it (see PID_ROUTES).
    ("processes.item", "DELETE"): Access(Role.ADMIN, "delete"),
    ("processes.action", "GET"): READ,
    ("processes.action", "POST"): Access(Role.OPERATE, "action"),
    ("processes.status", "GET"): READ,
    ("groups.collection", "GET"): READ,
    ("groups.item", "GET"): READ,
    ("groups.item", "DELETE"): Access(Role.ADMIN, "delete_group"),
    ("groups.action", "POST"): Access(Role.OPERATE, "group_action"),
    ("streams.stream", "GET"): FEED,
    ("streams.stream", "POST"): Access(Role.STDIN, "stdin"),
    ("websocket.wstream", "GET"): Access(Role.STDIN, "websocket", ticket=True),
    ("watch.watch", "GET"): FEED,
    ("stats.all_stats", "GET"): READ,
    ("stats.template_stats", "GET"): FEED,
    ("stats.process_stats", "GET"): FEED,
    ("logs.subscriptions", "GET"): READ,
    ("metrics.scrape", "GET"): READ,
}

#: Where a pid in the URL asks for less than a template name on the same route.
PID_ROUTES: dict[tuple[str, str], Access] = {
    ("processes.item", "DELETE"): Access(Role.OPERATE, "stop_pid"),
}

#: Actions of ``POST /processes/<name>/<action>`` named in audit events; others are "action".
TEMPLATE_ACTIONS = frozenset(
    {"_start", "_stop", "_restart", "_add", "_sub", "_signal", "_rotate", "_reload"}
)
