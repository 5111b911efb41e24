"""httpx transports for gafferd's addresses: unix sockets and TLS contexts."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx
from httpcore._backends.sync import SyncStream


class _ClosingBackend(httpcore.SyncBackend):
    """httpcore 1.0.9 leaves the socket open when a unix connect fails (a ResourceWarning
    on every "gafferd is not running"); this closes it."""

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            for option in socket_options or ():
                sock.setsockopt(*option)
            sock.settimeout(timeout)
            sock.connect(path)
        except TimeoutError as exc:
            sock.close()
            raise httpcore.ConnectTimeout(str(exc)) from exc
        except OSError as exc:
            sock.close()
            raise httpcore.ConnectError(str(exc)) from exc
        return SyncStream(sock)


def unix_transport(path: str) -> httpx.HTTPTransport:
    transport = httpx.HTTPTransport(uds=path)
    transport._pool = httpcore.ConnectionPool(uds=path, network_backend=_ClosingBackend())
    return transport


def ssl_context(
    certfile: str | None, keyfile: str | None, cafile: str | None, verify: bool
) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=cafile) if cafile else httpx.create_ssl_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if certfile:
        context.load_cert_chain(certfile, keyfile)
    return context
