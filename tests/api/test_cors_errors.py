"""CORS headers (spec 2.3) on every kind of response, preflight, and JSON errors (spec 2.2).

gaffer 0.4's open CORS is ``cors_origins = *`` now (the default refuses foreign
origins: tests/api/test_security.py); these tests run with it, on ``client``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from flask import Flask

from gaffer_gevent import __version__
from gaffer_gevent.api import create_app
from gaffer_gevent.api.access import READ, ROUTES
from gaffer_gevent.config import Address, EndpointConfig
from gaffer_gevent.manager import Manager
from gaffer_gevent.server import make_servers
from tests.api.support import create

ALLOW_METHODS = "POST, GET, PUT, DELETE, OPTIONS"
ALLOW_HEADERS = "X-Requested-With, X-HTTP-Method-Override, Content-Type, Accept, Authorization"
ORIGINS = [None, "null", "http://a.example"]


@contextmanager
def serve(app: Flask) -> Iterator[httpx.Client]:
    """Serve ``app`` like gafferd does, on an ephemeral port, and give a client for it."""
    endpoint = EndpointConfig("extra", [Address("tcp", "127.0.0.1", 0, "")])
    ((wsgi, url),) = make_servers(app, [endpoint])
    wsgi.start()
    try:
        with httpx.Client(base_url=url, timeout=10, verify=False) as c:
            yield c
    finally:
        wsgi.stop(timeout=2)


def origin_headers(origin: str | None) -> dict[str, str]:
    return {} if origin is None else {"Origin": origin}


def check_cors(r: httpx.Response, origin: str | None, expected: str = "*") -> None:
    assert r.headers.get("access-control-allow-origin") == expected, r.headers
    assert r.headers.get("access-control-allow-methods") == ALLOW_METHODS
    assert r.headers.get("access-control-max-age") == "86400"
    assert r.headers.get("access-control-allow-headers") == ALLOW_HEADERS
    # Never with a wildcard or an echoed origin: a browser must not send cookies along.
    assert "access-control-allow-credentials" not in r.headers


@pytest.fixture
def client(manager: Manager) -> Iterator[httpx.Client]:
    """The API with gaffer 0.4's open CORS (``cors_origins = *``)."""
    with serve(create_app(manager, cors_origins=["*"])) as c:
        yield c


# -- the root ---------------------------------------------------------------------------


def test_welcome_and_ping(client: httpx.Client) -> None:
    r = client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {"welcome": "gaffer", "version": __version__}
    r = client.get("/ping")
    assert (r.status_code, r.text) == (200, "OK")
    assert r.headers["content-type"].startswith("text/plain")


# -- CORS on every response ------------------------------------------------------------------


@pytest.mark.parametrize("origin", ORIGINS)
def test_cors_on_success_and_errors(client: httpx.Client, origin: str | None) -> None:
    headers = origin_headers(origin)
    create(client, "x")
    responses = [
        client.get("/ping", headers=headers),
        client.get("/processes", headers=headers),
        client.post("/processes/x/_add", headers=headers),
        client.get("/processes/nope", headers=headers),  # 404
        client.post("/processes", content=b"{", headers=headers),  # 400
        client.post("/processes", json={"name": "x", "cmd": "y"}, headers=headers),  # 409
        client.post("/streams/1/stdin", content=b"x", headers=headers),  # 403
        client.get("/nowhere/at/all", headers=headers),  # unknown route
        client.delete("/ping", headers=headers),  # 405
    ]
    statuses = [r.status_code for r in responses]
    assert statuses == [200, 200, 200, 404, 400, 409, 403, 404, 405]
    for r in responses:
        check_cors(r, origin)


@pytest.mark.parametrize("origin", ORIGINS)
def test_cors_on_head(client: httpx.Client, origin: str | None) -> None:
    create(client, "x", start=False)
    for path, status in (("/processes/x", 200), ("/processes/nope", 404), ("/processes/7", 404)):
        r = client.head(path, headers=origin_headers(origin))
        assert (r.status_code, r.content) == (status, b"")
        check_cors(r, origin)


