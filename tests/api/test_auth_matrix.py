"""Every route x every kind of caller, generated from the route table, with real requests.

Callers: no token, a wrong token, one token per role, and a scoped admin
(``web:*``) asking about a template outside its scope. A route missing from
``CASES`` fails the test, and so does a route of the app missing from
``access.ROUTES``: nothing can be added without declaring who may call it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import websocket

from gaffer_gevent.api.access import PID_ROUTES, ROUTES, Access
from gaffer_gevent.auth import Role
from gaffer_gevent.manager import Manager
from tests.api.secure import ROLES, SecureServer, secure_server

Request = tuple[str, str, dict[str, Any]]
#: (endpoint, method[, "pid"]) -> builds one request; ``inside`` picks the scoped token's side.
Case = Callable[[SecureServer, bool], Request]


def template_case(method: str, suffix: str = "", **kwargs: Any) -> Case:
    def build(s: SecureServer, inside: bool) -> Request:
        return method, f"/processes/{s.template(inside)}{suffix}", kwargs

    return build


def pid_case(method: str, path: str, **kwargs: Any) -> Case:
    """``path`` with ``{name}`` and ``{pid}`` of a running echo process."""

    def build(s: SecureServer, inside: bool) -> Request:
        name, pid = s.pid(inside)
        return method, path.format(name=name, pid=pid), kwargs

    return build


def fixed(method: str, path: str, **kwargs: Any) -> Case:
    return lambda s, inside: (method, path, kwargs)


def create_case(s: SecureServer, inside: bool) -> Request:
    body = {"name": s.name(inside), "cmd": "sleep", "args": ["600"], "start": False}
    return "POST", "/processes", {"json": body}


def group_case(method: str, suffix: str = "") -> Case:
    def build(s: SecureServer, inside: bool) -> Request:
        group = s.template(inside).partition(":")[0]
        return method, f"/groups/{group}{suffix}", {}

    return build


CONTINUOUS = {"params": {"feed": "continuous"}}
CASES: dict[tuple[str, ...], Case] = {
    ("root.ping", "GET"): fixed("GET", "/ping"),
    ("auth.health", "GET"): fixed("GET", "/health"),
    ("auth.ready", "GET"): fixed("GET", "/ready"),
    ("root.welcome", "GET"): fixed("GET", "/"),
    ("root.openapi", "GET"): fixed("GET", "/openapi.json"),
    ("auth.whoami", "GET"): fixed("GET", "/auth/whoami"),
    ("auth.ticket", "POST"): fixed("POST", "/auth/ticket"),
    ("processes.collection", "GET"): fixed("GET", "/processes"),
    ("processes.collection", "POST"): create_case,
    ("processes.item", "GET"): template_case("GET"),
    ("processes.item", "PUT"): template_case("PUT", json={"cmd": "sleep", "start": False}),
    ("processes.item", "DELETE"): template_case("DELETE"),
    ("processes.item", "DELETE", "pid"): pid_case("DELETE", "/processes/{pid}"),
    ("processes.action", "GET"): template_case("GET", "/_pids"),
    ("processes.action", "POST"): template_case("POST", "/_start"),
    ("processes.status", "GET"): lambda s, inside: ("GET", f"/status/{s.template(inside)}", {}),
    ("groups.collection", "GET"): fixed("GET", "/groups"),
    ("groups.item", "GET"): group_case("GET"),
    ("groups.item", "DELETE"): group_case("DELETE"),
    ("groups.action", "POST"): group_case("POST", "/_stop"),
    ("streams.stream", "GET"): pid_case("GET", "/streams/{pid}/out", **CONTINUOUS),
    ("streams.stream", "POST"): pid_case("POST", "/streams/{pid}/stdin", content=b"x\n"),
    ("websocket.wstream", "GET"): pid_case("GET", "/wstreams/{pid}", websocket=True),
    ("watch.watch", "GET"): fixed("GET", "/watch", **CONTINUOUS),
    ("stats.all_stats", "GET"): fixed("GET", "/stats"),
    ("stats.template_stats", "GET"): pid_case("GET", "/stats/{name}"),
    ("stats.process_stats", "GET"): pid_case("GET", "/stats/{name}/{pid}"),
    ("logs.subscriptions", "GET"): fixed("GET", "/debug/subscriptions"),
    ("metrics.scrape", "GET"): fixed("GET", "/metrics"),
}
#: Routes that name no template: a scoped token is filtered there, not refused.
UNSCOPED = {
    ("root.ping", "GET"), ("auth.health", "GET"), ("auth.ready", "GET"), ("root.welcome", "GET"),
    ("root.openapi", "GET"), ("auth.whoami", "GET"), ("auth.ticket", "POST"),
    ("processes.collection", "GET"), ("groups.collection", "GET"), ("watch.watch", "GET"),
    ("stats.all_stats", "GET"), ("logs.subscriptions", "GET"), ("metrics.scrape", "GET"),
}  # fmt: skip
CALLERS = ("none", "wrong", *ROLES, "scoped-outside")


def access_of(key: tuple[str, ...]) -> Access:
    return PID_ROUTES[key[:2]] if key[2:] == ("pid",) else ROUTES[(key[0], key[1])]


@pytest.fixture
def secure() -> Iterator[SecureServer]:
    manager = Manager()
    with secure_server(manager) as s:
        yield s
    manager.bus.close()


def send(s: SecureServer, request: Request, token: str | None) -> int:
    method, path, shared = request
    kwargs = dict(shared)
    if kwargs.pop("websocket", False):
        return websocket_status(s, path, token)
    with s.client(token) as client, client.stream(method, path, **kwargs) as r:
        return r.status_code


def websocket_status(s: SecureServer, path: str, token: str | None) -> int:
    """A real websocket: the status the guard's refusal names (it comes after the upgrade,
    as a message and a 1008 close), or 200 when stdin reaches the echo child."""
    headers = [f"Authorization: Bearer {token}"] if token else []
    ws = websocket.create_connection(s.url.replace("http", "ws") + path, header=headers, timeout=10)
    try:
        ws.send("hello\n")
        reply = ws.recv()
    finally:
        ws.close(timeout=1)
    if reply == "hello\n":
        return 200
    return {"unauthorized": 401, "forbidden": 403}[json.loads(reply)["error"]]


def test_every_route_of_the_app_declares_a_role(secure: SecureServer) -> None:
    for rule in secure.app.url_map.iter_rules():
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            assert (rule.endpoint, method) in ROUTES, (rule.rule, method)
    assert {key[:2] for key in CASES} == set(ROUTES)
    assert all(key[:2] in CASES for key in PID_ROUTES)


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("key", list(CASES), ids="-".join)
def test_the_guard_answers_each_caller(
    secure: SecureServer, key: tuple[str, ...], caller: str
) -> None:
    access = access_of(key)
    outside = caller == "scoped-outside"
    request = CASES[key](secure, not outside)
    token = {"none": None, "wrong": "not-a-token", "scoped-outside": secure.tokens["scoped"]}.get(
        caller, secure.tokens.get(caller)
    )
    status = send(secure, request, token)
    if access.role is None:
        assert status == 200, (key, caller)
    elif caller in ("none", "wrong"):
        assert status == 401, (key, caller)
    elif outside:
        assert status == (200 if key[:2] in UNSCOPED else 403), (key, caller)
    elif Role.parse(caller) >= access.role:
        assert status not in (401, 403), (key, caller, status)
        assert status < 500, (key, caller, status)
    else:
        assert status == 403, (key, caller)


def test_a_scoped_token_acts_inside_its_scope(secure: SecureServer) -> None:
    for key, case in CASES.items():
        if key[:2] not in UNSCOPED:
            status = send(secure, case(secure, True), secure.tokens["scoped"])
            assert status not in (401, 403), (key, status)
