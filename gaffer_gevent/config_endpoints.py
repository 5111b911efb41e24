"""The ``[endpoint:NAME]`` sections and the ``[gaffer]`` keys bounding client connections.

What gafferd listens on (addresses, TLS, client certificates, backlog) and
what a client may hold open there, parsed and checked before anything binds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .address import Address, parse_address
from .ini_source import IniSource
from .ini_values import as_float, as_int, as_list

DEFAULT_BACKLOG = 128
DEFAULT_SOCKET_MODE = 0o600
CLIENT_CERT_MODES = ("none", "optional", "required")
ENDPOINT_KEYS = frozenset({"bind", "certfile", "keyfile", "backlog", "ca_certs", "client_cert"})


@dataclass
class EndpointConfig:
    """One ``[endpoint:NAME]`` listed in ``http_endpoints``."""

    name: str
    addresses: list[Address]
    certfile: str | None = None
    keyfile: str | None = None
    backlog: int = DEFAULT_BACKLOG
    ca_certs: str | None = None  # CA bundle that client certificates must chain to
    client_cert: str = "none"  # "none", "optional" or "required"


@dataclass(frozen=True)
class ConnectionLimits:
    """How long and how many: the ``[gaffer]`` keys bounding what a client can hold open."""

    header_timeout: float = 10.0  # from connect (TLS included) to the end of a request's headers
    keepalive_timeout: float = 60.0  # idle between two requests on one connection
    max_connections: int = 10_000  # open HTTP connections, all endpoints together
    websocket_ping_interval: float = 20.0
    websocket_idle_timeout: float = 60.0  # nothing from the client, not even a pong


#: ``[gaffer]`` key -> (converter, smallest, largest) of each ``ConnectionLimits`` field.
CONNECTION_KEYS: dict[str, tuple[Callable[[str], Any], float, float]] = {
    "header_timeout": (as_float, 0.001, 3600), "keepalive_timeout": (as_float, 0.001, 86400),
    "max_connections": (as_int, 1, 1_000_000), "websocket_ping_interval": (as_float, 0.001, 3600),
    "websocket_idle_timeout": (as_float, 0.001, 86400),
}  # fmt: skip


def parse_endpoints(src: IniSource, names: list[str]) -> list[EndpointConfig]:
    """The endpoints named by ``http_endpoints``, in that order."""
    endpoints: list[EndpointConfig] = []
    for name in names:
        section = f"endpoint:{name}"
        if section not in src.sections:
            raise src.error(
                f"lists {name!r} but there is no [{section}]", "gaffer", "http_endpoints"
            )
        if names.count(name) > 1:
            raise src.error(f"lists {name!r} twice", "gaffer", "http_endpoints")
        values = src.values(section, ENDPOINT_KEYS.__contains__)
        binds = as_list(values.get("bind", ""))
        if not binds:
            continue  # spec: a section without bind is skipped
        try:
            addresses = [parse_address(bind) for bind in binds]
        except ValueError as exc:
            raise src.error(str(exc), section, "bind") from None
        certfile, keyfile = values.get("certfile") or None, values.get("keyfile") or None
        if keyfile and not certfile:
            raise src.error("keyfile given without certfile", section, "keyfile")
        backlog = src.convert(section, values, "backlog", as_int, DEFAULT_BACKLOG)
        if backlog < 0:
            raise src.error("must be >= 0", section, "backlog")
        ca_certs = values.get("ca_certs") or None
        client_cert = values.get("client_cert", "none").strip().lower() or "none"
        if client_cert not in CLIENT_CERT_MODES:
            raise src.error(
                f"must be one of {', '.join(CLIENT_CERT_MODES)}", section, "client_cert"
            )
        if (ca_certs or client_cert != "none") and not certfile:
            raise src.error("client certificates need TLS: set certfile", section, "ca_certs")
        if client_cert != "none" and not ca_certs:
            raise src.error("needs ca_certs to verify client certificates", section, "client_cert")
        endpoints.append(
            EndpointConfig(name, addresses, certfile, keyfile, backlog, ca_certs, client_cert)
        )
    return endpoints


def parse_connection_limits(src: IniSource, gaffer: dict[str, str]) -> ConnectionLimits:
    """The ``[gaffer]`` connection keys, each within its range."""
    values: dict[str, Any] = {}
    for key, (conv, low, high) in CONNECTION_KEYS.items():
        value = src.convert("gaffer", gaffer, key, conv, None)
        if value is not None:
            if not low <= value <= high:
                raise src.error(f"must be between {low:g} and {high:g}", "gaffer", key)
            values[key] = value
    limits = ConnectionLimits(**values)
    if limits.websocket_idle_timeout <= limits.websocket_ping_interval:
        raise src.error(
            "must be longer than websocket_ping_interval, or no pong could ever arrive in time",
            "gaffer",
            "websocket_idle_timeout",
        )
    return limits
