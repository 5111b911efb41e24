"""GET /openapi.json describes every route of the app: walking the URL map keeps it true.

Routes and documented paths are compared by shape (the literal segments and
where the parameters are), since the document uses generic parameter names
({name}, {pid}) where the code has ``<segment>``.
"""

from __future__ import annotations

import re
from typing import Any, cast

import httpx
import jsonschema_rs
import pytest
from flask import Flask

from gaffer_gevent.api.extension import DEFAULT_STDIN_MAX_BODY
from gaffer_gevent.api.openapi import OTHER_ANSWERS, build_spec
from gaffer_gevent.errors import BadValue
from gaffer_gevent.limits import (
    MAX_ARGS,
    MAX_INT_DIGITS,
    MAX_LOGFILE_BACKUPS,
    MAX_NAME_LENGTH,
    MAX_TIMEOUT,
    ProcessLimits,
    check_relative_path,
    name_problem,
)
from gaffer_gevent.template import KNOWN_KEYS
from tests.api.support import create
from tests.conftest import LiveServer

Shape = tuple[str, ...]
#: Methods the framework answers by itself on every route (HEAD for GET, OPTIONS for CORS).
IMPLICIT = {"head", "options"}
SPEC_ERRORS = {
    "not_found": 404, "resource_not_found": 404, "bad_event_type": 404, "io_not_found": 404,
    "io_not_redirected": 400, "invalid_json": 400, "invalid_process_info": 400,
    "bad_value": 400, "no_signal_number": 400, "conflict": 409, "forbidden_write": 403,
    "payload_too_large": 413, "stdin_full": 503, "method_not_allowed": 405,
    "bad_request": 400,
    # issue 15: depends_on refused at POST/PUT /processes
    "dependency_cycle": 400, "unknown_dependency": 400,
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
            success = "101" if path == "/wstreams/{pid}" else "200"  # the websocket's upgrade
            assert success in operation["responses"], (method, path)


def test_error_responses_use_the_spec_statuses(document: dict[str, Any]) -> None:
    seen: set[str] = set()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if int(status) < 400 or status in OTHER_ANSWERS.get((method, path), {}):
                    continue  # not an error: GET /ready's 503 lists the pids not ready
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


# -- the rules: the same bounds as the code, the same answers as the server ---------------------


def template_rules(document: dict[str, Any]) -> dict[str, Any]:
    create = document["paths"]["/processes"]["post"]["requestBody"]["content"]
    schema: dict[str, Any] = create["application/json"]["schema"]
    assert schema == document["components"]["schemas"]["Template"]
    return schema


def test_bounds_come_from_limits_and_the_servers_manager(
    server: LiveServer, document: dict[str, Any]
) -> None:
    rules = template_rules(document)
    props = rules["properties"]
    assert rules["additionalProperties"] is False
    assert set(rules["required"]) == {"name", "cmd"}
    assert set(props) == set(KNOWN_KEYS)
    assert props["name"]["maxLength"] == MAX_NAME_LENGTH
    assert props["numprocesses"]["maximum"] == server.manager.limits.max_processes
    assert props["buffer_size"]["maximum"] == server.manager.limits.max_buffer_size
    assert props["graceful_timeout"] == {"type": "number", "minimum": 0, "maximum": MAX_TIMEOUT}
    assert props["logfile_backups"] == {"type": "integer", "minimum": 0,
                                        "maximum": MAX_LOGFILE_BACKUPS}  # fmt: skip
    assert props["args"]["maxItems"] == MAX_ARGS
    stdin = document["paths"]["/streams/{pid}/{label}"]["post"]["requestBody"]["content"]
    assert stdin["application/octet-stream"]["schema"]["maxLength"] == DEFAULT_STDIN_MAX_BODY
    pids = [p["schema"] for p in document["paths"]["/streams/{pid}/{label}"]["get"]["parameters"]
            if p["name"] == "pid"]  # fmt: skip
    assert pids == [{"type": "string", "pattern": f"^[0-9]{{1,{MAX_INT_DIGITS}}}$"}]


def test_a_manager_with_other_limits_gets_its_own_numbers() -> None:
    limits = ProcessLimits(max_processes=7, max_total_processes=9, max_buffer_size=4096)
    props = build_spec(limits=limits, stdin_max_body=10)["components"]["schemas"]["Template"]
    assert props["properties"]["numprocesses"]["maximum"] == 7
    assert props["properties"]["buffer_size"]["maximum"] == 4096


NAMES = ["web", "web:1", "é", "a b", "x" * MAX_NAME_LENGTH, "x" * (MAX_NAME_LENGTH + 1), "",
         "1", "007", "1a", "^", "^1", "a.b", "a/b", " a", "a ", "x\n", "\x1b[31m",
         "a\x7f"]  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
def test_the_name_schema_is_the_name_rule(document: dict[str, Any], name: str) -> None:
    schema = template_rules(document)["properties"]["name"]
    assert jsonschema_rs.validator_for(schema).is_valid(name) == (name_problem(name) is None)


PATHS = ["app.log", "./app.log", "logs/app.log", "a//b.log", "/etc/shadow", "../x.log",
         "logs/../x.log", ".hidden", "logs/.x", "logs/", ".", "./.", "", "x\ny"]  # fmt: skip


@pytest.mark.parametrize("path", PATHS)
def test_the_log_path_schema_is_the_log_path_rule(document: dict[str, Any], path: str) -> None:
    schema = template_rules(document)["properties"]["stdout_logfile"]
    try:
        check_relative_path(path, "stdout_logfile")
        allowed = True
    except BadValue:
        allowed = False
    assert jsonschema_rs.validator_for(schema).is_valid(path) == allowed


def nullable(schema: dict[str, Any]) -> bool:
    types = schema.get("type", [])
    return "null" in types or any(s.get("type") == "null" for s in schema.get("anyOf", []))


def test_null_is_accepted_exactly_where_the_document_allows_it(
    client: httpx.Client, document: dict[str, Any]
) -> None:
    """The server's word on every key: null where the schema has it, 400 naming it elsewhere."""
    props = template_rules(document)["properties"]
    for index, (key, schema) in enumerate(sorted(props.items())):
        if key in ("name", "cmd", "group") or ("type" not in schema and "anyOf" not in schema):
            continue
        body = {"name": f"n{index}", "cmd": "sleep", "args": ["30"], "start": False, key: None}
        r = client.post("/processes", json=body)
        if nullable(schema):
            assert r.status_code == 200, (key, r.text)
        else:
            assert r.status_code == 400, (key, r.text)
            assert r.json()["error"] in ("invalid_process_info", "bad_value"), key


#: One value of each JSON type, empty and not: a key must refuse every one its schema refuses.
OF_EVERY_TYPE: list[Any] = [{}, {"x": "1"}, [], ["x"], "", "x", 0, 7, 1.5, False, True]


def test_a_value_of_a_type_the_document_refuses_is_refused(
    client: httpx.Client, document: dict[str, Any]
) -> None:
    """Empty values of the wrong type too: ``env: []`` or ``start: "no"`` are not defaults."""
    props = template_rules(document)["properties"]
    wrong: list[tuple[str, Any, int]] = []
    for index, (key, schema) in enumerate(sorted(props.items())):
        if key in ("name", "cmd", "group"):
            continue
        refuses = jsonschema_rs.validator_for(schema)
        for number, value in enumerate(OF_EVERY_TYPE):
            if refuses.is_valid(value):
                continue
            body = {"name": f"n{index}-{number}", "cmd": "sleep", "args": ["30"],
                    "start": False, key: value}  # fmt: skip
            r = client.post("/processes", json=body)
            if r.status_code != 400:
                wrong.append((key, value, r.status_code))
    assert wrong == [], " ".join(map(str, wrong))


def test_unknown_keys_are_refused_as_the_document_says(client: httpx.Client) -> None:
    r = client.post("/processes", json={"name": "x", "cmd": "true", "colour": "red"})
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_process_info"


def test_every_answer_states_its_content_type(document: dict[str, Any]) -> None:
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                where = (method, path, status)
                if method == "head" or status == "101":
                    assert "content" not in response, where  # no body
                elif int(status) >= 400:
                    assert list(response["content"]) == ["application/json"], where
                else:
                    assert response["content"], where
    ping = document["paths"]["/ping"]["get"]["responses"]["200"]["content"]
    assert list(ping) == ["text/plain"]
    stream = document["paths"]["/streams/{pid}/{label}"]["get"]["responses"]["200"]["content"]
    assert set(stream) == {"application/octet-stream", "text/event-stream",
                           "application/x-ndjson"}  # fmt: skip


def test_routes_with_parameters_state_routings_own_answers(document: dict[str, Any]) -> None:
    """A parameter holding '/' (%2F is decoded before routing) may name another route, or none."""
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if "{" in path:
                assert "not_found" in operation["responses"]["404"]["description"], (method, path)


#: (method, path as sent, status, code): a %2F in a parameter reaches another route.
REROUTED = [
    ("HEAD", "/processes/x.y%2F_pids", 400, "bad_value"),  # GET /processes/{name}/{action}
    ("GET", "/processes/web%2F_bogus", 404, "resource_not_found"),
    ("DELETE", "/groups/web%2F_start", 405, "method_not_allowed"),  # POST only
    ("GET", "/status/web%2Fx", 404, "not_found"),  # no route at all
]


@pytest.mark.parametrize(("method", "sent", "status", "code"), REROUTED)
def test_a_rerouted_answer_is_documented_for_the_operation_sent(
    client: httpx.Client, document: dict[str, Any], method: str, sent: str, status: int,
    code: str
) -> None:  # fmt: skip
    create(client, "web")
    r = client.request(method, sent)
    assert r.status_code == status
    if method != "HEAD":
        assert r.json()["error"] == code
    documented = [op for path, ops in document["paths"].items() for m, op in ops.items()
                  if m == method.lower() and re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", path),
                                                          sent)]  # fmt: skip
    assert len(documented) == 1, sent
    assert code in documented[0]["responses"][str(status)]["description"].split(", ")
