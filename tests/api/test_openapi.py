"""GET /openapi.json describes every route of the app: walking the URL map keeps it true.

Routes and documented paths are compared by shape (the literal segments and
where the parameters are), since the document uses generic parameter names
({name}, {pid}) where the code has ``<segment>``.
"""

from __future__ import annotations

import re
from typing import Any, cast

import httpx
import pytest
from flask import Flask

from tests.conftest import LiveServer

Shape = tuple[str, ...]
#: Methods the framework answers by itself on every route (HEAD for GET, OPTIONS for CORS).
IMPLICIT = {"head", "options"}
SPEC_ERRORS = {
    "not_found": 404, "resource_not_found": 404, "bad_event_type": 404, "io_not_found": 404,
    "io_not_redirected": 400, "invalid_json": 400, "invalid_process_info": 400,
    "bad_value": 400, "no_signal_number": 400, "conflict": 409, "forbidden_write": 403,
    "payload_too_large": 413, "stdin_full": 503,
    # the guard's (security): any route but /ping and /health
    "unauthorized": 401, "forbidden": 403, "forbidden_origin": 403, "misdirected_request": 421,
    "too_many_failures": 429,
}  # fmt: skip


@pytest.fixture
def document(client: httpx.Client) -> dict[str, Any]:
    r = client.get("/openapi.json")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = r.json()
    return body


def shape(path: str) -> Shape:
    """``/processes/<segment>/<path:arg>`` and ``/processes/{name}/{arg}`` -> same shape."""
    segments = path.strip("/").split("/") if path != "/" else []
    return tuple(
        "{}" if re.fullmatch(r"<[^>]+>|\{[^}]+\}", segment) else segment for segment in segments
    )


def routed(app: Flask) -> dict[Shape, set[str]]:
    routes: dict[Shape, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        methods = {m.lower() for m in rule.methods or ()} - IMPLICIT
        routes.setdefault(shape(rule.rule), set()).update(methods)
    return routes


def documented(document: dict[str, Any]) -> dict[Shape, set[str]]:
    paths: dict[Shape, set[str]] = {}
    for path, operations in document["paths"].items():
        paths.setdefault(shape(path), set()).update(set(operations) - IMPLICIT)
    return paths


def test_the_document_is_openapi_3(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"]
    assert document["info"]["version"]


def test_every_route_is_documented_and_nothing_else(
    server: LiveServer, document: dict[str, Any]
) -> None:
    routes = routed(cast(Flask, server.app))
    docs = documented(document)
    assert set(routes) - set(docs) == set(), "routes without documentation"
    assert set(docs) - set(routes) == set(), "documented paths that are not routes"
    for path_shape, methods in routes.items():
        assert docs[path_shape] == methods, "/" + "/".join(path_shape)


def test_the_shape_comparison_notices_a_new_route(
    server: LiveServer, document: dict[str, Any]
) -> None:
    app = cast(Flask, server.app)
    routes = routed(app)
    routes.setdefault(shape("/processes/<segment>/<action>/<arg>/<more>"), set()).add("get")
    assert routes != documented(document)


def test_head_is_documented_where_gaffer_defines_it(document: dict[str, Any]) -> None:
    heads = [path for path, ops in document["paths"].items() if "head" in ops]
    assert [shape(p) for p in heads] == [("processes", "{}")]


def test_path_parameters_are_declared(document: dict[str, Any]) -> None:
    for path, operations in document["paths"].items():
        names = re.findall(r"\{([^}]+)\}", path)
        for method, operation in operations.items():
            declared = [p["name"] for p in operation["parameters"] if p["in"] == "path"]
            assert declared == names, (method, path)
            assert all(p.get("required") for p in operation["parameters"] if p["in"] == "path")
            assert "200" in operation["responses"], (method, path)


def test_error_responses_use_the_spec_statuses(document: dict[str, Any]) -> None:
    seen: set[str] = set()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status == "200":
                    continue
                codes = [c for c in response["description"].split(", ") if c]
                assert codes, (method, path, status)
                for code in codes:
                    assert SPEC_ERRORS[code] == int(status), (method, path, code)
                seen.update(codes)
    assert seen == set(SPEC_ERRORS)


def test_the_bearer_scheme_is_declared_and_only_the_health_checks_are_public(
    document: dict[str, Any],
) -> None:
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer"
    }  # fmt: skip
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            public = operation.get("security") == []
            assert public == (path in ("/ping", "/health")), (method, path)
            assert ("401" not in operation["responses"]) == public, (method, path)


def test_feeds_document_their_query_parameters(document: dict[str, Any]) -> None:
    for path in ("/watch", "/streams/{pid}/{label}"):
        query = {p["name"] for p in document["paths"][path]["get"]["parameters"]}
        assert {"feed", "heartbeat"} <= query, path
    create = document["paths"]["/processes"]["post"]
    assert "requestBody" in create
