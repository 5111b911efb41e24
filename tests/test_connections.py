"""Connection limits on a real server: header and keep-alive deadlines, the cap, room made.

Issue 12, defect 7: 500 idle and 50 slowloris connections were all still open
after 60 s, and with ``ulimit -n 256`` 300 idle sockets made ``/ping`` time
out. Each test reproduces one of those with short limits, on raw sockets.
"""

from __future__ import annotations

import resource
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import gevent
import httpx
import psutil
import pytest

from gaffer_gevent.api import create_app
from gaffer_gevent.config import Address, ConnectionLimits, EndpointConfig
from gaffer_gevent.manager import Manager
from gaffer_gevent.server import GafferServer, make_servers

from .gafferd import Gafferd
from .helpers import holds, wait_for

PING = b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


@dataclass
class Served:
    server: GafferServer
    port: int
    url: str

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)


Serve = Callable[..., Served]


@pytest.fixture
def serve(manager: Manager) -> Iterator[Serve]:
    """Start the API with the given ``ConnectionLimits`` fields; stopped at the end."""
    started: list[GafferServer] = []

    def start(**limits: float) -> Served:
        endpoint = EndpointConfig("test", [Address("tcp", "127.0.0.1", 0, "")])
        app = create_app(manager)
        ((server, url),) = make_servers(app, [endpoint], limits=ConnectionLimits(**limits))
        server.start()
        started.append(server)
        return Served(server, server.server_port, url)

    yield start
    for server in started:
        server.stop(timeout=1)
        server.connections.close()


def read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    """Everything the server sends until it closes; fails if it is still open after ``timeout``."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    except TimeoutError:
        raise AssertionError(f"still open after {timeout}s; received {data!r}") from None
    return data


def read_response(sock: socket.socket) -> bytes:
    """One response with a Content-Length body, read off a kept-alive connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed mid-response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(
            line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
        ).split(b":")[1]
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(serve: Serve) -> None:
    served = serve(header_timeout=0.5)
    with served.connect() as sock:
        started = time.monotonic()
        assert read_until_closed(sock, timeout=5) == b""
        assert time.monotonic() - started >= 0.4
    wait_for(lambda: served.server.connections.waiting == 0, timeout=5)


def test_slowloris_is_answered_408_and_dropped_while_still_sending(serve: Serve) -> None:
    served = serve(header_timeout=1.0)
    sent: list[bytes] = []

    def trickle(sock: socket.socket) -> None:
        """A request line, then one header byte every 0.1 s, for ever (or until refused)."""
        sock.sendall(b"GET /ping HTTP/1.1\r\n")
        try:
            while True:
                sock.sendall(b"X")
                sent.append(b"X")
                gevent.sleep(0.1)
        except OSError:
            return

    with served.connect() as sock:
        sender = gevent.spawn(trickle, sock)
        try:
            answer = read_until_closed(sock, timeout=5)
        finally:
            sender.kill()
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert 5 <= len(sent) < 40  # it kept sending and was cut anyway, after about 10 bytes


def test_kept_alive_connection_serves_requests_then_closes_when_idle(serve: Serve) -> None:
    served = serve(header_timeout=5, keepalive_timeout=0.8)
    with served.connect() as sock:
        sock.sendall(PING)
        assert read_response(sock).endswith(b"\r\n\r\nOK")
        gevent.sleep(0.4)  # well within the keep-alive timeout: the connection is reused
        sock.sendall(PING)
        assert read_response(sock).endswith(b"\r\n\r\nOK")
        idle_since = time.monotonic()
        assert read_until_closed(sock, timeout=5) == b""
        assert time.monotonic() - idle_since >= 0.6


def test_keep_alive_timeout_is_not_the_header_timeout(serve: Serve) -> None:
    """After the first byte of the next request, the header timeout applies, not the idle one."""
    served = serve(header_timeout=0.5, keepalive_timeout=30)
    with served.connect() as sock:
        sock.sendall(PING)
        read_response(sock)
        sock.sendall(b"GET /ping HTTP/1.1\r\n")  # and then nothing
        started = time.monotonic()
        assert read_until_closed(sock, timeout=5).startswith(b"HTTP/1.1 408 ")
        assert time.monotonic() - started < 5


def test_past_the_cap_the_longest_idle_connection_makes_room_for_ping(serve: Serve) -> None:
    served = serve(header_timeout=60, max_connections=10)
    idle = [served.connect() for _ in range(40)]  # 10 held, 30 more in the listen backlog
    try:
        oldest = idle[0]
        response = httpx.get(f"{served.url}/ping", timeout=5)
        assert response.status_code == 200 and response.text == "OK"
        assert read_until_closed(oldest, timeout=5) == b""  # it was closed to make room
        assert served.server.connections.closed_to_make_room >= 31
        assert served.server.connections.waiting <= 10
    finally:
        for sock in idle:
            sock.close()


