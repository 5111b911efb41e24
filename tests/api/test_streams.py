"""GET /streams/<pid>/<label> over real HTTP: longpoll, continuous and eventsource feeds.

Children write only when a test tells them to (through stdin), so every test
subscribes first and knows exactly which bytes must come back.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from typing import Any

import gevent
import httpx
import pytest

from gaffer_gevent.manager import Manager
from gaffer_gevent.streams import Stream
from tests.api.support import ECHO, create_one, error
from tests.conftest import LiveServer
from tests.helpers import child, wait_for

FIRST_SSE_BYTES = b"retry: 1000\r\n\r\n"


def subscriptions(manager: Manager) -> int:
    return sum(len(s.subscriptions) for p in manager.running.values() for s in p.streams.values())


def stream_of(manager: Manager, pid: int, label: str = "out") -> Stream:
    return manager.running[pid].streams[label]


def write(client: httpx.Client, pid: int, data: bytes) -> None:
    r = client.post(f"/streams/{pid}/stdin", content=data)
    assert r.status_code == 200, r.text


def echo_chunk(client: httpx.Client, manager: Manager, pid: int, data: bytes) -> None:
    """Have the echo child send ``data`` back as one new chunk (waits until it was read)."""
    stream = stream_of(manager, pid)
    seq = stream.last_seq
    write(client, pid, data)
    wait_for(lambda: stream.last_seq > seq)


def read_until(chunks: Iterator[bytes], done: Any, buf: bytes = b"") -> bytes:
    """Accumulate ``chunks`` until ``done(buf)``; each read is bounded by the client timeout."""
    while not done(buf):
        buf += next(chunks)
    return buf


def parse_sse(text: str) -> list[dict[str, Any]]:
    """Events of an SSE body: each a dict of event, id and data (lines joined by \\n)."""
    events = []
    for block in re.split(r"\r\n\r\n", text):
        fields: dict[str, Any] = {}
        for line in block.split("\r\n"):
            if not line or line.startswith(":") or line.startswith("retry:"):
                continue
            key, _, value = line.partition(": ")
            if key == "data":
                fields["data"] = value if "data" not in fields else fields["data"] + "\n" + value
            else:
                fields[key] = value
        if "event" in fields:
            events.append(fields)
    return events


# -- longpoll ------------------------------------------------------------------------


def test_longpoll_returns_the_first_chunk_after_the_request(
    client: httpx.Client, server: LiveServer
) -> None:
    pid = create_one(client, "echo", ECHO)
    echo_chunk(client, server.manager, pid, b"before\n")  # not replayed
    waiting = gevent.spawn(client.get, f"/streams/{pid}/out")
    wait_for(lambda: subscriptions(server.manager) == 1)
    echo_chunk(client, server.manager, pid, b"first\n")
    write(client, pid, b"second\n")
    r = waiting.get(timeout=10)
    assert r.status_code == 200
    assert r.content == b"first\n"
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["cache-control"] == "no-cache"
    assert r.headers["x-accel-buffering"] == "no"
    assert subscriptions(server.manager) == 0


def test_longpoll_is_the_default_feed_and_for_unknown_values(
    client: httpx.Client, server: LiveServer
) -> None:
    pid = create_one(client, "echo", ECHO)
    for params in ({}, {"feed": "bogus"}, {"feed": "LONGPOLL"}):
        waiting = gevent.spawn(client.get, f"/streams/{pid}/out", params=params)
        wait_for(lambda: subscriptions(server.manager) == 1)
        write(client, pid, b"x\n")
        assert waiting.get(timeout=10).content == b"x\n"


def test_waiting_longpoll_ends_empty_when_the_process_exits(
    client: httpx.Client, server: LiveServer
) -> None:
    pid = create_one(client, "echo", ECHO)
    waiting = gevent.spawn(client.get, f"/streams/{pid}/out")
    wait_for(lambda: subscriptions(server.manager) == 1)
    assert client.post("/processes/echo/_stop").status_code == 200
    r = waiting.get(timeout=10)
    assert (r.status_code, r.content) == (200, b"")


# -- continuous -----------------------------------------------------------------------


def test_continuous_delivers_binary_bytes_exactly(client: httpx.Client, server: LiveServer) -> None:
    pid = create_one(client, "echo", ECHO)
    data = bytes(range(256)) * 256 + b"\r\n\x00no newline at the end \xff"
    url = f"/streams/{pid}/out"
    with client.stream("GET", url, params={"feed": "continuous", "heartbeat": "0"}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/octet-stream"
        assert r.headers["cache-control"] == "no-cache"
        assert r.headers["x-accel-buffering"] == "no"
        write(client, pid, data)
        stream = stream_of(server.manager, pid)
        wait_for(lambda: stream.total_bytes == len(data))
        assert client.post("/processes/echo/_stop").status_code == 200
        body = r.read()  # the response ends with the process
    # One newline goes out at once (pywsgi sends no headers before a first byte).
    assert body == b"\n" + data


@pytest.mark.parametrize(
    ("feed", "first"), [("continuous", b"\n"), ("eventsource", FIRST_SSE_BYTES)]
)
def test_feeds_start_at_once_on_an_idle_stream(
    client: httpx.Client, server: LiveServer, feed: str, first: bytes
) -> None:
    pid = create_one(client, "echo", ECHO)
    params = {"feed": feed, "heartbeat": "0"}
    with client.stream("GET", f"/streams/{pid}/out", params=params) as r:
        # Status line and headers arrived although the child wrote nothing.
        assert r.status_code == 200
        assert read_until(r.iter_raw(), lambda b: len(b) >= len(first)) == first
    wait_for(lambda: subscriptions(server.manager) == 0)


@pytest.mark.parametrize("feed", ["longpoll", "continuous", "eventsource"])
def test_each_feed_ends_after_delivering_everything_read(
    client: httpx.Client, server: LiveServer, feed: str
) -> None:
    count = 500
    fields = {**child("gated", str(count)), "redirect_output": ["out"], "redirect_input": True}
    pid = create_one(client, "gated", fields)
    expected = "".join(f"out {n}\n" for n in range(1, count + 1))
    if feed == "longpoll":
        waiting = gevent.spawn(client.get, f"/streams/{pid}/out")
        wait_for(lambda: subscriptions(server.manager) == 1)
        write(client, pid, b"go\n")
        body = waiting.get(timeout=10).content
        assert body and expected.startswith(body.decode())  # the first chunk only
        return
    with client.stream("GET", f"/streams/{pid}/out", params={"feed": feed}) as r:
        write(client, pid, b"go\n")  # the child writes its lines and exits at once
        body = r.read()
    if feed == "continuous":
        assert body.decode() == "\n" + expected
    else:
        events = parse_sse(body.decode())
        assert {e["event"] for e in events} == {"out"}
        assert "".join(e["data"] + "\n" for e in events) == expected
        assert [int(e["id"]) for e in events] == list(range(1, len(events) + 1))


def test_merged_labels_carry_stdout_and_stderr(client: httpx.Client, server: LiveServer) -> None:
    fields = {**child("gated", "3"), "redirect_output": ["out", "out"], "redirect_input": True}
    pid = create_one(client, "merged", fields)
    error(client.get(f"/streams/{pid}/err"), 404, "io_not_found")
    with client.stream("GET", f"/streams/{pid}/out", params={"feed": "continuous"}) as r:
        write(client, pid, b"go\n")
        lines = r.read().decode().split()
    text = " ".join(lines)
    for n in (1, 2, 3):
        assert f"out {n}" in text
        assert f"err {n}" in text


def test_two_labels_are_separate_streams(client: httpx.Client, server: LiveServer) -> None:
    fields = {**child("gated", "2"), "redirect_output": ["o", "e"], "redirect_input": True}
    pid = create_one(client, "split", fields)
    params = {"feed": "continuous"}
    with (
        client.stream("GET", f"/streams/{pid}/o", params=params) as out,
        client.stream("GET", f"/streams/{pid}/e", params=params) as err,
    ):
        write(client, pid, b"go\n")
        assert out.read() == b"\nout 1\nout 2\n"
        assert err.read() == b"\nerr 1\nerr 2\n"


# -- eventsource ----------------------------------------------------------------------------


def test_eventsource_framing(client: httpx.Client, server: LiveServer) -> None:
    pid = create_one(client, "echo", ECHO)
    url = f"/streams/{pid}/out"
    with client.stream("GET", url, params={"feed": "eventsource", "heartbeat": "0"}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["cache-control"] == "no-cache"
        assert r.headers["x-accel-buffering"] == "no"
        echo_chunk(client, server.manager, pid, b"a\nb\n")
        echo_chunk(client, server.manager, pid, b"no newline")
        echo_chunk(client, server.manager, pid, "caf\u00e9\r\n".encode())
        assert client.post("/processes/echo/_stop").status_code == 200
        body = r.read()
    assert body == (
        FIRST_SSE_BYTES
        + b"event: out\r\nid: 1\r\ndata: a\r\ndata: b\r\n\r\n"
        + b"event: out\r\nid: 2\r\ndata: no newline\r\n\r\n"
        + "event: out\r\nid: 3\r\ndata: caf\u00e9\r\n\r\n".encode()
    )


# -- heartbeats -----------------------------------------------------------------------------


def test_heartbeat_seconds_send_heartbeats(client: httpx.Client, server: LiveServer) -> None:
    pid = create_one(client, "echo", ECHO)
    url = f"/streams/{pid}/out"
    with client.stream("GET", url, params={"feed": "continuous", "heartbeat": "1"}) as r:
        assert read_until(r.iter_raw(), lambda b: len(b) >= 2) == b"\n\n"
    with client.stream("GET", url, params={"feed": "eventsource", "heartbeat": "1"}) as r:
        body = read_until(r.iter_raw(), lambda b: b":\r\n\r\n" in b)
        assert body.startswith(FIRST_SSE_BYTES)


@pytest.mark.parametrize("value", ["abc", "-1", "1s", "nan"])
def test_bad_heartbeat_is_a_bad_value(client: httpx.Client, value: str) -> None:
    pid = create_one(client, "echo", ECHO)
    for feed in ("longpoll", "continuous", "eventsource"):
        r = client.get(f"/streams/{pid}/out", params={"feed": feed, "heartbeat": value})
        error(r, 400, "bad_value")


@pytest.mark.parametrize("value", ["true", "TRUE", "false", "0", "5", "0.5"])
def test_good_heartbeat_values(client: httpx.Client, server: LiveServer, value: str) -> None:
    pid = create_one(client, "echo", ECHO)
    params = {"feed": "continuous", "heartbeat": value}
    with client.stream("GET", f"/streams/{pid}/out", params=params) as r:
        assert r.status_code == 200


# -- replay: since, Last-Event-ID, tail, format=json -------------------------------------------


@pytest.fixture
def three_chunks(client: httpx.Client, server: LiveServer) -> int:
    """An echo process whose stream holds the chunks one, two, three (seq 1, 2, 3)."""
    pid = create_one(client, "echo", ECHO)
    for data in (b"one\n", b"two\n", b"three\n"):
        echo_chunk(client, server.manager, pid, data)
    assert stream_of(server.manager, pid).last_seq == 3
    return pid


def test_since_replays_later_chunks(client: httpx.Client, three_chunks: int) -> None:
    url = f"/streams/{three_chunks}/out"
    assert client.get(url, params={"since": "1"}).content == b"two\nthree\n"
    assert client.get(url, params={"since": "0"}).content == b"one\ntwo\nthree\n"
    error(client.get(url, params={"since": "x"}), 400, "bad_value")


def test_tail_replays_the_last_lines(client: httpx.Client, three_chunks: int) -> None:
    url = f"/streams/{three_chunks}/out"
    assert client.get(url, params={"tail": "2"}).content == b"two\nthree\n"
    error(client.get(url, params={"tail": "many"}), 400, "bad_value")


def test_last_event_id_resumes_an_eventsource(
    client: httpx.Client, server: LiveServer, three_chunks: int
) -> None:
    url = f"/streams/{three_chunks}/out"
    headers = {"Last-Event-ID": "1"}
    with client.stream("GET", url, params={"feed": "eventsource"}, headers=headers) as r:
        body = read_until(r.iter_raw(), lambda b: b"data: three" in b)
    assert [(e["id"], e["data"]) for e in parse_sse(body.decode())] == [
        ("2", "two"),
        ("3", "three"),
    ]
    error(client.get(url, headers={"Last-Event-ID": "abc"}), 400, "bad_value")


def test_format_json_frames_chunks_as_objects(
    client: httpx.Client, server: LiveServer, three_chunks: int
) -> None:
    pid = three_chunks
    params = {"feed": "continuous", "format": "json", "since": "1"}
    with client.stream("GET", f"/streams/{pid}/out", params=params) as r:
        assert r.headers["content-type"] == "application/x-ndjson"
        body = read_until(r.iter_raw(), lambda b: b.count(b"\r\n") >= 2)
    objects = [json.loads(line) for line in body.split(b"\r\n") if line.strip()]
    assert [(o["seq"], o["data"], o["label"], o["pid"]) for o in objects] == [
        (2, "two\n", "out", pid),
        (3, "three\n", "out", pid),
    ]
    assert objects[0]["os_pid"] == server.manager.running[pid].os_pid


# -- errors ----------------------------------------------------------------------------------


def test_stream_errors(client: httpx.Client) -> None:
    quiet = create_one(client, "quiet", child("counter", "0", "1"))
    error(client.get(f"/streams/{quiet}/stdout"), 400, "io_not_redirected")
    three = create_one(
        client, "three", {**child("counter", "0", "1"), "redirect_output": ["a", "b", "c"]}
    )
    error(client.get(f"/streams/{three}/c"), 404, "io_not_found")  # only two labels are real
    error(client.get(f"/streams/{three}/nope"), 404, "io_not_found")
    error(client.get(f"/streams/{three}/stdin"), 404, "io_not_found")
    error(client.get("/streams/99/a"), 404, "not_found")
    error(client.get("/streams/abc/a"), 400, "bad_value")
    error(client.get("/streams/%5E/a"), 400, "bad_value")
    with client.stream("GET", f"/streams/{three}/b", params={"feed": "continuous"}) as r:
        assert r.status_code == 200


# -- clients that go away ---------------------------------------------------------------------


def test_disconnects_free_their_subscriptions_and_memory(
    client: httpx.Client, server: LiveServer
) -> None:
    pid = create_one(client, "echo", ECHO)
    url = f"/streams/{pid}/out"

    def cycles(n: int) -> None:
        for i in range(n):
            feed = ("continuous", "eventsource")[i % 2]
            with client.stream("GET", url, params={"feed": feed}) as r:
                assert next(r.iter_raw())  # connected and streaming; leaving closes it
            assert subscriptions(server.manager) <= 40  # freed as we go, not at the end

    cycles(220)  # memory follows the subscriptions; bench/gaffer_streams.py measures RSS
    wait_for(lambda: subscriptions(server.manager) == 0, timeout=15)
    # The stream still works for the next client.
    with client.stream("GET", url, params={"feed": "continuous"}) as r:
        echo_chunk(client, server.manager, pid, b"still here\n")
        assert read_until(r.iter_raw(), lambda b: b"still here" in b)


@pytest.mark.parametrize("feed", ["continuous", "eventsource"])
def test_a_head_request_leaves_no_subscription(
    client: httpx.Client, server: LiveServer, feed: str
) -> None:
    pid = create_one(client, "echo", ECHO)
    for _ in range(3):
        r = client.head(f"/streams/{pid}/out", params={"feed": feed})
        assert (r.status_code, r.content) == (200, b"")
    # The body is never iterated; closing the response must still release it.
    wait_for(lambda: subscriptions(server.manager) == 0)


def test_a_longpoll_client_that_leaves_frees_its_subscription(
    client: httpx.Client, server: LiveServer
) -> None:
    pid = create_one(client, "echo", ECHO)
    request = f"GET /streams/{pid}/out HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    for _ in range(20):
        sock = socket.create_connection((server.host, server.port), timeout=10)
        sock.sendall(request)
        wait_for(lambda: subscriptions(server.manager) == 1)
        sock.close()
        wait_for(lambda: subscriptions(server.manager) == 0)
