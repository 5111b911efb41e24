"""Listening sockets and WSGI servers for gafferd's endpoints (TCP, IPv6, unix, TLS)."""

from __future__ import annotations

import contextlib
import os
import socket
import stat
from typing import Any

from gevent.pywsgi import WSGIServer
from geventwebsocket.handler import WebSocketHandler

from .api.disconnect import ENVIRON_KEY
from .config import Address, EndpointConfig


class GafferHandler(WebSocketHandler):  # type: ignore[misc]
    """gevent-websocket's handler, also handing the client socket to the views.

    Stream views peek at it to notice a client that left without waiting for
    the next heartbeat (see ``api.disconnect``).
    """

    def get_environ(self) -> dict[str, Any]:
        environ: dict[str, Any] = super().get_environ()
        environ[ENVIRON_KEY] = self.socket
        return environ


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


def make_servers(app: Any, endpoints: list[EndpointConfig]) -> list[tuple[WSGIServer, str]]:
    """One WSGI server per bound address, with the URL each one answers on."""
    servers = []
    for endpoint in endpoints:
        ssl_args: dict[str, Any] = {}
        if endpoint.certfile:
            ssl_args = {"certfile": endpoint.certfile, "server_side": True}
            if endpoint.keyfile:
                ssl_args["keyfile"] = endpoint.keyfile
        for address in endpoint.addresses:
            sock = listen(address, endpoint.backlog)
            server = WSGIServer(sock, app, handler_class=GafferHandler, log=None, **ssl_args)
            servers.append((server, describe(sock, bool(ssl_args))))
    return servers
