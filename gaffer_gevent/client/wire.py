"""HTTP/1.1 on a plain socket, for the CLI's one-shot calls over TCP or a unix socket.

A CLI command's time is mostly imports, and ``http.client`` brings ``email``
(its header parser) and ``ssl`` (even for plain HTTP): about 15 ms of a 45 ms
``gafferctl processes``. The calls without TLS need little of it: send one
request, read a status line, headers and a body framed by ``Content-Length``,
by ``chunked`` or by the end of the connection. That is this module. TLS still
goes through ``http.client`` (``ssl`` is loaded then anyway), and so do feeds.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import NamedTuple

#: Longest status or header line, and most header lines, accepted from a server.
MAX_LINE = 65536
MAX_HEADERS = 200


class ProtocolError(Exception):
    """The answer is not HTTP/1.x as this module reads it."""


class Stale(ConnectionError):
    """A kept connection gave no answer at all: the server closed it while it was idle."""


class Headers(dict[str, str]):
    """Response headers by lower-case name; ``get`` takes any case (like httpx's)."""

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return super().get(key.lower(), default)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())


class Answer(NamedTuple):
    status: int
    headers: Headers
    body: bytes
    #: The server closes the connection after this answer: it cannot carry another request.
    will_close: bool


class WireConnection:
    """One connection to ``address`` (a unix socket path, or host and port)."""

    def __init__(
        self, address: str | tuple[str, int], host: str, connect_timeout: float | None
    ) -> None:
        if isinstance(address, str):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(connect_timeout)
                sock.connect(address)
            except BaseException:
                sock.close()
                raise
        else:
            sock = socket.create_connection(address, timeout=connect_timeout)
        self.sock = sock
        self.host = host
        self.used = False
        self._file = sock.makefile("rb")

    def exchange(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes | None
    ) -> Answer:
        """Send one request, read its whole answer."""
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if body is not None and not any(name.lower() == "content-length" for name in headers):
            lines.append(f"Content-Length: {len(body)}")
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")
        reused, self.used = self.used, True
        try:
            self.sock.sendall(request)
            status, version = self._status_line(reused)
        except (BrokenPipeError, ConnectionResetError) as exc:
            if reused:
                raise Stale(str(exc)) from exc
            raise
        while 100 <= status < 200:  # an interim answer (100 Continue): the real one follows
            self._headers()
            status, version = self._status_line(False)
        answer_headers = self._headers()
        connection = (answer_headers.get("connection") or "").lower()
        will_close = version == "HTTP/1.0" or "close" in connection
        if method == "HEAD" or status in (204, 304):
            content = b""
        elif "chunked" in (answer_headers.get("transfer-encoding") or "").lower():
            content = self._chunked()
        elif "content-length" in answer_headers:
            content = self._exactly(_length(answer_headers["content-length"]))
        else:
            content, will_close = self._file.read(), True  # framed by the end of the connection
        return Answer(status, answer_headers, content, will_close)

    def close(self) -> None:
        self._file.close()
        self.sock.close()

    # -- reading ------------------------------------------------------------

    def _line(self) -> bytes:
        line = self._file.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise ProtocolError("a line of the answer is too long")
        return line

    def _status_line(self, reused: bool) -> tuple[int, str]:
        line = self._line()
        if not line:
            if reused:
                raise Stale("the server closed the kept connection")
            raise ProtocolError("the server closed the connection without an answer")
        parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not _digits(parts[1], 3):
            raise ProtocolError(f"not an HTTP answer: {line[:80]!r}")
        return int(parts[1]), parts[0]

    def _headers(self) -> Headers:
        headers = Headers()
        for _ in range(MAX_HEADERS):
            line = self._line()
            if line in (b"\r\n", b"\n", b""):
                return headers
            name, colon, value = line.decode("latin-1").partition(":")
            if not colon:
                raise ProtocolError(f"a header line without a colon: {line[:80]!r}")
            key = name.strip().lower()
            value = value.strip()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        raise ProtocolError("too many header lines")

    def _exactly(self, size: int) -> bytes:
        data = self._file.read(size)
        if len(data) < size:
            raise ProtocolError(f"the answer ended after {len(data)} of {size} bytes")
        return data

    def _chunked(self) -> bytes:
        parts = []
        while True:
            size_text = self._line().split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise ProtocolError(f"a bad chunk size: {size_text[:20]!r}") from None
            if size == 0:
                break
            parts.append(self._exactly(size))
            self._exactly(2)  # the CRLF after each chunk
        while self._line() not in (b"\r\n", b"\n", b""):
            pass  # trailers
        return b"".join(parts)


def _digits(text: str, count: int) -> bool:
    return len(text) == count and text.isascii() and text.isdigit()


def _length(value: str) -> int:
    text = value.split(",")[0].strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise ProtocolError(f"a bad Content-Length: {value[:20]!r}")
    return int(text)
