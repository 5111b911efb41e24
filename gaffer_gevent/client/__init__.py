"""A typed, synchronous client for gafferd's HTTP API (spec sections 3, 4 and 14).

Both CLIs and the tests talk to gafferd only through this module, so it is the
one place that knows URLs, query parameters and error bodies. Server errors come
back as the package's own ``GafferError`` classes (looked up by the ``error``
code of the body), so callers handle a refused request the same way whether it
happened in-process or over HTTP; a daemon that cannot be reached at all is a
``ServerUnreachable`` naming the address.

A bearer token (``Client(url, token=...)``) goes in the ``Authorization``
header of every request, feed and websocket handshake; gafferd's refusals
(401, 403, 421, 429) are ``Unauthorized``, ``AccessForbidden``,
``ForbiddenOrigin``, ``MisdirectedRequest`` and ``TooManyFailures``.
``resolve_token`` applies the CLIs' order: ``--token``, ``--token-file``,
``GAFFER_TOKEN``.

Feeds (streams, ``/watch``, stats) are returned already opened: the request has
been answered by the time the call returns, so a caller knows its subscription
exists before it makes something happen, and a refused feed raises at once.
"""

from __future__ import annotations

from ..defaults import DEFAULT_URL
from .client import Client, FeedName, Status, Ticket, WhoAmI, signal_number
from .credentials import TOKEN_ENV, check_token, read_token_file, resolve_token
from .errors import (
    AccessForbidden,
    ForbiddenOrigin,
    MisdirectedRequest,
    ServerUnreachable,
    TokenError,
    TooManyFailures,
    Unauthorized,
    error_from_body,
)
from .feeds import Feed
from .sse import SSEEvent, SSEParser
from .stream_socket import StreamSocket

__all__ = [
    "DEFAULT_URL",
    "TOKEN_ENV",
    "AccessForbidden",
    "Client",
    "Feed",
    "FeedName",
    "ForbiddenOrigin",
    "MisdirectedRequest",
    "SSEEvent",
    "SSEParser",
    "ServerUnreachable",
    "Status",
    "StreamSocket",
    "Ticket",
    "TokenError",
    "TooManyFailures",
    "Unauthorized",
    "WhoAmI",
    "check_token",
    "error_from_body",
    "read_token_file",
    "resolve_token",
    "signal_number",
]
