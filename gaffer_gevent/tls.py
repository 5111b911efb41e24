"""Server-side TLS contexts for gafferd's endpoints, client certificates (mTLS) included."""

from __future__ import annotations

import os
import ssl

from .config_endpoints import EndpointConfig
from .errors import ConfigError

VERIFY_MODES = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}


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
