"""The guard from outside: origins, Host names, tokens, tickets, throttling, scope, audit.

The browser-level attacks (a real page on another origin) are in
tests/test_browser_attacks.py; the route x caller matrix in test_auth_matrix.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from gaffer_gevent.api import replace_credentials
from gaffer_gevent.auth import FAILURE_LIMIT, Credentials
from gaffer_gevent.manager import Manager
from tests.api.secure import SecureServer, secure_server, spec
from tests.api.support import ECHO, create, create_one, error
from tests.conftest import LiveServer
from tests.helpers import wait_for

EVIL = "http://evil.example"


@pytest.fixture
def secure(manager: Manager) -> Iterator[SecureServer]:
    with secure_server(manager) as s:
        yield s


# -- without tokens: loopback only, and no web page may use the operator's browser ----------


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": EVIL},
        {"Origin": "null"},
        {"Origin": EVIL, "Content-Type": "text/plain"},
        {"Sec-Fetch-Site": "cross-site"},
    ],
)
def test_a_foreign_page_cannot_create_a_process(
    client: httpx.Client, server: LiveServer, headers: dict[str, str]
) -> None:
    body = json.dumps({"name": "pwned", "cmd": "true"})
    r = client.post("/processes", content=body, headers=headers)
    error(r, 403, "forbidden_origin")
    assert "access-control-allow-origin" not in r.headers
    assert "pwned" not in server.manager.states


def test_a_foreign_page_cannot_read_or_signal(client: httpx.Client) -> None:
    pid = create_one(client, "echo", ECHO)
    for method, path in (("GET", "/processes"), ("POST", f"/processes/{pid}/_signal/KILL"),
                         ("POST", f"/streams/{pid}/stdin"), ("OPTIONS", "/processes")):  # fmt: skip
        r = client.request(method, path, headers={"Origin": EVIL}, content=b"x")
        error(r, 403, "forbidden_origin")
    assert client.get(f"/processes/{pid}").status_code == 200  # still alive


def test_same_origin_and_plain_clients_are_served(client: httpx.Client, server: LiveServer) -> None:
    own = f"http://{server.host}:{server.port}"
    r = client.post("/processes", json={"name": "mine", "cmd": "true", "start": False},
                    headers={"Origin": own, "Sec-Fetch-Site": "same-origin"})  # fmt: skip
    assert r.status_code == 200, r.text
    assert client.get("/processes").json() == ["mine"]  # curl: no Origin
    assert "access-control-allow-origin" not in client.get("/processes").headers


@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "gaffer.local", "10.9.8.7"])
def test_dns_rebinding_gets_421(client: httpx.Client, host: str) -> None:
    r = client.get("/processes", headers={"Host": host})
    error(r, 421, "misdirected_request")
    assert client.get("/ping", headers={"Host": host}).status_code == 200  # load balancers


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST:5000", "127.0.0.1", "[::1]:80"])
def test_local_host_names_are_served(client: httpx.Client, host: str) -> None:
    assert client.get("/processes", headers={"Host": host}).status_code == 200


def test_server_names_extend_the_host_check(manager: Manager) -> None:
    names = ["gaffer.example.com", "*.ops.example"]
    with secure_server(manager, server_names=names) as s, s.client(s.tokens["read"]) as c:
        for host in ("gaffer.example.com", "a.ops.example:8443"):
            assert c.get("/processes", headers={"Host": host}).status_code == 200
        error(c.get("/processes", headers={"Host": "example.com"}), 421, "misdirected_request")


# -- with tokens ----------------------------------------------------------------------------


def test_401_names_the_scheme_and_never_echoes_a_token(secure: SecureServer) -> None:
    with secure.client() as c:
        r = c.get("/processes")
        error(r, 401, "unauthorized")
        assert r.headers["www-authenticate"].startswith("Bearer")
        r = c.get("/processes", headers={"Authorization": "Bearer guess-me-123"})
        error(r, 401, "unauthorized")
        assert 'error="invalid_token"' in r.headers["www-authenticate"]
        assert b"guess-me-123" not in r.content
        r = c.get("/processes", headers={"Authorization": f"Basic {secure.tokens['admin']}"})
        error(r, 401, "unauthorized")


def test_403_names_the_role_needed(secure: SecureServer) -> None:
    with secure.client(secure.tokens["read"]) as c:
        r = c.post("/processes", json={"name": "x", "cmd": "true"})
        error(r, 403, "forbidden")
        assert "admin" in r.json()["reason"]
        assert secure.tokens["read"] not in r.text


def test_whoami(secure: SecureServer) -> None:
    with secure.client(secure.tokens["scoped"]) as c:
        assert c.get("/auth/whoami").json() == {"name": "scoped", "role": "admin",
                                                "scope": ["web:*"]}  # fmt: skip
    with secure.client(secure.tokens["read"]) as c:
        assert c.get("/auth/whoami").json() == {"name": "read", "role": "read", "scope": ["*"]}


def test_with_tokens_any_origin_may_call_with_a_token(secure: SecureServer) -> None:
    with secure.client(secure.tokens["admin"]) as c:
        r = c.post("/processes", json={"name": "x", "cmd": "true", "start": False},
                   headers={"Origin": EVIL})  # fmt: skip
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in r.headers
    with secure.client() as c:  # the page has no token: nothing happens
        r = c.post("/processes", json={"name": "y", "cmd": "true"}, headers={"Origin": EVIL})
        error(r, 401, "unauthorized")
        assert c.options("/processes", headers={"Origin": EVIL}).status_code == 204


def test_a_ticket_opens_one_feed_once(secure: SecureServer) -> None:
    _, pid = secure.pid(True)
    with secure.client(secure.tokens["read"]) as c:
        reply = c.post("/auth/ticket").json()
        assert reply["expires_in"] == 30
        ticket = reply["ticket"]
        assert len(ticket) >= 43  # 256 bits
    with secure.client() as c:
        url = f"/streams/{pid}/out"
        params = {"feed": "continuous", "ticket": ticket}
        with c.stream("GET", url, params=params) as r:
            assert r.status_code == 200
        error(c.get(url, params=params), 401, "unauthorized")  # single use


def test_a_ticket_is_refused_outside_the_feeds(secure: SecureServer) -> None:
    with secure.client(secure.tokens["admin"]) as c:
        tickets = [c.post("/auth/ticket").json()["ticket"] for _ in range(2)]
    with secure.client() as c:
        error(c.get("/processes", params={"ticket": tickets[0]}), 401, "unauthorized")
        r = c.post("/processes", params={"ticket": tickets[1]}, json={"name": "x", "cmd": "y"})
        error(r, 401, "unauthorized")


def test_failed_logins_are_throttled_per_address(secure: SecureServer) -> None:
    with secure.client("wrong") as c:
        for _ in range(FAILURE_LIMIT):
            error(c.get("/processes"), 401, "unauthorized")
        r = c.get("/processes")
        error(r, 429, "too_many_failures")
        assert 1 <= int(r.headers["retry-after"]) <= 60
    with secure.client(secure.tokens["read"]) as c:
        error(c.get("/processes"), 429, "too_many_failures")  # same address
    other = httpx.HTTPTransport(local_address="127.0.0.2")
    with secure.client(secure.tokens["read"], transport=other) as c:
        assert c.get("/processes").status_code == 200


def test_a_scoped_token_sees_only_its_templates(secure: SecureServer) -> None:
    inside, outside = secure.template(True), secure.template(False)
    with secure.client(secure.tokens["scoped"]) as c:
        assert c.get("/processes").json() == [inside]
        assert c.get("/groups").json() == ["web"]
        assert [s["name"] for s in c.get("/stats").json()] == [inside]
        with c.stream("GET", "/watch", params={"feed": "continuous"}) as feed:
            lines = feed.iter_lines()
            with secure.admin() as admin:
                admin.post(f"/processes/{outside}/_start")
                admin.post(f"/processes/{inside}/_start")
            event = json.loads(wait_for(lambda: next(line for line in lines if line.strip())))
            assert event["name"] == inside


def test_changes_and_refusals_are_audit_events(secure: SecureServer) -> None:
    with (
        secure.client(secure.tokens["read"]) as watcher,
        watcher.stream("GET", "/watch", params={"feed": "continuous"}) as feed,
    ):
        lines = (json.loads(line) for line in feed.iter_lines() if line.strip())
        with secure.admin() as admin:
            admin.post("/processes", json={"name": "a", "cmd": "true", "start": False})
        with secure.client() as nobody:
            nobody.delete("/processes/a")
        seen = [next(lines) for _ in range(3)]
    audit = [e for e in seen if e["event"].startswith(("api.", "auth."))]
    assert [e["event"] for e in audit] == ["api.create", "auth.denied"]
    assert audit[0]["token"] == "admin" and audit[0]["name"] == "a"
    assert audit[0]["remote"] == "127.0.0.1" and audit[0]["route"] == "/processes"
    assert audit[1]["error"] == "unauthorized" and audit[1]["status"] == 401
    assert not any(token in json.dumps(seen) for token in secure.tokens.values())


def test_revoking_a_token_closes_its_feeds_at_once(secure: SecureServer) -> None:
    with secure.client(secure.tokens["read"]) as c:
        with c.stream("GET", "/watch", params={"feed": "eventsource"}) as feed:
            chunks = feed.iter_raw()
            assert next(chunks).startswith(b"retry:")
            kept = [spec("admin", "admin", secure.tokens["admin"])]
            assert replace_credentials(secure.app, Credentials(kept)) == 1
            assert b"".join(chunks) == b""  # the feed ended
        error(c.get("/processes"), 401, "unauthorized")
    with secure.admin() as c:
        assert c.get("/processes").status_code == 200


def test_without_tokens_the_caller_is_an_anonymous_admin(client: httpx.Client) -> None:
    assert client.get("/auth/whoami").json() == {"name": "anonymous", "role": "admin",
                                                 "scope": ["*"]}  # fmt: skip
    create(client, "x", start=False)
    assert client.get("/health").json() == {"status": "ok", "templates": 1}
