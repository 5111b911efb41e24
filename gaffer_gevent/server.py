"""The WSGI servers of gafferd's endpoints: one per bound address, sharing one ``Connections``.

Binding is ``listeners``' business, TLS contexts ``tls``'s, reading and writing
one connection ``handler``'s, and what a client may hold open, and for how
long, ``connections``'. This module wires them into gevent's server: a deadline
from connect (TLS handshake included) to the end of the request headers, and an
accept loop that makes room instead of failing when the connection cap or the
descriptors run out.
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any

from gevent.pywsgi import WSGIServer

from .config_endpoints import DEFAULT_SOCKET_MODE, ConnectionLimits, EndpointConfig
from .connections import OUT_OF_DESCRIPTORS, Connections, Deadline
from .environ import CLIENT_SUBJECT_KEY
from .handler import SCATTER_MIN, GafferHandler
from .listeners import describe, is_loopback, listen
from .tls import endpoint_context, tls_context

#: Names other modules, the tests and the embedding example import from here.
__all__ = [
    "CLIENT_SUBJECT_KEY", "SCATTER_MIN", "GafferHandler", "GafferServer", "describe",
    "is_loopback", "listen", "make_servers", "tls_context",
]  # fmt: skip

#: Seconds before accepting again when out of descriptors with nothing to close (doubling).
RETRY_MIN, RETRY_MAX = 0.05, 1.0


class GafferServer(WSGIServer):  # type: ignore[misc]
    """pywsgi's server with ``Connections``: deadlines, the cap, room made at the limits."""

    retry_delay = RETRY_MIN

    def __init__(self, listener: socket.socket, app: Any, connections: Connections,
                 **kwargs: Any) -> None:  # fmt: skip
        self.connections = connections
        super().__init__(listener, app, spawn=connections.pool, handler_class=GafferHandler,
                         log=None, **kwargs)  # fmt: skip

    def set_spawn(self, spawn: Any) -> None:
        super().set_spawn(spawn)
        self.__dict__.pop("full", None)  # gevent binds pool.full here; ours makes room first

    def full(self) -> bool:
        """At the cap, close the longest waiting connection; accept again once it is gone."""
        if not self.connections.pool.full():
            return False
        self.connections.make_room()
        return True

    def do_read(self) -> Any:
        for _ in range(3):
            try:
                accepted = super().do_read()
                self.retry_delay = RETRY_MIN
                return accepted
            except OSError as exc:
                if exc.errno not in OUT_OF_DESCRIPTORS:
                    raise
                self.connections.out_of_descriptors(exc)
            if not self.connections.make_room():
                break
        if self.connections.starting():
            # Let the connections just accepted start (and wait), then accept again:
            # callbacks run in order, so theirs come first.
            self.stop_accepting()
            self.loop.run_callback(self._start_accepting_if_started)
        elif not self.connections.refuse_one(self.socket):
            # Nothing to close and nobody to refuse: the listener stays readable, so wait
            # (longer each time) instead of spinning. stop_accepting() cancels the timer.
            self.stop_accepting()
            self._timer = self.loop.timer(self.retry_delay)
            self._timer.start(self._start_accepting_if_started)
            self.retry_delay = min(RETRY_MAX, self.retry_delay * 2)
        return None

    def stop(self, timeout: float | None = None) -> None:
        """Stop listening, close the connections only waiting for a request, then the rest.

        gevent gives open connections ``timeout`` to finish; an idle keep-alive
        connection never would, and would hold every shutdown for that long.
        """
        self.connections.close_waiting()  # on the hub's next turn: after close(), during join
        super().stop(timeout)

    def handle(self, sock: Any, address: Any) -> None:
        with self._deadline_from_connect():
            super().handle(sock, address)

    def wrap_socket_and_handle(self, client_socket: Any, address: Any) -> None:
        with self._deadline_from_connect():
            args = {**self.ssl_args, "do_handshake_on_connect": False}
            with contextlib.closing(self.wrap_socket(client_socket, **args)) as ssl_socket:
                try:
                    ssl_socket.do_handshake()
                except (OSError, Deadline):
                    return  # no or a bad client certificate, a port scan, a slow handshake
                WSGIServer.handle(self, ssl_socket, address)

    @contextlib.contextmanager
    def _deadline_from_connect(self) -> Any:
        if not self.connections.is_waiting():
            self.connections.expect(self.connections.limits.header_timeout)
        try:
            yield
        except Deadline:
            pass  # the handler catches its own; this is a last resort
        finally:
            self.connections.received()


def make_servers(
    app: Any,
    endpoints: list[EndpointConfig],
    *,
    limits: ConnectionLimits | None = None,
    socket_mode: int = DEFAULT_SOCKET_MODE,
    log: Any = None,
) -> list[tuple[GafferServer, str]]:
    """One WSGI server per bound address, with the URL each one answers on.

    All of them share one ``Connections`` (``server.connections``): the cap
    counts every endpoint's connections together.
    """
    connections = Connections(limits or ConnectionLimits(), log)
    servers: list[tuple[GafferServer, str]] = []
    try:
        for endpoint in endpoints:
            context = endpoint_context(endpoint)
            ssl_args = {"ssl_context": context} if context is not None else {}
            for address in endpoint.addresses:
                sock = listen(address, endpoint.backlog, socket_mode)
                # Naming the server ourselves spares pywsgi's reverse DNS lookup of the bind
                # address (socket.getfqdn), which would start a resolver thread and can hang.
                environ = {"SERVER_NAME": address.host} if address.kind != "unix" else None
                server = GafferServer(sock, app, connections, environ=environ, **ssl_args)
                servers.append((server, describe(sock, bool(ssl_args))))
    except BaseException:
        for server, _ in servers:
            server.close()
        connections.close()
        raise
    return servers
