"""Listening sockets for gafferd's bind addresses: TCP, IPv6 and unix, and what they are.

Binding is kept apart from serving, so the daemon can ask whether an address
is loopback-only (and refuse to serve it without a token otherwise) before it
binds anything, and an embedding app can bind the way gafferd does.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import stat

from .address import Address
from .config_endpoints import DEFAULT_SOCKET_MODE
from .errors import BindError


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
