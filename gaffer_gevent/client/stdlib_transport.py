"""An httpx transport over ``http.client``: how feeds reach gafferd.

httpx gives feeds their streaming iteration and per-request timeouts; the
connection under them is the same standard-library one the plain calls use
(``oneshot``), over TCP, TLS or a unix socket. It uses only httpx's public
transport API (``httpx.BaseTransport``). Each feed has its own connection,
closed with the feed: feeds live long and are few.
"""

from __future__ import annotations

import http.client
from collections.abc import Iterator

import httpx

from .oneshot import OneShotHTTP

#: Bytes asked for per read; a read returns what has arrived, so chunks come as they are sent.
READ_SIZE = 65536


def _transport_error(exc: Exception, *, connecting: bool) -> httpx.TransportError:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, TimeoutError):
        return httpx.ConnectTimeout(text) if connecting else httpx.ReadTimeout(text)
    if isinstance(exc, http.client.HTTPException):
        return httpx.RemoteProtocolError(text)
    return httpx.ConnectError(text) if connecting else httpx.ReadError(text)


class _Body(httpx.SyncByteStream):
    """The response body as it arrives; closing it closes the connection."""

    def __init__(self, answer: http.client.HTTPResponse, conn: http.client.HTTPConnection) -> None:
        self._answer = answer
        self._conn = conn

    def __iter__(self) -> Iterator[bytes]:
        while True:
            try:
                data = self._answer.read1(READ_SIZE)
            except (OSError, http.client.HTTPException) as exc:
                raise _transport_error(exc, connecting=False) from exc
            if not data:
                return
            yield data

    def close(self) -> None:
        self._answer.close()
        self._conn.close()


class StdlibTransport(httpx.BaseTransport):
    """Sends each request on a new ``http.client`` connection made by ``http``."""

    def __init__(self, http: OneShotHTTP) -> None:
        self._http = http

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        try:
            conn = self._http.connect(timeouts.get("connect"), timeouts.get("read"))
        except (OSError, http.client.HTTPException) as exc:
            raise _transport_error(exc, connecting=True) from exc
        try:
            target = request.url.raw_path.decode("ascii")
            conn.putrequest(request.method, target, skip_host=True, skip_accept_encoding=True)
            for name, value in request.headers.raw:
                conn.putheader(name.decode("latin-1"), value.decode("latin-1"))
            body = request.read()
            conn.endheaders(body or None)
            answer = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise _transport_error(exc, connecting=False) from exc
        return httpx.Response(
            answer.status,
            headers=answer.getheaders(),
            stream=_Body(answer, conn),
            extensions={"http_version": b"HTTP/1.1"},
        )
