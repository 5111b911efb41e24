"""Nothing a client sends can hang, crash or trick the API (issue 12, defects 2 to 6).

Each test reproduces one defect found by a hostile run against the API: huge
numbers, NaN, non-ASCII digits, deep or large bodies, names that could be
created but not addressed, and a spawn storm that held the hub.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import gevent
import httpx
import pytest

from gaffer_gevent.limits import (
    DEFAULT_MAX_BUFFER_SIZE,
    DEFAULT_MAX_PROCESSES,
    DEFAULT_MAX_TOTAL_PROCESSES,
    MAX_NAME_LENGTH,
    MAX_TEMPLATE_BODY,
)
from tests.api.support import SLEEPER, create, error
from tests.conftest import LiveServer
from tests.helpers import wait_for

SLEEP = {"cmd": "sleep", "args": ["600"]}


def refused(r: httpx.Response, field: str, code: str = "bad_value") -> None:
    """A 400 with ``code`` whose reason names ``field``."""
    error(r, 400, code)
    assert field in r.json().get("reason", ""), r.text


def post(client: httpx.Client, **fields: Any) -> httpx.Response:
    """POST a template; json.dumps escapes what httpx would not encode (lone surrogates)."""
    body = {"name": "x", **SLEEPER, "start": False, **fields}
    return client.post("/processes", content=json.dumps(body))


# -- defect 2: one request hangs the daemon ------------------------------------------------


def test_a_billion_processes_is_refused_at_once(client: httpx.Client) -> None:
    started = time.monotonic()
    refused(post(client, numprocesses=1_000_000_000, start=True), "numprocesses")
    assert time.monotonic() - started < 5
    assert client.get("/ping").text == "OK"
    assert client.get("/processes").json() == []


def test_add_n_is_bounded_by_max_processes(client: httpx.Client, server: LiveServer) -> None:
    create(client, "svc", start=False)
    refused(client.post("/processes/svc/_add/1000000000"), "numprocesses")
    refused(client.post(f"/processes/svc/_add/{DEFAULT_MAX_PROCESSES}"), "max_processes")
    error(client.post("/processes/svc/_add/" + "9" * 40), 400, "bad_value")
    error(client.post("/processes/svc/_add/-3"), 400, "bad_value")
    assert "numprocesses" not in client.get("/processes/svc").json()  # unchanged
    assert client.get("/status/svc").json()["max_processes"] == 1
    assert not server.manager.running


def test_max_processes_per_template_and_in_all(client: httpx.Client) -> None:
    refused(post(client, numprocesses=DEFAULT_MAX_PROCESSES + 1), "max_processes")
    per_template = DEFAULT_MAX_TOTAL_PROCESSES // DEFAULT_MAX_PROCESSES
    for i in range(per_template):  # start=false: counted, never spawned
        r = post(client, name=f"big{i}", numprocesses=DEFAULT_MAX_PROCESSES)
        assert r.status_code == 200, r.text
    refused(post(client, name="one_more", numprocesses=1), "max_total_processes")
    assert client.put("/processes/big0", json={**SLEEPER, "start": False}).status_code == 200
    assert post(client, name="one_more", numprocesses=1).status_code == 200


def test_buffer_size_is_bounded_by_max_buffer_size(client: httpx.Client) -> None:
    refused(post(client, buffer_size=10**12), "buffer_size")
    refused(post(client, buffer_size=DEFAULT_MAX_BUFFER_SIZE + 1), "max_buffer_size")
    refused(post(client, buffer_size=100), "buffer_size")
    assert post(client, buffer_size=DEFAULT_MAX_BUFFER_SIZE).status_code == 200


def test_ping_answers_while_300_processes_start_and_stop_works(
    client: httpx.Client, server: LiveServer
) -> None:
    """The spawn storm yields to the hub: requests are served between batches."""
    manager = server.manager
    pings_during_storm: list[float] = []

    def ping_while_starting() -> None:
        while len(manager.running) < 300:
            sent = time.monotonic()
            with httpx.Client(base_url=server.url, timeout=10) as pinger:
                assert pinger.get("/ping").text == "OK"
            if len(manager.running) < 300:
                pings_during_storm.append(time.monotonic() - sent)

    r = client.post("/processes", json={"name": "storm", **SLEEP, "numprocesses": 300})
    assert r.status_code == 200, r.text
    assert len(manager.running) < 300  # the rest is spawned batch by batch, after the reply
    pinger = gevent.spawn(ping_while_starting)
    wait_for(lambda: len(manager.running) == 300, timeout=30)
    pinger.join(timeout=10)
    assert pinger.successful(), pinger.exception
    assert pings_during_storm, "no /ping was answered while the processes started"
    processes = list(manager.running.values())
    assert client.post("/processes/storm/_stop").json() == {"ok": True}
    wait_for(lambda: not any(p.alive for p in processes), timeout=30)
    assert client.get("/status/storm").json()["running"] == 0


# -- defect 3: 500s ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "/streams/%C2%B2/stdout"),
        ("POST", "/streams/%C2%B2/stdin"),
        ("GET", "/streams/" + "1" * 5000 + "/stdout"),
        ("GET", "/processes/%C2%B9%C2%B2/_pids"),  # a name: no such template
        ("POST", "/processes/1%5Ea/_stop"),
        ("GET", "/stats/x/%C2%B2"),
        ("GET", "/streams/1/stdout?since=%C2%B2"),
        ("GET", "/streams/1/stdout?tail=1_0"),
        ("GET", "/watch?heartbeat=1e308"),
        ("GET", "/watch?heartbeat=inf"),
    ],
)
def test_non_ascii_digits_and_huge_numbers_are_client_errors(
    client: httpx.Client, method: str, url: str
) -> None:
    create(client, "x", redirect_output=["stdout"], redirect_input=True)  # pid 1
    r = client.request(method, url, content=b"x" if method == "POST" else None)
    assert r.status_code in (400, 404), r.text
    assert r.json()["error"] in ("bad_value", "not_found")


def test_signal_of_non_ascii_digits_is_a_bad_value(
    client: httpx.Client, server: LiveServer
) -> None:
    create(client, "svc")
    pid = client.get("/processes/svc/_pids").json()["pids"][0]
    for signal in ("%C2%B2", "9" * 5000, "-%D9%A1", "SIG_DFL"):
        error(client.post(f"/processes/svc/_signal/{signal}"), 400, "bad_value")
        error(client.post(f"/processes/{pid}/_signal/{signal}"), 400, "bad_value")
    assert server.manager.running[pid].alive


def test_last_event_id_of_non_ascii_digits_is_a_bad_value(client: httpx.Client) -> None:
    create(client, "svc", redirect_output=["out"])
    pid = client.get("/processes/svc/_pids").json()["pids"][0]
    # Werkzeug reads headers as latin-1: the byte B2 is "²", which isdigit() calls a digit.
    r = client.get(f"/streams/{pid}/out", headers={"Last-Event-ID": b"\xb2"})
    error(r, 400, "bad_value")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"uid": "²"}, "uid"),
        ({"gid": "²"}, "gid"),
        ({"gid": 2**64}, "gid"),
        ({"uid": 2**32 - 1}, "uid"),
        ({"uid": -1}, "uid"),
        ({"uid": "9" * 30}, "uid"),
        ({"uid": "root\u0000"}, "uid"),
        ({"gid": ""}, "gid"),
    ],
)
def test_uid_and_gid_out_of_range_are_bad_values(
    client: httpx.Client, fields: dict[str, Any], field: str
) -> None:
    refused(post(client, **fields), field)


def test_deep_json_is_invalid_json_not_a_crash(client: httpx.Client) -> None:
    error(client.post("/processes", content=b"[" * 100_000), 400, "invalid_json")
    error(client.post("/processes", content=b"[" * 33 + b"]" * 33), 400, "invalid_json")
    # 32 levels parse (and then are not a template); strings may hold any bracket
    error(client.post("/processes", content=b"[" * 32 + b"]" * 32), 400, "invalid_process_info")
    body = {"name": "deep", **SLEEPER, "start": False, "env": {"A": "[" * 1000}}
    assert client.post("/processes", json=body).status_code == 200


# -- defect 4: non-finite numbers -----------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b'{"name": "x", "cmd": "true", "graceful_timeout": NaN}', "invalid_json"),
        (b'{"name": "x", "cmd": "true", "graceful_timeout": Infinity}', "invalid_json"),
        (b'{"name": "x", "cmd": "true", "graceful_timeout": -Infinity}', "invalid_json"),
        (b'{"name": "x", "cmd": "true", "graceful_timeout": 1e308}', "bad_value"),
        (b'{"name": "x", "cmd": "true", "graceful_timeout": 1e999}', "bad_value"),
        (b'{"name": "x", "cmd": "true", "graceful_timeout": 1' + b"0" * 400 + b"}", "bad_value"),
        (b'{"name": "x", "cmd": "true", "flapping": {"window": NaN}}', "invalid_json"),
        (b'{"name": "x", "cmd": "true", "flapping": {"window": 1e999}}', "bad_value"),
        (b'{"name": "x", "cmd": "true", "flapping": {"retry_in": 1e308}}', "bad_value"),
        (b'{"name": "x", "cmd": "true", "flapping": "nan 1 1 1"}', "bad_value"),
        (b'{"name": "x", "cmd": "true", "flapping": "1e308 1 1 1"}', "bad_value"),
        (b'{"name": "x", "cmd": "true", "flapping": "inf"}', "bad_value"),
    ],
)
def test_non_finite_and_huge_timeouts_are_refused(
    client: httpx.Client, body: bytes, code: str
) -> None:
    r = client.post("/processes", content=body)
    error(r, 400, code)
    if code == "bad_value":
        assert "graceful_timeout" in r.json()["reason"] or "flapping" in r.json()["reason"]
    assert client.get("/processes").json() == []


@pytest.mark.parametrize(
    ("fields", "field", "code"),
    [
        ({"numprocesses": -1}, "numprocesses", "bad_value"),
        ({"numprocesses": None}, "numprocesses", "invalid_process_info"),
        ({"graceful_timeout": 86401}, "graceful_timeout", "bad_value"),
        ({"graceful_timeout": None}, "graceful_timeout", "invalid_process_info"),
        ({"flapping": {"attempts": 0}}, "attempts", "bad_value"),
        ({"flapping": {"attempts": 10**6}}, "attempts", "bad_value"),
        ({"flapping": {"max_retry": 1001}}, "max_retry", "bad_value"),
        ({"flapping": {"attempts": 1.5}}, "attempts", "bad_value"),
        ({"logfile_backups": None}, "logfile_backups", "invalid_process_info"),
        ({"logfile_backups": 1001}, "logfile_backups", "bad_value"),
        ({"logfile_maxbytes": 2**41}, "logfile_maxbytes", "bad_value"),
        ({"priority": 2**63}, "priority", "bad_value"),
        ({"cmd": "sleep\u00001"}, "cmd", "bad_value"),
        ({"cmd": "x" * (128 * 1024 + 1)}, "cmd", "bad_value"),
        ({"args": ["a\u0000b"]}, "args", "bad_value"),
        ({"args": ["1"] * 4097}, "args", "bad_value"),
        ({"args": "\ud800"}, "args", "bad_value"),
        ({"env": {"A=B": "1"}}, "env", "bad_value"),
        ({"env": {"": "1"}}, "env", "bad_value"),
        ({"env": {"A": "x\u0000"}}, "env", "bad_value"),
        ({"env": {f"V{i}": "1" for i in range(1025)}}, "env", "bad_value"),
        ({"cwd": "/" + "d" * 5000}, "cwd", "bad_value"),
        ({"cwd": "/tmp\u0000"}, "cwd", "bad_value"),
        ({"redirect_output": ["a/b"]}, "redirect_output", "bad_value"),
        ({"redirect_output": ["a\nb"]}, "redirect_output", "bad_value"),
        ({"redirect_output": ["x"] * 17}, "redirect_output", "bad_value"),
        ({"custom_streams": [["nested"]]}, "custom_streams", "invalid_process_info"),
    ],
)
def test_every_field_is_bounded(
    client: httpx.Client, fields: dict[str, Any], field: str, code: str
) -> None:
    refused(post(client, **fields), field, code)


# -- defect 5: templates that cannot be addressed -------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["^", "^1", "a^b", "n" * (MAX_NAME_LENGTH + 1), "n" * 10_000, "a\nb", "a\rb", "tab\there",
     "esc\x1b[31m", "nul\x00", "a/b", "a.b", "123", " lead", "trail ", "\u2028", "\ud800"],
)  # fmt: skip
def test_names_breaking_the_rule_are_refused(client: httpx.Client, name: str) -> None:
    refused(post(client, name=name), "name")
    assert client.get("/processes").json() == []


@pytest.mark.parametrize(
    "name", ["n" * MAX_NAME_LENGTH, "²", "web:echo", "with space", "ünïcødé", "%41", "a?b#c"]
)
def test_whatever_can_be_created_can_be_addressed_and_deleted(
    client: httpx.Client, name: str
) -> None:
    assert post(client, name=name).status_code == 200
    segment = quote(name, safe="")
    assert client.get(f"/processes/{segment}").json()["name"] == name
    assert client.head(f"/processes/{segment}").status_code == 200
    assert client.get(f"/status/{segment}").status_code == 200
    r = client.put(f"/processes/{segment}", json={**SLEEPER, "start": False})
    assert r.status_code == 200, r.text
    assert client.delete(f"/processes/{segment}").json() == {"ok": True}
    assert client.get("/processes").json() == []


@pytest.mark.parametrize("segment", ["n" * (MAX_NAME_LENGTH + 1), "a%0Ab", "%E2%80%A8"])
def test_lookups_apply_the_same_name_rule(client: httpx.Client, segment: str) -> None:
    for method in ("GET", "DELETE"):
        refused(client.request(method, f"/processes/{segment}"), "name")
    refused(client.put(f"/processes/{segment}", json=SLEEPER), "name")
    refused(client.get(f"/status/{segment}"), "name")
    refused(client.post(f"/processes/{segment}/_start"), "name")


# -- defect 6: no size limit on POST /processes ----------------------------------------------


def test_a_body_over_1_mib_is_payload_too_large(client: httpx.Client) -> None:
    body = {"name": "big", **SLEEPER, "start": False, "env": {"A": "x" * MAX_TEMPLATE_BODY}}
    error(client.post("/processes", json=body), 413, "payload_too_large")
    error(client.put("/processes/big", json=body), 413, "payload_too_large")
    assert client.get("/processes").json() == []


def test_a_chunked_body_over_1_mib_is_payload_too_large(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": "big", "cmd": "true", "env": {"A": "'
        for _ in range(20):
            yield b"x" * 65536
        yield b'"}}'

    r = client.post("/processes", content=chunks())
    assert "content-length" not in r.request.headers
    error(r, 413, "payload_too_large")


def test_a_body_just_under_the_limit_is_read_whole(client: httpx.Client) -> None:
    head = {"name": "fits", **SLEEPER, "start": False, "env": {"A": ""}}
    room = MAX_TEMPLATE_BODY - len(json.dumps(head).encode())
    values = ["y" * 100_000] * (room // 100_010)
    body = {**head, "env": {f"V{i}": v for i, v in enumerate(values)}}
    assert len(json.dumps(body).encode()) <= MAX_TEMPLATE_BODY
    assert client.post("/processes", json=body).status_code == 200
