"""Listening sockets and WSGI servers for gafferd's endpoints (TCP, IPv6, unix, TLS)."""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import stat
from typing import Any

from gevent.pywsgi import WSGIServer
from gevent.ssl import SSLSocket
from geventwebsocket.handler import WebSocketHandler

from .config import Address, EndpointConfig
from .environ import SOCKET_KEY as ENVIRON_KEY

#: Chunks at least this big go out with scatter-gather instead of being copied into one buffer.
SCATTER_MIN = 64 * 1024


class GafferHandler(WebSocketHandler):  # type: ignore[misc]
    """gevent-websocket's handler, also handing the client socket to the views.

    Stream views peek at it to notice a client that left without waiting for
    the next heartbeat (see ``api.disconnect``).

    It also replaces two steps of pywsgi's write path that feeds pay for on
    every write (py-spy on a continuous feed and on a 100-client fan-out):
    pywsgi copies each chunk into a new buffer to add the chunked framing
    (a third of the CPU of a 1 GB/s feed), and gevent's ``sendall`` asks the
    kernel for the send buffer size before each send.
    """

    code: int  # pywsgi's status code of the response (negated after a socket error)

    def get_environ(self) -> dict[str, Any]:
        environ: dict[str, Any] = super().get_environ()
        environ[ENVIRON_KEY] = self.socket
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


def listen(address: Address, backlog: int = 128) -> socket.socket:
    """A listening socket; TCP ones set TCP_NODELAY, which accepted sockets inherit."""
    if address.kind == "unix":
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(os.stat(address.path).st_mode):
                os.unlink(address.path)  # a stale socket from an earlier run
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(address.path)
    else:
        family = socket.AF_INET6 if address.kind == "tcp6" else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((address.host, address.port))
    sock.listen(backlog)
    sock.setblocking(False)
    return sock


def describe(sock: socket.socket, tls: bool) -> str:
    """The URL a client uses to reach ``sock``."""
    name = sock.getsockname()
    if sock.family == socket.AF_UNIX:
        return f"unix:{name}"
    scheme = "https" if tls else "http"
    host = f"[{name[0]}]" if sock.family == socket.AF_INET6 else name[0]
    return f"{scheme}://{host}:{name[1]}"


def tls_context(certfile: str, keyfile: str | None = None) -> ssl.SSLContext:
    """A server-side TLS context (gevent's certfile/keyfile arguments use a deprecated protocol)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certfile, keyfile)
    return context


def make_servers(app: Any, endpoints: list[EndpointConfig]) -> list[tuple[WSGIServer, str]]:
    """One WSGI server per bound address, with the URL each one answers on."""
    servers = []
    for endpoint in endpoints:
        ssl_args: dict[str, Any] = {}
        if endpoint.certfile:
            ssl_args["ssl_context"] = tls_context(endpoint.certfile, endpoint.keyfile)
        for address in endpoint.addresses:
            sock = listen(address, endpoint.backlog)
            # Naming the server ourselves spares pywsgi's reverse DNS lookup of the bind
            # address (socket.getfqdn), which would start a resolver thread and can hang.
            environ = {"SERVER_NAME": address.host} if address.kind != "unix" else None
            server = WSGIServer(
                sock, app, handler_class=GafferHandler, log=None, environ=environ, **ssl_args
            )
            servers.append((server, describe(sock, bool(ssl_args))))
    return servers
