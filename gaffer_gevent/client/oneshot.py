"""One-shot HTTP requests to gafferd: ``wire.py`` on a plain socket, ``http.client`` for TLS.

A CLI command makes one or two requests and exits, so what it pays for is
start-up: importing httpx (and httpcore, anyio, h11, idna) takes longer than
the request itself, and even ``http.client`` (``email``, ``ssl``) is a third of
a command. The plain calls of ``Client`` go through this module, which imports
only the standard library, and over TCP or a unix socket without TLS only
``socket``; feeds, which need streaming and read timeouts of their own, still
open through httpx, imported when a feed is.

The connection is kept alive between calls. A kept connection the server
closed meanwhile fails before any answer arrives; that request is sent once
more on a fresh connection, as httpx does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlencode, urlsplit

from .wire import ProtocolError, Stale, WireConnection

if TYPE_CHECKING:
    import http.client
    import ssl


class TransportError(Exception):
    """The request got no HTTP answer: refused, timed out, reset, or not HTTP at all."""


class Headers(dict[str, str]):
    """The headers sent with every request; the repr never shows the token."""

    def __repr__(self) -> str:
        shown = {k: "[secure]" if k.lower() == "authorization" else v for k, v in self.items()}
        return f"Headers({shown!r})"


class Response:
    """An answer read in full: the status, the headers and the body."""

    def __init__(self, status_code: int, headers: Mapping[str, str], content: bytes) -> None:
        self.status_code = status_code
        #: Case-insensitive ``get``, like httpx's headers.
        self.headers = headers
        self.content = content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body as JSON; a ValueError when it is not."""
        return json.loads(self.content)

    def __repr__(self) -> str:
        return f"<Response [{self.status_code}]>"


class OneShotHTTP:
    """Requests to one gafferd address with fixed headers, on one kept connection."""

    def __init__(
        self,
        base: str,
        *,
        uds: str | None,
        ssl_context: ssl.SSLContext | None,
        headers: Mapping[str, str],
        timeout: float,
        connect_timeout: float,
    ) -> None:
        parts = urlsplit(base)
        self._host = parts.hostname or "localhost"
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self._uds = uds
        self._ssl = ssl_context
        self.headers = Headers(headers)
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._conn: http.client.HTTPConnection | WireConnection | None = None

    def connect(
        self, connect_timeout: float | None, read_timeout: float | None
    ) -> http.client.HTTPConnection:
        """A new ``http.client`` connection to gafferd, connected, with ``read_timeout`` on
        its socket (TLS calls, and the feeds' transport)."""
        from .stdlib_connection import open_connection

        return open_connection(
            self._host, self._port, uds=self._uds, ssl_context=self._ssl,
            connect_timeout=connect_timeout, read_timeout=read_timeout,
        )  # fmt: skip

    def _connect_plain(self) -> WireConnection:
        if self._uds is not None:
            conn = WireConnection(self._uds, "localhost", self._connect_timeout)
        else:
            port = self._port or 80
            host = f"[{self._host}]" if ":" in self._host else self._host
            address = (self._host, port)
            conn = WireConnection(address, host if port == 80 else f"{host}:{port}",
                                  self._connect_timeout)  # fmt: skip
        conn.sock.settimeout(self._timeout)  # connected: from now on the read timeout
        return conn

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """Send one request and read its whole answer; no answer is a ``TransportError``."""
        target = self._prefix + path
        if params:
            target += "?" + urlencode({key: str(value) for key, value in params.items()})
        sent = {**self.headers, **(headers or {})}
        if content is not None:
            sent["Content-Length"] = str(len(content))
        if self._ssl is not None:
            from http.client import HTTPException

            from .stdlib_connection import STALE

            stale: tuple[type[BaseException], ...] = STALE
            failures: tuple[type[BaseException], ...] = (OSError, HTTPException)
        else:
            stale, failures = (Stale,), (OSError, ProtocolError)
        reused = self._conn is not None
        try:
            try:
                return self._exchange(method, target, content, sent)
            except stale:
                if not reused:
                    raise
                return self._exchange(method, target, content, sent)
        except failures as exc:
            self.close()
            raise TransportError(str(exc) or type(exc).__name__) from exc

    def _exchange(
        self, method: str, target: str, content: bytes | None, headers: dict[str, str]
    ) -> Response:
        if self._ssl is None:
            return self._exchange_plain(method, target, content, headers)
        if self._conn is None:
            self._conn = self.connect(self._connect_timeout, self._timeout)
        conn = self._conn
        assert not isinstance(conn, WireConnection)
        try:
            conn.request(method, target, body=content, headers=headers)
            answer = conn.getresponse()
            body = answer.read()
        except BaseException:
            self.close()
            raise
        if answer.will_close:
            self.close()
        # An HTTPMessage: case-insensitive ``get``, as the plain path's headers.
        return Response(answer.status, cast("Mapping[str, str]", answer.headers), body)

    def _exchange_plain(
        self, method: str, target: str, content: bytes | None, headers: dict[str, str]
    ) -> Response:
        if self._conn is None:
            self._conn = self._connect_plain()
        conn = self._conn
        assert isinstance(conn, WireConnection)
        try:
            answer = conn.exchange(method, target, headers, content)
        except BaseException:
            self.close()
            raise
        if answer.will_close:
            self.close()
        return Response(answer.status, answer.headers, answer.body)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
