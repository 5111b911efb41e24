"""/stats over real HTTP: all templates, one template, one process, and feeds of stat events."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import psutil
import pytest

from tests.api.support import create, error
from tests.conftest import LiveServer
from tests.helpers import child, wait_for

INFO_KEYS = {"pid", "cpu", "mem", "mem_info1", "mem_info2", "ctime", "username", "nice",
             "cmdline", "children"}  # fmt: skip
AGGREGATES = ("cpu", "max_cpu", "min_cpu", "mem", "max_mem", "min_mem")
HUMAN = re.compile(r"^\d+[BKMGTPEZY]$")
CTIME = re.compile(r"^\d+:\d{2}\.\d{1,2}$")


def os_pid(server: LiveServer, pid: int) -> int:
    return server.manager.running[pid].os_pid


def check_info(info: dict[str, Any], expected_pid: int) -> None:
    """A process info object of spec 9.1."""
    assert set(info) == INFO_KEYS
    assert info["pid"] == expected_pid
    assert isinstance(info["cpu"], float)
    assert isinstance(info["mem"], float)
    assert info["mem"] == round(info["mem"], 1)
    assert HUMAN.match(info["mem_info1"]), info["mem_info1"]
    assert HUMAN.match(info["mem_info2"]), info["mem_info2"]
    assert CTIME.match(info["ctime"]), info["ctime"]
    assert info["username"] == psutil.Process().username()
    assert isinstance(info["nice"], int)
    assert isinstance(info["children"], list)


def json_lines(chunks: Iterator[bytes], count: int) -> list[dict[str, Any]]:
    buf = b""
    found: list[dict[str, Any]] = []
    while len(found) < count:
        buf += next(chunks)
        *lines, buf = buf.split(b"\n")
        found += [json.loads(line) for line in lines if line.strip()]
    return found


def test_all_stats(client: httpx.Client, server: LiveServer) -> None:
    r = client.get("/stats")
    assert (r.status_code, r.json()) == (200, [])
    assert r.headers["content-type"].startswith("application/json")
    create(client, "b", numprocesses=2)
    create(client, "a", start=False)
    body = client.get("/stats").json()
    assert [t["name"] for t in body] == ["b", "a"]  # creation order, stopped ones too
    assert [s["id"] for s in body[0]["stats"]] == [1, 2]
    assert body[1]["stats"] == []
    assert all(body[1][key] == "N/A" for key in AGGREGATES)


def test_template_stats_without_processes_are_na(client: httpx.Client) -> None:
    create(client, "idle", start=False)
    r = client.get("/stats/idle")
    assert r.status_code == 200
    assert r.json() == {"name": "idle", "stats": [], **dict.fromkeys(AGGREGATES, "N/A")}
    assert client.get("/stats/idle", params={"feed": "normal"}).json()["cpu"] == "N/A"


def test_template_stats(client: httpx.Client, server: LiveServer) -> None:
    create(client, "web", numprocesses=2)
    body = client.get("/stats/web").json()
    assert body["name"] == "web"
    assert [s["id"] for s in body["stats"]] == [1, 2]  # oldest first
    for entry, pid in zip(body["stats"], (1, 2), strict=True):
        assert entry["started_at"] == server.manager.running[pid].started_at  # ours, for uptimes
        assert entry["restarts"] == 0  # ours: crashed processes in a row this one replaces
        assert entry["state"] == "running"  # ours: no readiness check, so ready at spawn
        extra = ("id", "started_at", "restarts", "state")
        check_info({k: v for k, v in entry.items() if k not in extra}, os_pid(server, pid))
    cpus = [s["cpu"] for s in body["stats"]]
    mems = [s["mem"] for s in body["stats"]]
    assert body["max_cpu"] == max(cpus) and body["min_cpu"] == min(cpus)
    assert body["max_mem"] == max(mems) and body["min_mem"] == min(mems)
    assert body["mem"] == pytest.approx(sum(mems)) and body["cpu"] == pytest.approx(sum(cpus))


def test_process_stats(client: httpx.Client, server: LiveServer) -> None:
    create(client, "one")
    r = client.get("/stats/one/1")
    assert r.status_code == 200
    info = r.json()
    check_info(info, os_pid(server, 1))
    assert info["cmdline"] == os.path.basename(sys.executable)
    # The name segment is not checked (spec 4.15).
    assert client.get("/stats/anything/1").json()["pid"] == os_pid(server, 1)


def test_process_stats_list_children(client: httpx.Client, server: LiveServer) -> None:
    create(client, "forker", **child("forker"), redirect_output=["out"])
    stream = server.manager.running[1].streams["out"]
    wait_for(lambda: stream.last_seq > 0)  # the grandchild is started
    (grandchild,) = client.get("/stats/forker/1").json()["children"]
    check_info(grandchild, int(stream.chunks[0].data.split()[1]))
    assert grandchild["cmdline"] == "sleep"


def test_stats_errors(client: httpx.Client) -> None:
    error(client.get("/stats/nope"), 404, "not_found")
    error(client.get("/stats/nope", params={"feed": "continuous"}), 404, "not_found")
    create(client, "one")
    error(client.get("/stats/one/abc"), 400, "bad_value")
    error(client.get("/stats/one/%5E"), 400, "bad_value")
    error(client.get("/stats/one/99"), 404, "not_found")
    error(client.get("/stats/one/99", params={"feed": "eventsource"}), 404, "not_found")


# -- feeds of stat events ---------------------------------------------------------------------


def test_longpoll_feed_sends_one_stat(client: httpx.Client, server: LiveServer) -> None:
    create(client, "one")
    for path in ("/stats/one", "/stats/one/1"):
        r = client.get(path, params={"feed": "longpoll"})
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/json")
        assert r.headers["cache-control"] == "no-cache"
        (line,) = [x for x in r.content.split(b"\r\n") if x.strip()]
        check_info(json.loads(line), os_pid(server, 1))  # no "id" in events


def test_continuous_feed_covers_every_running_process(
    client: httpx.Client, server: LiveServer
) -> None:
    create(client, "two", numprocesses=2)
    with client.stream("GET", "/stats/two", params={"feed": "continuous"}) as r:
        assert r.headers["content-type"].startswith("application/json")
        stats = json_lines(r.iter_raw(), 6)
    assert {s["pid"] for s in stats} == {os_pid(server, 1), os_pid(server, 2)}
    for info in stats:
        assert set(info) == INFO_KEYS


def test_eventsource_feed_of_one_process(client: httpx.Client, server: LiveServer) -> None:
    create(client, "two", numprocesses=2)
    with client.stream("GET", "/stats/two/2", params={"feed": "eventsource"}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["x-accel-buffering"] == "no"
        chunks, buf = r.iter_raw(), b""
        while buf.count(b"event: stat\r\n") < 3:
            buf += next(chunks)
    blocks = [b for b in buf.decode().split("\r\n\r\n") if b.startswith("event:")]
    for block in blocks:
        event, data = block.split("\r\n")
        assert event == "event: stat"
        assert json.loads(data.removeprefix("data: "))["pid"] == os_pid(server, 2)


def test_a_stat_feed_ends_when_its_processes_exit(client: httpx.Client, server: LiveServer) -> None:
    create(client, "one")
    with client.stream("GET", "/stats/one/1", params={"feed": "continuous"}) as r:
        chunks = r.iter_raw()
        json_lines(chunks, 1)
        assert client.post("/processes/one/_stop").status_code == 200
        rest = b"".join(chunks)  # returns once the feed ended (each read is bounded)
    assert all(json.loads(line)["pid"] for line in rest.split(b"\r\n") if line.strip())
