"""gafferd's WSGI handler: one connection's requests, read under deadlines, written without copies.

It is gevent-websocket's handler with these additions: each request is read
under the ``Connections`` deadlines of the server that accepted it, the client
socket (and a verified client certificate's subject) goes into the environ for
the views, and big chunks are sent with scatter-gather instead of being copied.
"""

from __future__ import annotations

from typing import Any

from gevent.ssl import SSLSocket
from geventwebsocket.handler import WebSocketHandler

from .connections import Connections, Deadline
from .environ import CLIENT_SUBJECT_KEY, SOCKET_KEY

#: Chunks at least this big go out with scatter-gather instead of being copied into one buffer.
SCATTER_MIN = 64 * 1024
REQUEST_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
)


class RequestTimeout(ValueError):
    """The headers did not arrive in time; pywsgi answers client errors raised as ValueError."""


class GafferHandler(WebSocketHandler):  # type: ignore[misc]
    """gevent-websocket's handler, also handing the client socket to the views.

    Stream views peek at it to notice a client that left without waiting for
    the next heartbeat (see ``api.disconnect``). Served by a ``GafferServer``,
    it reads each request under that server's deadlines; it also puts a
    verified client certificate's subject in the environ (mTLS).

    It also replaces two steps of pywsgi's write path that feeds pay for on
    every write (py-spy on a continuous feed and on a 100-client fan-out):
    pywsgi copies each chunk into a new buffer to add the chunked framing
    (a copy per chunk, the largest cost of a fast feed), and gevent's ``sendall`` asks the
    kernel for the send buffer size before each send.
    """

    code: int  # pywsgi's status code of the response (negated after a socket error)
    requests_read = 0
    _subject: str | bool | None = False  # False: not looked at yet

    @property
    def connections(self) -> Connections | None:
        return getattr(self.server, "connections", None)

    def read_requestline(self) -> str:
        """The request line; on a kept-alive connection, first wait for it to start."""
        connections = self.connections
        if connections is None:
            return str(super().read_requestline())
        try:
            if self.requests_read:  # the first request's deadline runs since connect
                connections.expect(connections.limits.keepalive_timeout)
                if not self.rfile.peek(1):
                    return ""  # the client closed the connection
                connections.expect(connections.limits.header_timeout)
            self.requests_read += 1
            return str(super().read_requestline())
        except Deadline:
            return ""  # idle too long (or closed to make room): pywsgi closes the connection

    def read_request(self, raw_requestline: str) -> bool:
        connections = self.connections
        try:
            return bool(super().read_request(raw_requestline))
        except Deadline:
            raise RequestTimeout("request headers too slow") from None
        finally:
            if connections is not None:
                connections.received()

    def handle_one_request(self) -> Any:
        try:
            return super().handle_one_request()
        finally:  # paths that never reach read_request (an empty or a too long line)
            if self.connections is not None:
                self.connections.received()

    def _handle_client_error(self, ex: BaseException) -> Any:
        if isinstance(ex, RequestTimeout):
            return ("408", REQUEST_TIMEOUT_RESPONSE)
        return super()._handle_client_error(ex)

    def get_environ(self) -> dict[str, Any]:
        environ: dict[str, Any] = super().get_environ()
        environ[SOCKET_KEY] = self.socket
        environ.pop(CLIENT_SUBJECT_KEY, None)
        if self._subject is False:
            self._subject = client_subject(self.socket)
        if isinstance(self._subject, str):
            environ[CLIENT_SUBJECT_KEY] = self._subject
        return environ

    def finalize_headers(self) -> None:
        super().finalize_headers()
        if self.command == "HEAD":
            # pywsgi ends a HEAD answer to a streaming view with the chunked body's
            # last-chunk marker, which the client then reads as its next status line.
            self.response_use_chunked = False

    def _write(self, data: bytes) -> None:
        big = self.response_use_chunked and len(data) >= SCATTER_MIN
        if big and not isinstance(self.socket, SSLSocket):  # TLS sockets refuse sendmsg
            self._send_buffers([b"%x\r\n" % len(data), data, b"\r\n"])
        else:
            super()._write(data)

    def _sendall(self, data: bytes) -> None:
        self._send_buffers([data])

    def _send_buffers(self, buffers: list[bytes]) -> None:
        """Send ``buffers`` in order: one send (or sendmsg) in the usual case."""
        sock = self.socket
        try:
            sent = sock.send(buffers[0]) if len(buffers) == 1 else sock.sendmsg(buffers)
            for buffer in buffers:
                if sent >= len(buffer):
                    sent -= len(buffer)
                    continue
                sock.sendall(memoryview(buffer)[sent:])
                sent = 0
        except OSError as exc:
            self.status = f"socket error: {exc}"  # as pywsgi's own _sendall reports it
            if self.code > 0:
                self.code = -self.code
            raise
        self.response_length += sum(len(buffer) for buffer in buffers)


def client_subject(sock: Any) -> str | None:
    """The commonName of the peer's verified certificate, if it has exactly one."""
    getpeercert = getattr(sock, "getpeercert", None)
    if getpeercert is None:
        return None
    try:
        cert = getpeercert()
    except (ValueError, OSError):
        return None
    # Without verification (CERT_NONE) Python returns {} even when a certificate was sent.
    subject = (cert or {}).get("subject", ())
    common = [value for rdn in subject for key, value in rdn if key == "commonName"]
    return str(common[0]) if len(common) == 1 else None
