"""One-shot HTTP requests to gafferd over the standard library's ``http.client``.

A CLI command makes one or two requests and exits, so what it pays for is
start-up: importing httpx (and httpcore, anyio, h11, idna) takes longer than
the request itself. The plain calls of ``Client`` go through this module, which
imports only the standard library; feeds, which need streaming and read
timeouts of their own, still open through httpx, imported when a feed is.

The connection is kept alive between calls. A kept connection the server
closed meanwhile fails before any answer arrives; that request is sent once
more on a fresh connection, as httpx does.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from collections.abc import Mapping
from email.message import Message
from typing import Any
from urllib.parse import urlencode, urlsplit

#: Errors of a connection the server closed while it was idle (the retry case).
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


class TransportError(Exception):
    """The request got no HTTP answer: refused, timed out, reset, or not HTTP at all."""


class Headers(dict[str, str]):
    """The headers sent with every request; the repr never shows the token."""

    def __repr__(self) -> str:
        shown = {k: "[secure]" if k.lower() == "authorization" else v for k, v in self.items()}
        return f"Headers({shown!r})"


class Response:
    """An answer read in full: the status, the headers and the body."""

    def __init__(self, status_code: int, headers: Message, content: bytes) -> None:
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


class _UnixConnection(http.client.HTTPConnection):
    """HTTP over a unix socket; the ``Host`` header says ``localhost``."""

    def __init__(self, path: str, timeout: float | None) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.path)
        except BaseException:
            sock.close()  # a failed connect must not leave the socket to the collector
            raise
        self.sock = sock


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
        self._conn: http.client.HTTPConnection | None = None

    def connect(
        self, connect_timeout: float | None, read_timeout: float | None
    ) -> http.client.HTTPConnection:
        """A new connection to gafferd, connected, with ``read_timeout`` on its socket."""
        conn: http.client.HTTPConnection
        if self._uds is not None:
            conn = _UnixConnection(self._uds, connect_timeout)
        elif self._ssl is not None:
            conn = http.client.HTTPSConnection(
                self._host, self._port, timeout=connect_timeout, context=self._ssl
            )
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=connect_timeout)
        try:
            conn.connect()
        except BaseException:
            conn.close()
            raise
        assert conn.sock is not None
        conn.sock.settimeout(read_timeout)  # connected: from now on the read timeout
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
        reused = self._conn is not None
        try:
            try:
                return self._exchange(method, target, content, sent)
            except _STALE:
                if not reused:
                    raise
                return self._exchange(method, target, content, sent)
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise TransportError(str(exc) or type(exc).__name__) from exc

    def _exchange(
        self, method: str, target: str, content: bytes | None, headers: dict[str, str]
    ) -> Response:
        if self._conn is None:
            self._conn = self.connect(self._connect_timeout, self._timeout)
        conn = self._conn
        try:
            conn.request(method, target, body=content, headers=headers)
            answer = conn.getresponse()
            body = answer.read()
        except BaseException:
            self.close()
            raise
        if answer.will_close:
            self.close()
        return Response(answer.status, answer.headers, body)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
