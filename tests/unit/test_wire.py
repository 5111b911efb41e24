"""The CLI's plain HTTP/1.1 (client/wire.py) against a real socket that answers as scripted:
each way a body is framed, kept connections, a stale one, and answers that are not HTTP."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from gaffer_gevent.client.oneshot import OneShotHTTP, TransportError
from gaffer_gevent.client.wire import MAX_LINE, ProtocolError, WireConnection


class Scripted:
    """A one-thread server on 127.0.0.1: for each connection, reads one request per answer
    in ``answers`` (a list per connection) and sends it; records each request's first line."""

    def __init__(self, connections: list[list[bytes]]) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.requests: list[bytes] = []
        self.clients: list[OneShotHTTP] = []
        self.thread = threading.Thread(target=self._serve, args=(connections,), daemon=True)
        self.thread.start()

    def _serve(self, connections: list[list[bytes]]) -> None:
        for answers in connections:
            conn, _ = self.listener.accept()
            with conn, conn.makefile("rb") as reader:
                for answer in answers:
                    head = b""
                    while not head.endswith(b"\r\n\r\n"):
                        line = reader.readline()
                        if not line:
                            return
                        head += line
                    self.requests.append(head)
                    length = [
                        h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")
                    ]
                    if length:
                        reader.read(int(length[0].split(b":")[1]))
                    conn.sendall(answer)

    def close(self) -> None:
        self.listener.close()
        self.thread.join(5)


@pytest.fixture
def scripted() -> Iterator[list[Scripted]]:
    made: list[Scripted] = []
    yield made
    for server in made:
        for client in server.clients:
            client.close()
        server.close()


def serve(made: list[Scripted], *connections: list[bytes]) -> Scripted:
    server = Scripted(list(connections))
    made.append(server)
    return server


def http(server: Scripted) -> OneShotHTTP:
    """A client of ``server``, closed after the test."""
    client = OneShotHTTP(
        f"http://127.0.0.1:{server.port}",
        uds=None, ssl_context=None, headers={}, timeout=5, connect_timeout=5,
    )  # fmt: skip
    server.clients.append(client)
    return client


def test_content_length_and_a_kept_connection(scripted: list[Scripted]) -> None:
    ok = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n["a",1]'
    server = serve(scripted, [ok, ok])
    client = http(server)
    first = client.request("GET", "/processes")
    second = client.request("POST", "/x", content=b"{}")
    assert (first.status_code, first.json(), second.json()) == (200, ["a", 1], ["a", 1])
    assert first.headers.get("CONTENT-TYPE") == "application/json"
    assert server.requests[0].startswith(b"GET /processes HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"Content-Length: 2\r\n" in server.requests[1]  # both on one connection


def test_chunked_and_close_delimited_bodies(scripted: list[Scripted]) -> None:
    chunked = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: x\r\n\r\n")  # fmt: skip
    closing = b"HTTP/1.0 404 Not Found\r\n\r\nno such thing"
    server = serve(scripted, [chunked, closing])
    client = http(server)
    assert client.request("GET", "/a").content == b"abcde"
    answer = client.request("GET", "/b")
    assert (answer.status_code, answer.content) == (404, b"no such thing")


def test_a_kept_connection_the_server_closed_is_retried_once(scripted: list[Scripted]) -> None:
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    server = serve(scripted, [ok], [ok])  # the first connection closes after one answer
    client = http(server)
    assert client.request("GET", "/one").content == b"ok"
    assert client.request("GET", "/two").content == b"ok"
    assert [r.split(b" ")[1] for r in server.requests] == [b"/one", b"/two"]


@pytest.mark.parametrize(
    "answer",
    [
        b"",  # closed without a word
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/1.1 2x0 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nX: " + b"a" * (MAX_LINE + 10) + b"\r\n\r\n",
    ],
)
def test_an_answer_that_is_not_http_is_a_transport_error(
    scripted: list[Scripted], answer: bytes
) -> None:
    server = serve(scripted, [answer])
    with pytest.raises(TransportError):
        http(server).request("GET", "/")


def test_protocol_errors_name_what_is_wrong() -> None:
    a, b = socket.socketpair()
    with a, b:
        conn = WireConnection.__new__(WireConnection)
        conn.sock, conn.host, conn.used, conn._file = a, "h", False, a.makefile("rb")
        b.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab")
        b.shutdown(socket.SHUT_WR)
        with pytest.raises(ProtocolError, match="ended after 2 of 5 bytes"):
            conn.exchange("GET", "/", {}, None)
        conn.close()
