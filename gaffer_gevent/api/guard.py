"""The guard in front of every route: Host, Origin, credentials, role, scope; CORS; audit.

Checks run before any view, in an order that does no work for a refused
request: a Host that names none of our addresses (DNS rebinding) is 421; a
browser request from a foreign origin that would change something is 403
``forbidden_origin``; an address with too many failed logins waits (429); no or
an unknown credential is 401; a role or scope too small is 403 ``forbidden``.
Routes and their roles live in ``access.ROUTES``; a route missing there is
refused. Requests that change something, and every refusal, are events on the
bus (``api.<action>``, ``auth.denied``) with the caller's name, never its token.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import math
import socket
from collections.abc import Callable
from fnmatch import fnmatchcase
from typing import Any

from flask import Response, g, request

from ..auth import ANONYMOUS, Principal, Security
from ..environ import CLIENT_SUBJECT_KEY, SOCKET_KEY
from ..errors import (
    ForbiddenOrigin,
    GafferError,
    MisdirectedRequest,
    NotAllowed,
    TooManyFailures,
    Unauthorized,
)
from ..events import EventFilter
from .access import PID_ROUTES, ROUTES, TEMPLATE_ACTIONS, Access
from .extension import GafferState, gaffer, manager
from .params import is_pid_segment, json_body, pid_of

CORS_METHODS = "POST, GET, PUT, DELETE, OPTIONS"
CORS_HEADERS = "X-Requested-With, X-HTTP-Method-Override, Content-Type, Accept, Authorization"
CORS_MAX_AGE = "86400"
#: Statuses the guard answers itself; each is an ``auth.denied`` event.
DENIALS = frozenset({401, 403, 421, 429})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
WEBSOCKET_ENDPOINT = "websocket.wstream"
#: Longest stretch of a raw path put in an ``auth.denied`` event.
MAX_EVENT_PATH = 200


def current_principal() -> Principal:
    """Who is calling; the anonymous admin when no credential is configured."""
    principal: Principal = g.get("gaffer_principal", ANONYMOUS)
    return principal


def visible(name: str) -> bool:
    """May the caller see template ``name`` (in lists, feeds and stats)?"""
    return current_principal().sees(name)


def event_filter() -> EventFilter | None:
    """For a scoped caller's feeds: only events about its templates."""
    principal = current_principal()
    if not principal.scoped:
        return None

    def accept(event: str, payload: dict[str, Any]) -> bool:
        name = payload.get("name")
        return isinstance(name, str) and principal.sees(name)

    return accept


def track_session(close: Callable[[], None]) -> Callable[[], None]:
    """Remember an open feed or websocket under its caller, so a revoked token ends it.

    Returns the function that forgets it again (call it when the feed ends).
    """
    return gaffer().security.sessions.add(current_principal(), close)


def allowed_origins(state: GafferState) -> list[str]:
    """``cors_origins`` as configured, else ``*`` with auth on (bearer tokens are not
    ambient credentials a foreign page could use) and no origin at all without it."""
    if state.settings.cors_origins is not None:
        return state.settings.cors_origins
    return ["*"] if state.security.credentials.enabled else []


# -- before every request ------------------------------------------------------------------


def check_request() -> Response | None:
    """``before_request``: refuse, answer a preflight, or let the view run."""
    state = gaffer()
    endpoint = request.url_rule.endpoint if request.url_rule is not None else None
    method = "GET" if request.method == "HEAD" else request.method
    access = _access(endpoint, method)
    if access is not None and access.role is None:
        return None  # /ping and /health: for load balancers, whoever asks
    try:
        _check_host(state)
        _check_origin(state, changes=method not in SAFE_METHODS or endpoint == WEBSOCKET_ENDPOINT)
        if request.method == "OPTIONS":
            return Response(status=204)  # a preflight carries no credential
        principal = _authenticate(state.security, access)
        g.gaffer_principal = principal
        if endpoint is None:
            return None  # no such route or method: routing answers 404 or 405
        if access is None or access.role is None:
            raise NotAllowed("this route declares no role, so nobody may call it")
        if not principal.can(access.role):
            raise NotAllowed(
                f"needs role {access.role.label} (this token has {principal.role.label})"
            )
        targets = _targets(endpoint, method)
        if principal.scoped and any(not principal.sees(name) for name in targets):
            raise NotAllowed("outside this token's scope")
    except GafferError as exc:
        g.gaffer_denied = exc.code
        raise
    if access.action is not None:
        g.gaffer_audit = (_action_name(access), targets[0] if targets else None)
    return None