@pytest.mark.parametrize("origin", ORIGINS)
@pytest.mark.parametrize(
    "path", ["/streams/1/out", "/watch", "/watch/proc/x/spawn", "/stats/x", "/stats/x/1"]
)
def test_cors_on_streams(client: httpx.Client, origin: str | None, path: str) -> None:
    create(client, "x", redirect_output=["out"])
    params = {"feed": "continuous"}
    with client.stream("GET", path, params=params, headers=origin_headers(origin)) as r:
        assert r.status_code == 200
        check_cors(r, origin)


@pytest.mark.parametrize("origin", ORIGINS)
@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/ping",
        "/processes",
        "/processes/x",
        "/processes/1",
        "/processes/x/_start",
        "/processes/1/_signal/15",
        "/status/x",
        "/groups/g/_stop",
        "/watch/proc/x/spawn",
        "/stats/x/1",
        "/streams/1/stdin",
        "/openapi.json",
        "/no/such/route",
    ],
)
def test_options_is_an_empty_204_everywhere(
    client: httpx.Client, origin: str | None, path: str
) -> None:
    for extra in ({}, {"Access-Control-Request-Method": "POST"}):
        r = client.options(path, headers={**origin_headers(origin), **extra})
        assert (r.status_code, r.content) == (204, b"")
        check_cors(r, origin)


def test_an_allow_list_echoes_only_its_origins(manager: Manager) -> None:
    app = create_app(manager, cors_origins=["http://ok.example"])
    with serve(app) as client:
        r = client.get("/processes", headers={"Origin": "http://ok.example"})
        check_cors(r, "http://ok.example", expected="http://ok.example")
        assert "Origin" in r.headers["vary"]
        r = client.get("/processes/nope", headers={"Origin": "http://ok.example"})
        assert r.status_code == 404
        check_cors(r, "http://ok.example", expected="http://ok.example")
        for origin in ("http://evil.example", "http://ok.example.evil", "null"):
            r = client.get("/processes", headers={"Origin": origin})
            assert (r.status_code, r.json()["error"]) == (403, "forbidden_origin")
            assert r.headers.get("access-control-allow-origin") in (None, "")
            r = client.options("/processes", headers={"Origin": origin})
            assert r.status_code == 403
            assert r.headers.get("access-control-allow-origin") in (None, "")
            assert r.headers.get("access-control-allow-credentials") in (None, "")


# -- JSON errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/nope"), ("GET", "/groups/g/_start/extra"), ("POST", "/no/where"),
     ("GET", "/streams/1"), ("GET", "/watch/a/b/c/d")],
)  # fmt: skip
def test_unknown_routes_are_json_404(client: httpx.Client, method: str, path: str) -> None:
    r = client.request(method, path)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {"error": "not_found"}


@pytest.mark.parametrize(
    ("method", "path"),
    [("DELETE", "/ping"), ("POST", "/"), ("PUT", "/processes"), ("POST", "/stats"),
     ("DELETE", "/watch"), ("PUT", "/streams/1/out"), ("POST", "/status/x"),
     ("POST", "/groups/g")],
)  # fmt: skip
def test_wrong_methods_are_json_405(client: httpx.Client, method: str, path: str) -> None:
    r = client.request(method, path)
    assert r.status_code == 405
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {"error": "method_not_allowed"}
    assert r.headers.get("allow")  # what the route does accept


def test_a_server_error_is_json_and_leaves_children_alone(
    manager: Manager, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(manager, cors_origins=["*"])

    @app.route("/boom")
    def boom() -> str:
        raise RuntimeError("a bug")

    with serve(app) as client:
        r = client.get("/boom")
        assert (r.status_code, r.json()["error"]) == (403, "forbidden")  # no role declared
        monkeypatch.setitem(ROUTES, ("boom", "GET"), READ)
        create(client, "x")
        r = client.get("/boom", headers={"Origin": "http://a.example"})
        assert r.status_code == 500
        assert r.headers["content-type"].startswith("application/json")
        assert r.json() == {"error": "internal_error"}
        assert b"Traceback" not in r.content and b"a bug" not in r.content
        check_cors(r, "http://a.example")
        assert client.get("/status/x").json()["running"] == 1
        assert client.get("/ping").text == "OK"
