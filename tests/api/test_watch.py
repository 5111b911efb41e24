"""/watch over real HTTP: event patterns (spec 4.14 [R]), the three feeds, order, unsubscribing."""

from __future__ import annotations

import json
import signal
import socket
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import gevent
import httpx
import pytest

from gaffer_gevent.manager import Manager
from tests.api.support import create, error
from tests.conftest import LiveServer
from tests.helpers import child, wait_for


def read_messages(chunks: Iterator[bytes], count: int) -> list[dict[str, Any]]:
    """The next ``count`` NDJSON messages of a feed, skipping heartbeat newlines and the
    audit events (``api.*``) that the test's own requests cause."""
    buf = b""
    messages: list[dict[str, Any]] = []
    while len(messages) < count:
        buf += next(chunks)
        *lines, buf = buf.split(b"\n")
        found = [json.loads(line) for line in lines if line.strip()]
        messages += [m for m in found if not m["event"].startswith(("api.", "auth."))]
    assert buf.strip() == b"" or len(messages) == count
    return messages


def names(messages: list[dict[str, Any]]) -> list[str]:
    return [m["event"] for m in messages]


def watching(manager: Manager, baseline: int) -> bool:
    return manager.bus.subscriber_count == baseline + 1


# -- patterns ---------------------------------------------------------------------------

#: Every event of "create w, then stop it", in publish order (spec 6.2).
CREATE_STOP = [
    "create", "start", "proc.w.start", "spawn", "proc.w.spawn", "ready", "proc.w.ready",
    "stop", "proc.w.stop", "stop_pid", "proc.w.stop_pid", "exit", "proc.w.exit",
]  # fmt: skip
PROC_W = ["proc.w.start", "proc.w.spawn", "proc.w.ready", "proc.w.stop", "proc.w.stop_pid",
          "proc.w.exit"]  # fmt: skip

PATTERNS = {
    "/watch": CREATE_STOP,
    "/watch/create": ["create"],
    "/watch/CREATE": ["create"],
    "/watch/start": ["start"],
    "/watch/spawn": ["spawn"],  # never proc.w.spawn: whole segments from the left
    "/watch/stop": ["stop"],  # not stop_pid
    "/watch/stop_pid": ["stop_pid"],
    "/watch/exit": ["exit"],
    "/watch/proc": PROC_W,  # once each (gaffer 0.4 delivered them twice)
    "/watch/proc/w": PROC_W,
    "/watch/proc/w/start": ["proc.w.start"],
    "/watch/proc/w/spawn": ["proc.w.spawn"],
    "/watch/proc/w/stop": ["proc.w.stop"],
    "/watch/proc/w/stop_pid": ["proc.w.stop_pid"],
    "/watch/proc/w/exit": ["proc.w.exit"],
}


def test_patterns_select_their_events_in_order(client: httpx.Client, server: LiveServer) -> None:
    with ExitStack() as stack:
        feeds = {}
        for path in PATTERNS:
            r = stack.enter_context(client.stream("GET", path, params={"feed": "continuous"}))
            assert r.status_code == 200, path
            feeds[path] = r.iter_raw()
        create(client, "w")
        assert client.post("/processes/w/_stop").status_code == 200
        for path, expected in PATTERNS.items():
            assert names(read_messages(feeds[path], len(expected))) == expected, path


def test_events_of_other_templates_are_filtered_out(
    client: httpx.Client, server: LiveServer
) -> None:
    with client.stream("GET", "/watch/proc/b", params={"feed": "continuous"}) as r:
        create(client, "a")
        create(client, "b")
        assert names(read_messages(r.iter_raw(), 2)) == ["proc.b.start", "proc.b.spawn"]


def test_scale_and_delete_events(client: httpx.Client, server: LiveServer) -> None:
    create(client, "s", numprocesses=2)
    with client.stream("GET", "/watch", params={"feed": "continuous"}) as r:
        events = r.iter_raw()
        assert client.post("/processes/s/_sub").status_code == 200
        sub = read_messages(events, 5)
        assert names(sub[:3]) == ["update", "reap", "proc.s.reap"]
        assert sub[1]["pid"] == 1  # the oldest is reaped
        assert sorted(names(sub[3:])) == ["exit", "proc.s.exit"]
        assert client.post("/processes/s/_add").status_code == 200
        assert names(read_messages(events, 5)) == [
            "update", "spawn", "proc.s.spawn", "ready", "proc.s.ready",
        ]  # fmt: skip
        assert client.delete("/processes/s").status_code == 200
        removal = names(read_messages(events, 6))
        assert removal == ["stop", "proc.s.stop"] + ["stop_pid", "proc.s.stop_pid"] * 2
        rest = names(read_messages(events, 5))
        assert rest.count("exit") == 2 and rest.count("proc.s.exit") == 2
        assert "delete" in rest


