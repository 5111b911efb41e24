"""Feeds tell the truth, line by line, over real HTTP: chunks end at a newline, a print
loop gives an EventSource no empty event, and a plain continuous feed that had to skip
data for a slow client says so on a line of its own, never splicing two lines.
"""

from __future__ import annotations

import http.client
import re
import socket
from typing import Any

import gevent
import httpx

from tests.api.support import ECHO, create_one
from tests.api.test_resume import parse_event
from tests.conftest import LiveServer
from tests.helpers import child, wait_for

MARKER = re.compile(rb"\[gaffer: (\d+) chunks, (\d+) bytes lost\]")
WIDTH = 10  # numbers.py writes b"%09d\n"


def events_of(body: bytes) -> list[dict[str, str]]:
    """The complete SSE events of ``body`` (data lines joined by newlines)."""
    blocks = body.decode().split("\r\n\r\n")[:-1]
    return [event for event in map(parse_event, blocks) if event]


def test_a_print_loop_gives_line_chunks_and_no_empty_event(
    client: httpx.Client, server: LiveServer
) -> None:
    count = 2000
    body = {**child("printer", str(count), "0", "wait"), "redirect_output": ["out"]}
    pid = create_one(client, "printer", body)
    last = f"line {count}".encode()
    raw = b""
    params = {"feed": "eventsource", "since": "0"}
    with client.stream("GET", f"/streams/{pid}/out", params=params) as r:
        chunks = r.iter_raw()
        while last + b"\r\n" not in raw:
            raw += next(chunks)
    events = [e for e in events_of(raw) if e["event"] == "out"]
    assert [e for e in events if e["data"] == ""] == []  # print()'s newline never comes alone
    lines = "\n".join(e["data"] for e in events).split("\n")
    assert lines == [f"line {n}" for n in range(1, count + 1)]
    stream = server.manager.running[pid].streams["out"]
    assert all(c.data.endswith(b"\n") for c in stream.chunks)


def test_a_prompt_without_newline_still_arrives(client: httpx.Client, server: LiveServer) -> None:
    pid = create_one(client, "echo", ECHO)
    waiting = gevent.spawn(client.get, f"/streams/{pid}/out")
    stream = server.manager.running[pid].streams["out"]
    wait_for(lambda: stream.subscriptions)
    assert client.post(f"/streams/{pid}/stdin", content=b"Password: ").status_code == 200
    assert waiting.get(timeout=10).content == b"Password: "


def read_late(server: LiveServer, path: str, ready: Any, done: Any) -> bytes:
    """GET ``path`` through a 4 KiB receive buffer; read nothing until ``ready()``, then
    read until ``done(body)``: a client too slow for the child, deterministically."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        conn.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before the handshake
        conn.sock.connect((server.host, server.port))
        conn.request("GET", path)
        response = conn.getresponse()
        assert response.status == 200
        wait_for(ready, timeout=30)
        body = b""
        while not done(body):
            piece = response.read1(65536)
            assert piece, "the feed ended early"
            body += piece
        return body
    finally:
        conn.close()


def test_a_slow_plain_reader_gets_whole_lines_and_markers_that_add_up(
    client: httpx.Client, server: LiveServer
) -> None:
    count = 1_000_000  # 10 MB: more than the socket buffers (about 4 MB) and the ring hold
    body = {**child("numbers", str(count), "wait"), "redirect_output": ["out"],
            "buffer_size": 65536}  # fmt: skip
    pid = create_one(client, "numbers", body)
    stream = server.manager.running[pid].streams["out"]
    last = b"%09d\n" % count
    path = f"/streams/{pid}/out?feed=continuous&heartbeat=false&since=0"
    received = read_late(
        server, path, lambda: stream.total_bytes == count * WIDTH, lambda b: b.endswith(last)
    )
    expected, lines, lost, markers = 1, 0, 0, 0
    for line in received.split(b"\n")[:-1]:
        if not line:
            continue  # the feed's first byte
        marker = MARKER.fullmatch(line)
        if marker:
            markers += 1
            lost_bytes = int(marker.group(2))
            assert lost_bytes % WIDTH == 0, line  # whole lines were lost
            lost += lost_bytes // WIDTH
            expected += lost_bytes // WIDTH
            continue
        assert line == b"%09d" % expected, (line, expected)  # a line the child wrote, in order
        lines += 1
        expected += 1
    assert markers > 0, "the reader should have been too slow"
    assert lines + lost == count