def test_a_connection_being_answered_is_never_closed_to_make_room(serve: Serve) -> None:
    served = serve(header_timeout=60, max_connections=3)
    with (
        httpx.Client(base_url=served.url, timeout=10) as client,
        client.stream("GET", "/watch?feed=continuous&heartbeat=1") as feed,
    ):
        assert feed.status_code == 200
        idle = [served.connect() for _ in range(4)]
        try:
            # The idle ones are closed in turn to make room; the feed is not.
            assert httpx.get(f"{served.url}/ping", timeout=5).status_code == 200
            assert next(feed.iter_raw())  # a heartbeat, on the connection still open
        finally:
            for sock in idle:
                sock.close()


def test_a_full_cap_of_busy_connections_makes_new_ones_wait(serve: Serve) -> None:
    served = serve(header_timeout=60, max_connections=1)
    with httpx.Client(base_url=served.url, timeout=10) as client:
        with client.stream("GET", "/watch?feed=continuous&heartbeat=1") as feed:
            assert feed.status_code == 200
            waiting = gevent.spawn(httpx.get, f"{served.url}/ping", timeout=10)
            holds(lambda: not waiting.ready(), 0.5)  # queued in the listen backlog, not refused
        assert waiting.get(timeout=10).status_code == 200  # the feed is gone: its turn


# -- out of descriptors: gafferd under a low `ulimit -n` -----------------------------------

FEED = b"GET /watch?feed=continuous&heartbeat=30 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


@pytest.fixture
def gafferd_low_nofile(tmp_path: Path) -> Iterator[Gafferd]:
    """gafferd allowed 48 descriptors, with deadlines too long to free any during a test."""
    ini = tmp_path / "gafferd.ini"
    ini.write_text("[gaffer]\nheader_timeout = 120\nkeepalive_timeout = 120\n")

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (48, 48))

    with Gafferd(ini, preexec_fn=limit) as server:
        yield server


def open_feed(port: int) -> socket.socket | None:
    """A /watch feed on a raw socket, or None when gafferd closed the connection at once."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        sock.sendall(FEED)
        if sock.recv(12) == b"HTTP/1.1 200":
            return sock
    except (ConnectionResetError, BrokenPipeError):
        pass
    sock.close()
    return None


def test_more_idle_sockets_than_descriptors_and_ping_still_answers(
    gafferd_low_nofile: Gafferd,
) -> None:
    port = gafferd_low_nofile.port
    idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(80)]
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/ping", timeout=10)
        assert response.status_code == 200 and response.text == "OK"
        assert "out of file descriptors (EMFILE)" in gafferd_low_nofile.log_text()
        assert "Traceback" not in gafferd_low_nofile.log_text()
    finally:
        for sock in idle:
            sock.close()


def test_out_of_descriptors_with_nothing_idle_refuses_at_once_without_spinning(
    gafferd_low_nofile: Gafferd,
) -> None:
    port = gafferd_low_nofile.port
    feeds: list[socket.socket] = []
    try:
        for _ in range(100):  # feeds are busy connections: never closed to make room
            feed = open_feed(port)
            if feed is None:
                break
            feeds.append(feed)
        assert 10 < len(feeds) < 48
        process = psutil.Process(gafferd_low_nofile.proc.pid)
        cpu_before = sum(process.cpu_times()[:2])
        for _ in range(20):  # each one is accepted on the reserve and closed, not left hanging
            assert open_feed(port) is None
        gevent.sleep(1.0)
        assert sum(process.cpu_times()[:2]) - cpu_before < 0.5
        for feed in feeds[:3]:
            feed.close()
        ping = lambda: httpx.get(f"http://127.0.0.1:{port}/ping", timeout=10)  # noqa: E731
        assert wait_for(lambda: _answers(ping), timeout=10).text == "OK"
        assert "Traceback" not in gafferd_low_nofile.log_text()
    finally:
        for feed in feeds:
            feed.close()


def _answers(get: Callable[[], httpx.Response]) -> httpx.Response | None:
    try:
        return get()
    except httpx.TransportError:
        return None


def test_gafferd_applies_the_gaffer_section_limits(tmp_path: Path, manager: Manager) -> None:
    from gaffer_gevent.api.websocket import IDLE_TIMEOUT_CONFIG, PING_INTERVAL_CONFIG
    from gaffer_gevent.bootstrap import build_app
    from gaffer_gevent.config import parse_config

    ini = (
        "[gaffer]\nheader_timeout = 0.5\nwebsocket_ping_interval = 2\nwebsocket_idle_timeout = 7\n"
    )
    app = build_app(manager, parse_config(ini))
    assert (app.config[PING_INTERVAL_CONFIG], app.config[IDLE_TIMEOUT_CONFIG]) == (2.0, 7.0)
    config = tmp_path / "gafferd.ini"
    config.write_text(ini)
    with (
        Gafferd(config, cwd=tmp_path) as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock,
    ):
        assert read_until_closed(sock, timeout=5) == b""  # closed at 0.5 s, not 10