def test_restart_update_reap_and_flap_are_accepted(
    client: httpx.Client, server: LiveServer
) -> None:
    baseline = server.manager.bus.subscriber_count
    accepted = ("/watch/restart", "/watch/update", "/watch/reap", "/watch/delete",
                "/watch/proc/x/reap")  # fmt: skip
    for path in accepted:
        with client.stream("GET", path, params={"feed": "continuous"}) as r:
            assert r.status_code == 200, path
    wait_for(lambda: server.manager.bus.subscriber_count == baseline)
    waiting = gevent.spawn(client.get, "/watch/flap")
    wait_for(lambda: watching(server.manager, baseline))
    flapping = {"attempts": 1, "window": 10, "retry_in": 30, "max_retry": 1}
    create(client, "crash", cmd="false", args=[], flapping=flapping)
    r = waiting.get(timeout=10)
    assert r.json() == {"event": "flap", "name": "crash"}


@pytest.mark.parametrize(
    "path",
    [
        "/watch/bogus",
        "/watch/spawned",
        "/watch/proc.w",
        "/watch/proc/w/create",  # no per-template twin
        "/watch/proc/w/update",
        "/watch/proc/w/bogus",
        "/watch/spawn/w/spawn",  # three segments must start with proc
    ],
)
def test_bad_event_type(client: httpx.Client, server: LiveServer, path: str) -> None:
    baseline = server.manager.bus.subscriber_count
    error(client.get(path), 404, "bad_event_type")
    error(client.get(path, params={"feed": "eventsource"}), 404, "bad_event_type")
    assert server.manager.bus.subscriber_count == baseline


def test_two_segments_are_not_validated(client: httpx.Client) -> None:
    with client.stream("GET", "/watch/any/thing", params={"feed": "continuous"}) as r:
        assert r.status_code == 200
    error(client.get("/watch/a/b/c/d"), 404, "not_found")


# -- event payloads -----------------------------------------------------------------------


def test_spawn_and_exit_fields(client: httpx.Client, server: LiveServer) -> None:
    with client.stream("GET", "/watch", params={"feed": "continuous"}) as r:
        events = r.iter_raw()
        create(client, "w")
        os_pid = server.manager.running[1].os_pid
        created = read_messages(events, 7)
        assert created[3] == {"event": "spawn", "name": "w", "pid": 1, "detached": False,
                              "os_pid": os_pid}  # fmt: skip
        assert created[5] == {"event": "ready", "name": "w", "pid": 1, "os_pid": os_pid,
                              "reason": "no readiness check"}  # fmt: skip
        assert client.post("/processes/1/_signal/TERM").status_code == 200
        exit_, twin = read_messages(events, 2)
        assert exit_ == {"event": "exit", "name": "w", "pid": 1, "exit_status": 0,
                         "term_signal": signal.SIGTERM, "os_pid": os_pid}  # fmt: skip
        assert twin == {**exit_, "event": "proc.w.exit"}
        # Not stopped: a replacement spawns, after the backoff (it ran a moment, not 10 s).
        assert names(read_messages(events, 6)) == [
            "backoff", "proc.w.backoff", "spawn", "proc.w.spawn", "ready", "proc.w.ready",
        ]  # fmt: skip


def test_exit_status_of_a_normal_exit(client: httpx.Client, server: LiveServer) -> None:
    create(client, "gated", **child("gated", "1", "3"), redirect_input=True)
    os_pid = server.manager.running[1].os_pid
    with client.stream("GET", "/watch/proc/gated/exit", params={"feed": "continuous"}) as r:
        assert client.post("/streams/1/stdin", content=b"go\n").status_code == 200
        (event,) = read_messages(r.iter_raw(), 1)
    assert event == {"event": "proc.gated.exit", "name": "gated", "pid": 1, "exit_status": 3,
                     "term_signal": 0, "os_pid": os_pid}  # fmt: skip
    assert client.post("/processes/gated/_stop").status_code == 200


# -- feeds --------------------------------------------------------------------------------------


