"""gafferd's WSGI handler on real sockets: big chunks sent without a copy, TLS, slow readers.

``GafferHandler`` replaces pywsgi's chunked write (scatter-gather instead of a
copy into one buffer) and its ``sendall``; a reader that takes a little at a
time makes every big send partial, which is where such code goes wrong.
"""

from __future__ import annotations

import http.client
import random
import shutil
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gevent
import pytest
from gevent.pywsgi import WSGIServer

from gaffer_gevent.server import SCATTER_MIN, GafferHandler, tls_context

from .helpers import self_signed_cert

PIECES = [
    b"first small piece\n",
    random.Random(1).randbytes(SCATTER_MIN),  # exactly the threshold
    b"z",
    random.Random(2).randbytes(3 * 1024 * 1024 + 7),  # far beyond any socket buffer
    random.Random(3).randbytes(SCATTER_MIN - 1),
    b"last\n",
]


def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
    """A generator body, so pywsgi frames it with chunked encoding."""
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    yield from PIECES


def serve(**ssl_args: Any) -> WSGIServer:
    """The handler on 127.0.0.1 with a small send buffer (accepted sockets inherit it),
    so that a big chunk never fits in one send."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    server = WSGIServer(
        listener, app, handler_class=GafferHandler, log=None, error_log=None, **ssl_args
    )
    server.start()
    return server


def read_slowly(conn: http.client.HTTPConnection) -> bytes:
    """GET / with a modest receive buffer, reading 16 KiB at a time with pauses."""
    conn.connect()
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 256 * 1024)
    conn.request("GET", "/")
    response = conn.getresponse()
    assert response.status == 200
    assert response.getheader("Transfer-Encoding") == "chunked"
    body = b""
    while piece := response.read(16384):
        body += piece
        gevent.sleep(0.001)  # let the server's send buffer fill up between reads
    return body


def test_big_chunks_arrive_intact_through_partial_sends() -> None:
    server = serve()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)
        assert read_slowly(conn) == b"".join(PIECES)
        conn.close()
    finally:
        server.stop(timeout=1)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl to make a cert")
def test_big_chunks_arrive_intact_over_tls(tmp_path: Path) -> None:
    cert, key = self_signed_cert(tmp_path)
    server = serve(ssl_context=tls_context(str(cert), str(key)))
    try:
        context = ssl.create_default_context(cafile=str(cert))
        conn = http.client.HTTPSConnection(
            "127.0.0.1", server.server_port, timeout=10, context=context
        )
        assert read_slowly(conn) == b"".join(PIECES)
        conn.close()
    finally:
        server.stop(timeout=1)
