"""A TCP check: passes when a connection to ``host:port`` opens (Kubernetes' tcpSocket)."""

from __future__ import annotations

from gevent import socket

from .spec import split_host_port


def probe_tcp(address: str, timeout: float) -> tuple[bool, str]:
    """(passed, what was seen): connect, then close at once."""
    host, port = split_host_port(address, "address")
    conn = socket.create_connection((host, port), timeout=timeout)
    conn.close()
    return True, "connected"
