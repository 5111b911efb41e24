"""A bind address (spec 2.1): ``host:port``, ``[ipv6]:port`` or ``unix:/path``, parsed.

The config file, ``gafferd --bind`` and an embedding app all name addresses the
same way, so they share this one parser, and the server binds what it returns.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from .defaults import BARE_HOST_PORT


@dataclass(frozen=True)
class Address:
    """One bind URI, as ``parse_address`` understood it."""

    kind: str  # "tcp", "tcp6" or "unix"
    host: str
    port: int
    path: str

    def __str__(self) -> str:
        if self.kind == "unix":
            return f"unix:{self.path}"
        return f"[{self.host}]:{self.port}" if self.kind == "tcp6" else f"{self.host}:{self.port}"


def parse_address(uri: str) -> Address:
    """Parse a bind URI (spec 2.1); raise ``ValueError`` if it is not one."""
    uri = uri.strip()
    if uri.startswith("unix:"):
        if not uri[5:]:
            raise ValueError(f"{uri!r} has no socket path")
        return Address("unix", "", 0, uri[5:])
    kind, host, port = "tcp", uri, ""
    if uri.startswith("["):
        host, bracket, port = uri[1:].partition("]")
        if not bracket or (port and not port.startswith(":")):
            raise ValueError(f"{uri!r} is not a valid [ipv6]:port address")
        kind, port = "tcp6", port[1:] if port else ""
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{host!r} is not an IPv6 address") from None
    elif ":" in uri:
        host, _, port = uri.partition(":")
        if ":" in port:
            raise ValueError(f"{uri!r}: write IPv6 addresses as [addr]:port")
    if (port or uri.endswith(":")) and (
        not (port.isascii() and port.isdigit()) or int(port) > 65535
    ):
        raise ValueError(f"{port!r} is not a valid port number")
    if not host:  # gaffer 0.4 read ":8000" as every interface; say which one is meant
        raise ValueError(
            f"{uri!r} has no host: write 127.0.0.1:{port or BARE_HOST_PORT} (this machine only) "
            f"or 0.0.0.0:{port or BARE_HOST_PORT} (every interface)"
        )
    return Address(kind, host.lower(), int(port) if port else BARE_HOST_PORT, "")
