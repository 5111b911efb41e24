"""Open streaming responses as iterators of items (``/wstreams`` is in ``stream_socket``)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Generic, TypeVar

from .errors import ServerUnreachable, describe
from .sse import SSEEvent, SSEParser

if TYPE_CHECKING:
    import httpx  # a feed is opened by the client, which imports httpx only then

T = TypeVar("T")


class Feed(Generic[T]):
    """An open streaming response; iterate it for items, close it (or use ``with``) when done.

    The iteration ends when the server ends the response (for streams: the
    process exited). A connection lost midway raises ``ServerUnreachable``.
    """

    def __init__(
        self,
        response: httpx.Response,
        items: Callable[[Iterator[bytes]], Iterator[T]],
        address: str,
    ) -> None:
        self.response = response
        self._address = address
        self._items = items(self._chunks())

    def _chunks(self) -> Iterator[bytes]:
        import httpx  # already loaded: the client opened this feed with it

        try:
            yield from self.response.iter_bytes()
        except httpx.TransportError as exc:
            raise ServerUnreachable(self._address, describe(exc)) from exc
        finally:
            self.response.close()

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        return next(self._items)

    def close(self) -> None:
        self.response.close()

    def __enter__(self) -> Feed[T]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def sse_events(chunks: Iterator[bytes]) -> Iterator[SSEEvent]:
    parser = SSEParser()
    for chunk in chunks:
        yield from parser.feed(chunk)


def raw_chunks(chunks: Iterator[bytes]) -> Iterator[bytes]:
    return (chunk for chunk in chunks if chunk)


def ndjson_output(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Output bytes from NDJSON chunk records; blank (heartbeat) lines and gaps are skipped."""
    pending = b""
    for chunk in chunks:
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            record = json.loads(line) if line.strip() else None
            if isinstance(record, dict) and isinstance(record.get("data"), str):
                yield record["data"].encode()
