"""The TLS context the client uses for ``https://`` addresses (plain calls and feeds alike)."""

from __future__ import annotations

import os
import ssl


def ssl_context(
    certfile: str | None, keyfile: str | None, cafile: str | None, verify: bool
) -> ssl.SSLContext:
    """The context for ``https://``: the system's CA file settings as httpx reads them.

    Without ``cafile``: ``SSL_CERT_FILE`` or ``SSL_CERT_DIR`` when set, else certifi's
    bundle (what ``httpx.create_ssl_context()`` does, without importing httpx).
    """
    if cafile:
        context = ssl.create_default_context(cafile=cafile)
    elif os.environ.get("SSL_CERT_FILE"):
        context = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    elif os.environ.get("SSL_CERT_DIR"):
        context = ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
    else:
        import certifi

        context = ssl.create_default_context(cafile=certifi.where())
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if certfile:
        context.load_cert_chain(certfile, keyfile)
    return context
