"""The calls that follow something: output streams, stdin, events and stats (spec 5, 6, 9).

Each feed is returned already opened (see ``Session._open_feed``): a refused
feed raises at once, and a caller knows its subscription exists before it makes
something happen.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Literal, cast, overload

from ..patterns import matches
from .bodies import FeedName
from .feeds import Feed, ndjson_output, raw_chunks, sse_events
from .session import Session, segment
from .sse import SSEEvent
from .stream_socket import StreamSocket, open_stream_socket


class StreamCalls(Session):
    """``/stats``, ``/streams``, ``/watch`` and ``/wstreams``: stats, feeds and stdin."""

    @overload
    def stats(self) -> list[dict[str, Any]]: ...
    @overload
    def stats(self, name: str) -> dict[str, Any]: ...
    @overload
    def stats(self, name: str, pid: int) -> dict[str, Any]: ...
    def stats(self, name: str | None = None, pid: int | None = None) -> Any:
        """All templates' stats, one template's (spec 9.2), or one process's (9.1)."""
        path = "/stats"
        if name is not None:
            path += f"/{segment(name)}"
            if pid is not None:
                path += f"/{int(pid)}"
        return self._json("GET", path)

    def stats_feed(
        self, name: str, pid: int | None = None, *, heartbeat: int = 30
    ) -> Feed[dict[str, Any]]:
        """Periodic ``stat`` events of a template's (or one) process(es), as dicts."""
        path = f"/stats/{segment(name)}" + (f"/{int(pid)}" if pid is not None else "")
        params: dict[str, str | int] = {"feed": "eventsource", "heartbeat": heartbeat}

        def items(chunks: Iterator[bytes]) -> Iterator[dict[str, Any]]:
            for event in sse_events(chunks):
                yield cast(dict[str, Any], json.loads(event.data))

        return self._open_feed(path, params, heartbeat, items)

    # -- streams -------------------------------------------------------------

    @overload
    def stream(
        self,
        pid: int,
        label: str = ...,
        feed: Literal["continuous", "longpoll"] = ...,
        *,
        heartbeat: int = ...,
        **query: str | int,
    ) -> Feed[bytes]: ...
    @overload
    def stream(
        self,
        pid: int,
        label: str,
        feed: Literal["eventsource"],
        *,
        heartbeat: int = ...,
        **query: str | int,
    ) -> Feed[SSEEvent]: ...
    def stream(
        self,
        pid: int,
        label: str = "stdout",
        feed: FeedName = "continuous",
        *,
        heartbeat: int = 30,
        **query: str | int,
    ) -> Feed[bytes] | Feed[SSEEvent]:
        """Follow output ``label`` of internal ``pid``: raw chunks, or SSE events.

        With ``continuous`` each item is one pipe read as bytes (a heartbeat is
        a lone ``b"\\n"``; pass ``heartbeat=0`` for the exact output). With
        ``eventsource`` each item is an ``SSEEvent`` named after the label.
        """
        path = f"/streams/{int(pid)}/{segment(label)}"
        params: dict[str, str | int] = {"feed": feed, "heartbeat": heartbeat, **query}
        if feed == "eventsource":
            return self._open_feed(path, params, heartbeat, sse_events)
        return self._open_feed(path, params, heartbeat, raw_chunks)

    def follow(
        self, pid: int, label: str = "stdout", *, heartbeat: int = 30, tail: int | None = None
    ) -> Feed[bytes]:
        """Output of ``label`` exactly as the process wrote it (as UTF-8), heartbeats removed.

        Asks for gafferd's JSON chunk records (``format=json``), where heartbeats
        cannot be mistaken for output; a server without them sends raw bytes,
        which are passed on as they come. ``tail`` first replays the last lines
        the server kept.
        """
        params: dict[str, str | int] = {"feed": "continuous", "heartbeat": heartbeat}
        params["format"] = "json"
        if tail is not None:
            params["tail"] = tail

        def items(chunks: Iterator[bytes]) -> Iterator[bytes]:
            # A generator, so this runs at the first next(), once ``feed`` is bound.
            content_type = feed.response.headers.get("content-type", "")
            if content_type.startswith("application/x-ndjson"):
                yield from ndjson_output(chunks)
            else:
                yield from raw_chunks(chunks)

        feed = self._open_feed(f"/streams/{int(pid)}/{segment(label)}", params, heartbeat, items)
        return feed

    def write_stdin(self, pid: int, data: bytes) -> None:
        """Queue ``data`` for the process's stdin, as-is (no newline added)."""
        self.request("POST", f"/streams/{int(pid)}/stdin", content=data)

    def watch(self, pattern: str = ".", *, heartbeat: int = 60) -> Feed[tuple[str, dict[str, Any]]]:
        """Events matching ``pattern`` (spec 6.3, matched here) as ``(name, payload)``."""

        def items(chunks: Iterator[bytes]) -> Iterator[tuple[str, dict[str, Any]]]:
            for event in sse_events(chunks):
                if matches(pattern, event.event):
                    yield event.event, cast(dict[str, Any], json.loads(event.data))

        params: dict[str, str | int] = {"feed": "eventsource", "heartbeat": heartbeat}
        return self._open_feed("/watch", params, heartbeat, items)

    def websocket(self, pid: int, *, timeout: float | None = None) -> StreamSocket:
        """A websocket on ``/wstreams/<pid>`` (needs the ``websocket-client`` package).

        The handshake carries the token like any request. A handshake answered
        with an HTTP error (401, 403, 421, 429...) raises the same ``GafferError``
        as a refused call; gafferd itself refuses after the upgrade (gevent-websocket
        upgrades before the app runs), so there the first message is
        ``{"error": code}`` and the socket closes with 1008, as for an unknown pid.
        """
        path = f"/wstreams/{int(pid)}"
        base = "http://localhost" if self._uds is not None else self._base
        return open_stream_socket(
            "ws" + base.removeprefix("http") + path,
            self.url,
            uds=self._uds,
            ssl_context=self._ssl,
            authorization=self._http.headers.get("Authorization"),
            timeout=timeout,
        )