def _access(endpoint: str | None, method: str) -> Access | None:
    if endpoint is None:
        return None
    if (endpoint, method) in PID_ROUTES and is_pid_segment(
        (request.view_args or {}).get("segment", "")
    ):
        return PID_ROUTES[(endpoint, method)]
    return ROUTES.get((endpoint, method))


def _check_host(state: GafferState) -> None:
    """The Host header must name one of our addresses, ``localhost`` or a ``server_names`` entry.

    A page on a name the attacker controls that was re-pointed at 127.0.0.1 (DNS
    rebinding) sends that name: it gets 421 and nothing else.
    """
    raw = request.headers.get("Host")
    if raw is None:
        return  # an HTTP/1.0 client without a Host: not a browser
    family, local = _connection()
    if family == socket.AF_UNIX:
        return  # no browser reaches a unix socket
    host = raw.strip().lower()
    host = host[1:].partition("]")[0] if host.startswith("[") else host.rpartition(":")[0] or host
    host = host.rstrip(".")
    if host == "localhost" or any(fnmatchcase(host, name) for name in state.settings.server_names):
        return
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise MisdirectedRequest(
            f"Host {host!r} is not an address of gafferd: list it in [gaffer] server_names"
        ) from None
    ours = local is None or str(address) in local or str(address) in state.settings.bound_hosts
    if not (address.is_loopback or ours):
        raise MisdirectedRequest(f"Host {host!r} is not an address of gafferd")


def _connection() -> tuple[int | None, set[str] | None]:
    """The family of the client's connection and our local address on it, when known."""
    sock = request.environ.get(SOCKET_KEY)
    if sock is not None:
        try:
            name = sock.getsockname()
        except OSError:
            return None, None
        if sock.family == socket.AF_UNIX:
            return socket.AF_UNIX, None
        return sock.family, {str(ipaddress.ip_address(name[0].partition("%")[0]))}
    server = request.environ.get("SERVER_NAME")
    if not request.remote_addr:
        return socket.AF_UNIX, None  # gunicorn on a unix socket
    return None, {server} if server else None


def _own_origin() -> str:
    return f"{request.scheme}://{request.host}".lower()


def _check_origin(state: GafferState, *, changes: bool) -> None:
    """Refuse what a web page on a foreign origin asks of the operator's browser."""
    origin = request.headers.get("Origin")
    allowed = allowed_origins(state)
    listed = "*" in allowed or (origin is not None and origin in allowed)
    if origin is None or origin.lower() == _own_origin():
        cross_site = request.headers.get("Sec-Fetch-Site", "").lower() == "cross-site"
        if cross_site and changes and "*" not in allowed:
            raise ForbiddenOrigin("a cross-site request may not change anything")
        return
    if listed:
        return
    if changes or not state.security.credentials.enabled:
        raise ForbiddenOrigin(f"origin {origin!r} is not listed in [gaffer] cors_origins")


def _authenticate(security: Security, access: Access | None) -> Principal:
    """The caller from its bearer token, ticket or client certificate; 401 otherwise."""
    address = request.remote_addr or ""
    if not security.credentials.enabled:
        # A certificate the CA signed is authentication enough (client_cert = required);
        # [client:CN] sections are what give certificates narrower roles.
        verified = bool(request.environ.get(CLIENT_SUBJECT_KEY))
        local = _is_local(address) or verified
        if not gaffer().settings.allow_unauthenticated and not local:
            raise NotAllowed(
                "gafferd has no tokens, so it serves loopback clients only: add a [token:NAME]"
                " section (gafferd token NAME --role ROLE) or set allow_unauthenticated"
            )
        return ANONYMOUS
    wait = security.throttle.retry_after(address)
    if wait is not None:
        retry = str(max(1, math.ceil(wait)))
        raise TooManyFailures("too many failed authentications", headers={"Retry-After": retry})
    principal, offered = _credential(security, access)
    if principal is None:
        if offered:
            security.throttle.fail(address)
        challenge = 'Bearer realm="gaffer"' + (', error="invalid_token"' if offered else "")
        raise Unauthorized(
            "unknown token" if offered else "send Authorization: Bearer <token>",
            headers={"WWW-Authenticate": challenge},
        )
    return principal