def test_longpoll_sends_the_first_event_and_ends(client: httpx.Client, server: LiveServer) -> None:
    baseline = server.manager.bus.subscriber_count
    for params in ({}, {"feed": "longpoll"}, {"feed": "whatever"}):
        waiting = gevent.spawn(client.get, "/watch/spawn", params=params)
        wait_for(lambda: watching(server.manager, baseline))
        create(client, f"w{len(params)}{params.get('feed', '')}")
        r = waiting.get(timeout=10)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/json")
        assert r.headers["cache-control"] == "no-cache"
        assert r.content.endswith(b"}\r\n")
        assert json.loads(r.content)["event"] == "spawn"
        wait_for(lambda: server.manager.bus.subscriber_count == baseline)


def test_eventsource_feed(client: httpx.Client, server: LiveServer) -> None:
    params = {"feed": "eventsource", "heartbeat": "0"}
    with client.stream("GET", "/watch/proc/w", params=params) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["cache-control"] == "no-cache"
        assert r.headers["x-accel-buffering"] == "no"
        events = r.iter_raw()
        first = next(events)  # sent at once, before any event
        assert first.startswith(b"retry:") or first.startswith(b":")
        create(client, "w")
        buf = first
        while buf.count(b"\r\n\r\n") < 3:
            buf += next(events)
    blocks = [b for b in buf.decode().split("\r\n\r\n") if b.startswith("event:")]
    assert blocks[0] == 'event: proc.w.start\r\ndata: {"event": "proc.w.start", "name": "w"}'
    assert blocks[1].startswith('event: proc.w.spawn\r\ndata: {"event": "proc.w.spawn", ')


def test_continuous_feed_headers_and_first_byte(client: httpx.Client) -> None:
    with client.stream("GET", "/watch", params={"feed": "continuous", "heartbeat": "0"}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/json")
        assert r.headers["cache-control"] == "no-cache"
        assert next(r.iter_raw()) == b"\n"


def test_heartbeats(client: httpx.Client) -> None:
    with client.stream("GET", "/watch", params={"feed": "continuous", "heartbeat": "1"}) as r:
        events, buf = r.iter_raw(), b""
        while len(buf) < 2:
            buf += next(events)
        assert buf == b"\n\n"
    with client.stream("GET", "/watch", params={"feed": "eventsource", "heartbeat": "1"}) as r:
        events, buf = r.iter_raw(), b""
        while b":\r\n\r\n" not in buf:
            buf += next(events)


@pytest.mark.parametrize("value", ["abc", "-2", "1.5.1"])
def test_bad_heartbeat(client: httpx.Client, value: str) -> None:
    for feed in ("longpoll", "continuous", "eventsource"):
        error(client.get("/watch", params={"feed": feed, "heartbeat": value}), 400, "bad_value")


def test_only_events_after_the_subscription_are_sent(client: httpx.Client) -> None:
    create(client, "early")
    with client.stream("GET", "/watch", params={"feed": "continuous"}) as r:
        create(client, "late", start=False)
        assert read_messages(r.iter_raw(), 1) == [{"event": "create", "name": "late"}]


# -- unsubscribing -------------------------------------------------------------------------------


@pytest.mark.parametrize("feed", ["continuous", "eventsource"])
def test_a_client_that_leaves_is_unsubscribed(
    client: httpx.Client, server: LiveServer, feed: str
) -> None:
    bus = server.manager.bus
    baseline = bus.subscriber_count
    for _ in range(50):
        with client.stream("GET", "/watch", params={"feed": feed}) as r:
            assert next(r.iter_raw())
            assert watching(server.manager, baseline)
        wait_for(lambda: bus.subscriber_count == baseline)


@pytest.mark.parametrize("feed", ["continuous", "eventsource"])
def test_a_head_request_leaves_no_subscriber(
    client: httpx.Client, server: LiveServer, feed: str
) -> None:
    bus = server.manager.bus
    baseline = bus.subscriber_count
    for _ in range(3):
        r = client.head("/watch", params={"feed": feed})
        assert (r.status_code, r.content) == (200, b"")
    wait_for(lambda: bus.subscriber_count == baseline)


def test_a_waiting_longpoll_client_that_leaves_is_unsubscribed(server: LiveServer) -> None:
    bus = server.manager.bus
    baseline = bus.subscriber_count
    for _ in range(20):
        sock = socket.create_connection((server.host, server.port), timeout=10)
        sock.sendall(b"GET /watch HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        wait_for(lambda: watching(server.manager, baseline))
        sock.close()
        wait_for(lambda: bus.subscriber_count == baseline)
