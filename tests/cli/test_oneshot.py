"""The client's standard-library transport against servers that misbehave at the socket level."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from gevent.server import StreamServer

from gaffer_gevent.client import Client, ServerUnreachable

PONG = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nOK\n"


def read_request(sock: object) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)  # type: ignore[attr-defined]
        if not chunk:
            break
        data += chunk
    return data


@pytest.fixture
def one_answer_per_connection() -> Iterator[tuple[StreamServer, list[bytes]]]:
    """Answers one request with keep-alive, then closes: a kept connection goes stale."""
    requests: list[bytes] = []

    def handle(sock: object, _address: object) -> None:
        requests.append(read_request(sock))
        sock.sendall(PONG)  # type: ignore[attr-defined]
        sock.close()  # type: ignore[attr-defined]

    server = StreamServer(("127.0.0.1", 0), handle)
    server.start()
    yield server, requests
    server.stop(timeout=5)


def test_a_kept_connection_the_server_closed_is_replaced(
    one_answer_per_connection: tuple[StreamServer, list[bytes]],
) -> None:
    server, requests = one_answer_per_connection
    with Client(f"http://127.0.0.1:{server.server_port}", timeout=5) as client:
        assert client.ping() and client.ping() and client.ping()
    assert len(requests) == 3  # one connection each, no request lost or doubled
    assert all(request.startswith(b"GET /ping HTTP/1.1\r\n") for request in requests)


def test_a_server_that_answers_garbage_is_unreachable_not_a_traceback() -> None:
    def handle(sock: object, _address: object) -> None:
        read_request(sock)
        sock.sendall(b"not http at all\r\n\r\n")  # type: ignore[attr-defined]
        sock.close()  # type: ignore[attr-defined]

    server = StreamServer(("127.0.0.1", 0), handle)
    server.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        with Client(url, timeout=5) as client, pytest.raises(ServerUnreachable, match=url):
            client.processes()
    finally:
        server.stop(timeout=5)