def _credential(security: Security, access: Access | None) -> tuple[Principal | None, bool]:
    """(principal or None, whether a credential was offered at all)."""
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None, True
        return security.credentials.authenticate(token.strip()), True
    ticket = request.args.get("ticket")
    if ticket is not None:
        usable = access is not None and access.ticket and request.method == "GET"
        return (security.tickets.redeem(ticket) if usable else None), True
    subject = request.environ.get(CLIENT_SUBJECT_KEY)
    if subject:
        return security.credentials.for_subject(subject), True
    return None, False


def _is_local(address: str) -> bool:
    if not address:
        return True  # a unix socket
    try:
        return ipaddress.ip_address(address.partition("%")[0]).is_loopback
    except ValueError:
        return False


def _targets(endpoint: str | None, method: str) -> list[str]:
    """The templates a request touches, for the scope check (lists filter themselves)."""
    args = request.view_args or {}
    mgr = manager()
    if endpoint in ("processes.item", "processes.action"):
        segment = args["segment"]
        return _owner(segment) if is_pid_segment(segment) else [segment]
    if endpoint in ("processes.status", "stats.template_stats"):
        return [args["name"]]
    if endpoint == "stats.process_stats":
        return [args["name"], *_owner(args["segment"])]
    if endpoint in ("streams.stream", WEBSOCKET_ENDPOINT):
        return _owner(args["segment"])
    if endpoint in ("groups.item", "groups.action"):
        return list(mgr.groups.get(args["group"], [])) or [f"{args['group']}:"]
    if endpoint == "processes.collection" and method == "POST":
        try:
            body = json_body()
        except GafferError:
            return []  # the view answers it (invalid_json, payload_too_large)
        name = body.get("name") if isinstance(body, dict) else None
        return [name] if isinstance(name, str) else []
    return []


def _owner(segment: str) -> list[str]:
    """The template of the pid in ``segment``; none when there is no such pid (the view 404s)."""
    pid = pid_of(segment)
    if pid is None:
        return []  # not a pid the view will accept (it answers bad_value)
    process = manager().find_process(pid)
    return [process.name] if process is not None else []


def _action_name(access: Access) -> str:
    if access.action == "action":
        action = (request.view_args or {}).get("action", "")
        return action[1:] if action in TEMPLATE_ACTIONS else "action"
    if access.action == "group_action":
        word = (request.view_args or {}).get("action", "").partition("_")[2]
        return f"group_{word}" if word in ("start", "stop", "restart") else "group_action"
    return access.action or "action"


# -- after every request -------------------------------------------------------------------


def finish_response(response: Response) -> Response:
    """``after_request``: CORS headers, the audit event, and a clean refusal for a websocket."""
    state = gaffer()
    _cors(state, response)
    denied = g.get("gaffer_denied")
    if denied is not None and response.status_code in DENIALS:
        _publish(state, "auth.denied", response, error=denied)
        _refuse_websocket(denied)
    else:
        audit = g.get("gaffer_audit")
        if audit is not None and response.status_code < 400:
            action, name = audit
            _publish(state, f"api.{action}", response, name=name)
    return response


def _cors(state: GafferState, response: Response) -> None:
    allowed = allowed_origins(state)
    origin = request.headers.get("Origin")
    if "*" in allowed:
        response.headers["Access-Control-Allow-Origin"] = "*"
    elif origin is not None and origin in allowed:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.vary.add("Origin")
    else:
        if allowed:
            response.vary.add("Origin")
        return
    response.headers["Access-Control-Allow-Methods"] = CORS_METHODS
    response.headers["Access-Control-Allow-Headers"] = CORS_HEADERS
    response.headers["Access-Control-Max-Age"] = CORS_MAX_AGE


def _publish(state: GafferState, event: str, response: Response, **fields: Any) -> None:
    principal = g.get("gaffer_principal")
    route = request.url_rule.rule if request.url_rule is not None else request.path
    state.manager.bus.publish(
        event,
        token=principal.name if principal is not None else None,
        remote=request.remote_addr or "unix",
        method=request.method,
        route=route[:MAX_EVENT_PATH],
        status=response.status_code,
        **fields,
    )


def _refuse_websocket(code: str) -> None:
    """A refused websocket was already upgraded by the handler: say why, close 1008 (policy)."""
    ws = request.environ.get("wsgi.websocket")
    if ws is None or ws.closed:
        return
    from .websocket import POLICY_VIOLATION, close_websocket

    with contextlib.suppress(Exception):  # a client already gone needs no explanation
        ws.send(json.dumps({"error": code}))
    close_websocket(ws, POLICY_VIOLATION)
