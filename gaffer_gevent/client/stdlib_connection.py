"""``http.client`` connections to gafferd (TCP, TLS or a unix socket): TLS calls and feeds.

Imported only when one is needed: ``http.client`` loads ``email`` and ``ssl``,
which a plain one-shot call does without (``wire.py``).
"""

from __future__ import annotations

import http.client
import socket
import ssl

#: Errors of a kept connection the server closed while it was idle (the retry case).
STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


class UnixConnection(http.client.HTTPConnection):
    """HTTP over a unix socket; the ``Host`` header says ``localhost``."""

    def __init__(self, path: str, timeout: float | None) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.path)
        except BaseException:
            sock.close()  # a failed connect must not leave the socket to the collector
            raise
        self.sock = sock


def open_connection(
    host: str,
    port: int | None,
    *,
    uds: str | None,
    ssl_context: ssl.SSLContext | None,
    connect_timeout: float | None,
    read_timeout: float | None,
) -> http.client.HTTPConnection:
    """A new connection to gafferd, connected, with ``read_timeout`` on its socket."""
    conn: http.client.HTTPConnection
    if uds is not None:
        conn = UnixConnection(uds, connect_timeout)
    elif ssl_context is not None:
        conn = http.client.HTTPSConnection(host, port, timeout=connect_timeout, context=ssl_context)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=connect_timeout)
    try:
        conn.connect()
    except BaseException:
        conn.close()
        raise
    assert conn.sock is not None
    conn.sock.settimeout(read_timeout)  # connected: from now on the read timeout
    return conn
