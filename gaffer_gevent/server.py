"""Listening sockets and WSGI servers for gafferd's endpoints (TCP, IPv6, unix, TLS, mTLS).

What a client may hold open, and for how long, is ``connections``' business;
this module wires it into gevent's server and handler: a deadline from connect
(TLS handshake included) to the end of the request headers, another between
two requests on a kept-alive connection, and an accept loop that makes room
instead of failing when the connection cap or the descriptors run out.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import ssl
import stat
from typing import Any

from gevent.pywsgi import WSGIServer
from gevent.ssl import SSLSocket
from geventwebsocket.handler import WebSocketHandler

from .config import DEFAULT_SOCKET_MODE, Address, ConnectionLimits, EndpointConfig
from .connections import OUT_OF_DESCRIPTORS, Connections, Deadline
from .environ import CLIENT_SUBJECT_KEY, SOCKET_KEY
from .errors import BindError, ConfigError

#: Chunks at least this big go out with scatter-gather instead of being copied into one buffer.
SCATTER_MIN = 64 * 1024
VERIFY_MODES = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}
#: Seconds before accepting again when out of descriptors with nothing to close (doubling).
RETRY_MIN, RETRY_MAX = 0.05, 1.0
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


def listen(
    address: Address, backlog: int = 128, socket_mode: int = DEFAULT_SOCKET_MODE
) -> socket.socket:
    """A listening socket; TCP ones set TCP_NODELAY, which accepted sockets inherit.

    A unix socket is created with ``socket_mode`` and never wider: it is bound
    under a umask that leaves exactly that mode. Any failure is a ``BindError``
    naming the address.
    """
    try:
        return _listen(address, backlog, socket_mode)
    except OSError as exc:
        raise BindError(f"cannot listen on {address}: {exc}") from exc


def _listen(address: Address, backlog: int, socket_mode: int) -> socket.socket:
    if address.kind == "unix":
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(os.stat(address.path).st_mode):
                os.unlink(address.path)  # a stale socket from an earlier run
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # The umask is process-wide, but nothing else creates files while gafferd starts.
        umask = os.umask(0o777 & ~socket_mode)
        try:
            sock.bind(address.path)
        except OSError:
            sock.close()
            raise
        finally:
            os.umask(umask)
        os.chmod(address.path, socket_mode)  # exact, whatever the filesystem did with the umask
    else:
        family = socket.AF_INET6 if address.kind == "tcp6" else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.bind((address.host, address.port))
        except OSError:
            sock.close()
            raise
    sock.listen(backlog)
    sock.setblocking(False)
    return sock


def is_loopback(address: Address) -> bool:
    """Can only this machine reach ``address``? A name counts if all its addresses are loopback.

    Unix sockets count (their file mode guards them). A name that does not
    resolve is a ``BindError``: binding it would fail the same way.
    """
    if address.kind == "unix":
        return True
    try:
        return _loopback_ip(address.host)
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(address.host, address.port, socket.AF_INET, socket.SOCK_STREAM)
    except OSError as exc:
        raise BindError(f"cannot listen on {address}: {exc}") from exc
    return all(_loopback_ip(str(info[4][0])) for info in infos)


def _loopback_ip(text: str) -> bool:
    ip = ipaddress.ip_address(text)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def describe(sock: socket.socket, tls: bool) -> str:
    """The URL a client uses to reach ``sock``."""
    name = sock.getsockname()
    if sock.family == socket.AF_UNIX:
        return f"unix:{name}"
    scheme = "https" if tls else "http"
    host = f"[{name[0]}]" if sock.family == socket.AF_INET6 else name[0]
    return f"{scheme}://{host}:{name[1]}"


def tls_context(
    certfile: str,
    keyfile: str | None = None,
    ca_certs: str | None = None,
    client_cert: str = "none",
) -> ssl.SSLContext:
    """A server-side TLS context; with ``ca_certs``, client certificates must chain to it.

    ``client_cert`` is "none", "optional" (a certificate, if sent, must verify)
    or "required" (no verified certificate, no connection).
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certfile, keyfile)
    if ca_certs:
        if os.path.isdir(ca_certs):
            context.load_verify_locations(capath=ca_certs)
        else:
            context.load_verify_locations(cafile=ca_certs)
    context.verify_mode = VERIFY_MODES[client_cert]
    return context


def endpoint_context(endpoint: EndpointConfig) -> ssl.SSLContext | None:
    """The endpoint's TLS context, or None; unreadable files are a ConfigError naming them."""
    if not endpoint.certfile:
        return None
    try:
        return tls_context(
            endpoint.certfile, endpoint.keyfile, endpoint.ca_certs, endpoint.client_cert
        )
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        files = [f for f in (endpoint.certfile, endpoint.keyfile, endpoint.ca_certs) if f]
        raise ConfigError(
            f"cannot load {', '.join(files)}: {exc}",
            section=f"endpoint:{endpoint.name}",
            key="certfile",
        ) from exc


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
