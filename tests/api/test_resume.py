"""Streams that lose nothing, over real HTTP: resume with Last-Event-ID, the longpoll ``since``
loop, gaps past the ring buffer, JSON framing, ``overflow=close``, dropped counters, and the
what the daemon holds under a flood with clients that never read (bench/flood_rss.py
measures its memory; the suite checks the counters that bound it).

Children print numbered lines (``line N``), stop after N lines and stay alive, so a test
knows exactly which lines must arrive, each exactly once and in order.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gevent
import httpx
import pytest

from gaffer_gevent.streams import Stream
from tests.conftest import LiveServer
from tests.gafferd import Gafferd
from tests.helpers import CHILDREN, child, numbered, wait_for


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as c:
        yield c


def create(client: httpx.Client, name: str, *args: str, **settings: Any) -> int:
    body = {"name": name, **child("counter", *args), "redirect_output": ["out"], **settings}
    r = client.post("/processes", json=body)
    assert r.status_code == 200, r.text
    (pid,) = client.get(f"/processes/{name}/_pids").json()["pids"]
    return int(pid)


def numbers_in(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"^line (\d+)$", text, re.M)]


def stream_of(server: LiveServer, pid: int) -> Stream:
    return server.manager.running[pid].streams["out"]


def all_written(server: LiveServer, pid: int, count: int) -> bool:
    return stream_of(server, pid).total_bytes == len(numbered(1, count))


@dataclass
class SSEReader:
    """Complete events of an eventsource body, read from a raw byte iterator."""

    chunks: Iterator[bytes]
    buf: bytes = b""
    events: list[dict[str, str]] = field(default_factory=list)

    def read_until(self, done: Any) -> None:
        while not done(self):
            self.buf += next(self.chunks)
            *blocks, self.buf = self.buf.split(b"\r\n\r\n")
            for block in blocks:
                event = parse_event(block.decode())
                if event:
                    self.events.append(event)

    @property
    def last_id(self) -> str:
        return [e["id"] for e in self.events if "id" in e][-1]

    def numbers(self) -> list[int]:
        return numbers_in("\n".join(e["data"] for e in self.events if e["event"] == "out"))

    def has_line(self, n: int) -> bool:
        return any(f"line {n}" in e.get("data", "") for e in self.events[-3:])


def parse_event(block: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in block.split("\r\n"):
        if not line or line.startswith((":", "retry:")):
            continue
        key, _, value = line.partition(": ")
        fields[key] = fields[key] + "\n" + value if key == "data" and key in fields else value
    return fields if "event" in fields else {}


def open_sse(client: httpx.Client, pid: int, **params: Any) -> Any:
    headers = {}
    if "last_event_id_header" in params:
        headers["Last-Event-ID"] = str(params.pop("last_event_id_header"))
    return client.stream(
        "GET", f"/streams/{pid}/out", params={"feed": "eventsource", **params}, headers=headers
    )


# -- eventsource resume ---------------------------------------------------------------------


def test_reconnect_with_last_event_id_loses_nothing(
    client: httpx.Client, server: LiveServer
) -> None:
    count = 3000
    pid = create(client, "c", str(count), "0.0005", "stdout", "wait")
    with open_sse(client, pid, since=0) as r:
        first = SSEReader(r.iter_raw())
        first.read_until(lambda s: len(s.numbers()) >= 200)
    assert not all_written(server, pid, count), "the client should leave mid-flood"
    with open_sse(client, pid, last_event_id_header=first.last_id) as r:
        second = SSEReader(r.iter_raw())
        second.read_until(lambda s: s.numbers()[-1:] == [count])
    assert first.numbers() + second.numbers() == list(range(1, count + 1))
    assert all(e["event"] != "gap" for e in first.events + second.events)
    ids = [int(e["id"]) for e in first.events + second.events]
    assert ids == list(range(1, len(ids) + 1))


def test_last_event_id_query_parameter_resumes_too(
    client: httpx.Client, server: LiveServer
) -> None:
    pid = create(client, "q", "100", "0.001", "stdout", "wait")
    wait_for(lambda: all_written(server, pid, 100))
    chunks = list(stream_of(server, pid).chunks)
    assert len(chunks) >= 2
    middle = chunks[len(chunks) // 2 - 1]
    with open_sse(client, pid, last_event_id=middle.seq) as r:
        reader = SSEReader(r.iter_raw())
        reader.read_until(lambda s: s.numbers()[-1:] == [100])
    first = numbers_in(middle.data.decode())[-1] + 1
    assert reader.numbers() == list(range(first, 101))
    assert int(reader.events[0]["id"]) == middle.seq + 1


def test_the_header_of_a_reconnecting_browser_wins_over_since(
    client: httpx.Client, server: LiveServer
) -> None:
    """EventSource reconnects to the same URL (here ``?since=0``), adding only the header."""
    pid = create(client, "h", "100", "0.001", "stdout", "wait")
    wait_for(lambda: all_written(server, pid, 100))
    last = stream_of(server, pid).last_seq
    with open_sse(client, pid, since=0, last_event_id_header=last - 1) as r:
        reader = SSEReader(r.iter_raw())
        reader.read_until(lambda s: s.events)
    assert [e["id"] for e in reader.events] == [str(last)]


def test_reconnect_older_than_the_buffer_gets_a_gap_event(
    client: httpx.Client, server: LiveServer
) -> None:
    count = 2000
    pid = create(client, "g", str(count), "0.0005", "stdout", "wait", buffer_size=1024)
    with open_sse(client, pid, since=0) as r:
        first = SSEReader(r.iter_raw())
        first.read_until(lambda s: s.events)
    assert not all_written(server, pid, count), "the client should leave mid-flood"
    wait_for(lambda: all_written(server, pid, count))
    with open_sse(client, pid, last_event_id_header=first.last_id) as r:
        second = SSEReader(r.iter_raw())
        second.read_until(lambda s: s.numbers()[-1:] == [count])
    gap_event, *rest = second.events
    assert gap_event["event"] == "gap" and "id" not in gap_event
    gap = json.loads(gap_event["data"])
    seen, replayed = first.numbers(), second.numbers()
    assert replayed == list(range(replayed[0], count + 1))
    assert gap["next_seq"] == int(rest[0]["id"])
    assert gap["chunks"] == gap["next_seq"] - int(first.last_id) - 1
    assert gap["bytes"] == len(numbered(seen[-1] + 1, replayed[0] - 1))
    assert len(numbered(replayed[0], count)) == stream_of(server, pid).held_bytes


# -- longpoll since loop ------------------------------------------------------------------------


def poll(client: httpx.Client, pid: int, since: int) -> httpx.Response:
    r = client.get(f"/streams/{pid}/out", params={"feed": "longpoll", "since": since})
    assert r.status_code == 200, r.text
    return r


def test_longpoll_since_loop_never_misses_a_chunk(client: httpx.Client, server: LiveServer) -> None:
    count = 3000
    pid = create(client, "l", str(count), "0.0005", "stdout", "wait")
    body, since, replies = b"", 0, 0
    while not body.endswith(b"line %d\n" % count):
        r = poll(client, pid, since)
        assert "x-gap-chunks" not in r.headers
        since = int(r.headers["x-last-seq"])
        body += r.content
        replies += 1
    assert body == numbered(1, count)
    assert replies > 1
    assert since == stream_of(server, pid).last_seq


def test_longpoll_since_older_than_the_buffer_reports_the_gap(
    client: httpx.Client, server: LiveServer
) -> None:
    count = 2000
    pid = create(client, "lg", str(count), "0.0002", "stdout", "wait", buffer_size=1024)
    wait_for(lambda: all_written(server, pid, count))
    stream = stream_of(server, pid)
    r = poll(client, pid, 0)
    assert int(r.headers["x-gap-chunks"]) == stream.first_seq - 1
    assert int(r.headers["x-gap-bytes"]) == stream.start_offset(stream.first_seq)
    assert r.headers["x-last-seq"] == str(stream.last_seq)
    assert r.content.endswith(numbered(count, count))
    assert len(r.content) == stream.held_bytes


def test_longpoll_since_the_last_chunk_waits_for_the_next(
    client: httpx.Client, server: LiveServer
) -> None:
    pid = create(client, "w", "5", "0", "stdout", "wait")
    wait_for(lambda: all_written(server, pid, 5))
    last = stream_of(server, pid).last_seq
    r = poll(client, pid, last - 1)
    assert r.headers["x-last-seq"] == str(last)
    assert r.content.endswith(b"line 5\n")


# -- JSON framing ----------------------------------------------------------------------------------


def test_eventsource_json_chunks(client: httpx.Client, server: LiveServer) -> None:
    pid = create(client, "j", "50", "0", "stdout", "wait")
    wait_for(lambda: all_written(server, pid, 50))
    os_pid = server.manager.running[pid].os_pid
    with open_sse(client, pid, since=0, format="json") as r:
        reader = SSEReader(r.iter_raw())
        reader.read_until(lambda s: "line 50" in "".join(e["data"] for e in s.events))
    chunks = [json.loads(e["data"]) for e in reader.events]
    assert all(set(c) == {"seq", "ts", "pid", "os_pid", "label", "data"} for c in chunks)
    assert [c["seq"] for c in chunks] == [int(e["id"]) for e in reader.events]
    assert {(c["pid"], c["os_pid"], c["label"]) for c in chunks} == {(pid, os_pid, "out")}
    assert "".join(c["data"] for c in chunks) == numbered(1, 50).decode()
    assert all(abs(c["ts"] - time.time()) < 60 for c in chunks)


def test_continuous_json_chunks(client: httpx.Client, server: LiveServer) -> None:
    pid = create(client, "n", "50", "0", "stdout", "wait")
    wait_for(lambda: all_written(server, pid, 50))
    params = {"feed": "continuous", "since": 0, "format": "json"}
    with client.stream("GET", f"/streams/{pid}/out", params=params) as r:
        assert r.headers["content-type"] == "application/x-ndjson"
        text = ""
        for piece in r.iter_text():
            text += piece
            if "line 50" in text:
                break
    chunks = [json.loads(line) for line in text.split("\r\n") if line.strip()]
    assert [c["seq"] for c in chunks] == list(range(1, len(chunks) + 1))
    assert "".join(c["data"] for c in chunks) == numbered(1, 50).decode()


# -- slow consumers --------------------------------------------------------------------------------


def test_overflow_close_ends_the_feed_after_the_gap(
    client: httpx.Client, server: LiveServer
) -> None:
    pid = create(client, "o", "2000", "0.0002", "stdout", "wait", buffer_size=1024)
    wait_for(lambda: all_written(server, pid, 2000))
    assert stream_of(server, pid).first_seq > 1, "the ring should have dropped chunks"
    with open_sse(client, pid, since=0, overflow="close") as r:
        body = r.read().decode()  # ends although the process lives on
    events = [e for e in map(parse_event, body.split("\r\n\r\n")) if e]
    assert [e["event"] for e in events] == ["gap"]
    assert json.loads(events[0]["data"])["chunks"] == stream_of(server, pid).first_seq - 1
    assert server.manager.running[pid].alive


def test_dropped_counters_of_a_client_that_never_reads(
    client: httpx.Client, server: LiveServer
) -> None:
    body = {"name": "flood", **child("flood"), "redirect_output": ["out"], "buffer_size": 4096}
    r = client.post("/processes", json=body)
    assert r.status_code == 200
    (pid,) = client.get("/processes/flood/_pids").json()["pids"]
    sock = socket.create_connection((server.host, server.port))
    try:
        request = f"GET /streams/{pid}/out?feed=eventsource HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        sock.sendall(request.encode())

        def feed_dropped() -> int:
            subs = client.get("/debug/subscriptions").json()["subscriptions"]
            feeds = [s for s in subs if s["pid"] == pid and s["owner"].startswith("eventsource")]
            return sum(s["dropped_bytes"] for s in feeds)

        wait_for(lambda: feed_dropped() > 1024 * 1024, timeout=30)
        body = client.get("/debug/subscriptions").json()
        (sub,) = [s for s in body["subscriptions"] if s["pid"] == pid]
        assert sub["dropped_chunks"] > 0 and sub["overflow"] == "skip"
        (stream,) = [s for s in body["streams"] if s["pid"] == pid]
        assert stream["dropped_bytes"] == sub["dropped_bytes"]
        assert stream["held_bytes"] <= stream["buffer_size"]  # reads are no bigger than the ring
    finally:
        sock.close()
        assert client.post("/processes/flood/_stop").status_code == 200


# -- bounded memory ----------------------------------------------------------------------------


MIB = 1024 * 1024


@dataclass
class Flooded:
    """What ``/debug/subscriptions`` said of the flooding pid, and what the slow reader got."""

    stream: dict[str, Any]
    subscriptions: list[dict[str, Any]]
    received: int


def flood_with_stalled_feeds(
    tmp_path: Path, args: str, feed: str, *, seconds: float, rcvbuf: int | None = None
) -> Flooded:
    """gafferd running ``flood`` (``args``), ten ``feed`` clients that never read and one
    slow reader (receive buffers ``rcvbuf``, its own 64 KiB); after ``seconds``, what it holds."""
    config = tmp_path / "gafferd.ini"
    config.write_text(
        f"[process:flood]\ncmd = {sys.executable}\nargs = {args}\nredirect_output = out\n"
    )
    daemon = Gafferd(config, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    sockets: list[socket.socket] = []

    def open_feed(pid: int, buffer: int | None) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if buffer is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffer)  # before the handshake
        sock.connect(("127.0.0.1", daemon.port))
        sock.sendall(
            f"GET /streams/{pid}/out?feed={feed} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
        )
        sockets.append(sock)
        return sock

    try:
        with daemon.http as c:
            wait_for(lambda: c.get("/processes/flood/_pids").json()["pids"])
            (pid,) = c.get("/processes/flood/_pids").json()["pids"]
            for _ in range(10):
                open_feed(pid, rcvbuf)
            slow = open_feed(pid, None if rcvbuf is None else 65536)
            received, deadline = 0, time.monotonic() + seconds
            while time.monotonic() < deadline:
                received += len(slow.recv(16384))  # about 16 KiB per 10 ms: far behind
                gevent.sleep(0.01)  # paces the slow reader; nothing is asserted after it
            body = c.get("/debug/subscriptions").json()
    finally:
        for sock in sockets:
            sock.close()
        try:
            daemon.stop()
        finally:
            daemon.cleanup()
    (stream,) = [s for s in body["streams"] if s["pid"] == pid]
    subs = [s for s in body["subscriptions"] if s["pid"] == pid]
    return Flooded(stream, subs, received)


def assert_held_within_bounds(flooded: Flooded) -> None:
    """The ring within its size, and each of the 11 feeds skipped past what it lost."""
    stream, subs = flooded.stream, flooded.subscriptions
    assert flooded.received > 0
    assert stream["held_bytes"] <= stream["buffer_size"]
    assert len(subs) == 11
    assert all(s["lag_bytes"] <= stream["buffer_size"] for s in subs), subs
    assert sum(s["dropped_chunks"] > 0 for s in subs) >= 10, subs  # skipped, not buffered


def test_daemon_memory_stays_bounded_under_a_flood(tmp_path: Path) -> None:
    """Ten clients that never read, one slow reader: each is skipped past what the ring lost
    instead of holding it, so what gafferd holds is the ring (RSS: bench/flood_rss.py)."""
    flooded = flood_with_stalled_feeds(
        tmp_path, str(CHILDREN / "flood.py"), "eventsource", seconds=5
    )
    assert flooded.stream["total_bytes"] > 50 * MIB, "the flood should have written 50 MB"
    assert_held_within_bounds(flooded)


def test_what_gafferd_holds_stays_bounded_under_a_print_flood_with_stalled_feeds(
    tmp_path: Path,
) -> None:
    """An unthrottled print() loop, continuous feeds with 4 KiB receive buffers.

    The RSS of the same run is measured in ``bench/flood_rss.py --feed continuous --writer
    print`` (bench/RESULTS.md), not here: before the reader asked the pipe how much it held,
    each small read allocated 512 KiB and glibc's heap fragmented (+25 MiB in the first
    10 s), which only RSS shows.
    """
    printer = f"{CHILDREN / 'printer.py'} 0"  # forever, as fast as it can
    flooded = flood_with_stalled_feeds(tmp_path, printer, "continuous", seconds=10, rcvbuf=4096)
    assert flooded.stream["total_bytes"] > 10 * MIB, "the child should flood"
    assert_held_within_bounds(flooded)
