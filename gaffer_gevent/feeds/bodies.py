"""Feed bodies: when a feed writes, for process streams, ``/watch`` and ``/stats`` alike.

Each body holds its ``Lease`` as a context manager: it sends a first byte at
once (pywsgi sends no status line before the first non-empty chunk), waits on
its subscription with the heartbeat as timeout, ends when the subscription
ends (the stream closed, the lease released by a client that left), and its
end releases the lease, whichever way it came. A longpoll is one read under
the lease, answered with the read's position in headers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from gevent.event import Event

from ..events import EventQueue
from ..streams import Chunk, Overflow, Subscription
from .framing import (
    JOIN_LIMIT,
    STREAM_HEADERS,
    ChunkFormatter,
    Feed,
    heartbeat,
    message,
    preamble,
    writes,
)  # fmt: skip
from .lease import Lease

#: Turns an event's payload into the message a feed sends (``/watch`` sends it as it is).
Render = Callable[[str, dict[str, Any]], dict[str, Any]]


def stream_body(
    lease: Lease[Subscription], formatter: ChunkFormatter, beat: float | None
) -> Iterator[bytes]:
    """Body of a continuous or eventsource feed of a process stream."""
    with lease as sub:
        mark_gaps = sub.overflow is not Overflow.CLOSE  # closing says it
        yield preamble(formatter.feed)
        while True:
            batch = sub.read(beat, JOIN_LIMIT)
            if batch is None:
                return
            if not batch:
                yield formatter.heartbeat()
                continue
            yield from writes(formatter.frames(batch, mark_gaps=mark_gaps))


def stream_longpoll(lease: Lease[Subscription], *, replay: bool) -> tuple[bytes, dict[str, str]]:
    """The first chunk read after the request (or every chunk after ``since``/``tail``).

    Returns the body and its headers: ``X-Last-Seq`` (where to go on from),
    and ``X-Gap-Chunks``/``X-Gap-Bytes`` when the replay lost data.
    """
    with lease as sub:
        batch = sub.read(None) or []
    chunks = [item for item in batch if isinstance(item, Chunk)]
    if not replay:
        chunks = chunks[:1]  # gaffer answers with exactly one pipe read
    headers = {**STREAM_HEADERS, "X-Last-Seq": str(sub.last_seq)}
    if chunks:
        headers["X-Last-Seq"] = str(chunks[-1].seq)
    gaps = [item for item in batch if not isinstance(item, Chunk)]
    if gaps:
        headers["X-Gap-Chunks"] = str(sum(g.chunks for g in gaps))
        if all(g.bytes is not None for g in gaps):
            headers["X-Gap-Bytes"] = str(sum(g.bytes or 0 for g in gaps))
    return b"".join(c.data for c in chunks), headers


def event_body(
    lease: Lease[EventQueue], feed: Feed, beat: float | None, render: Render | None = None
) -> Iterator[bytes]:
    """Body of a /watch feed over an event queue (a longpoll ends after one event)."""
    with lease as queue:
        if feed is not Feed.LONGPOLL:
            yield preamble(feed)
        while True:
            item = queue.get(beat if feed is not Feed.LONGPOLL else None)
            if item is None:
                if queue.closed:
                    return
                yield heartbeat(feed)
                continue
            event, payload = item
            yield message(feed, event, render(event, payload) if render else payload)
            if feed is Feed.LONGPOLL:
                return


def sample_body(
    lease: Lease[Event],
    feed: Feed,
    event: str,
    samples: Callable[[], Iterable[Any] | None],
    interval: float,
) -> Iterator[bytes]:
    """Body of a feed of samples taken every ``interval`` (the /stats feeds).

    ``samples`` gives the payloads of one round, taken lazily (one at a time,
    each just before it is sent), or None when nothing is left to sample. The
    lease holds the event that stops the wait between rounds.
    """
    with lease as stop:
        yield preamble(feed)
        while not stop.is_set():
            payloads = samples()
            if payloads is None:
                return
            for payload in payloads:
                yield message(feed, event, payload)
                if feed is Feed.LONGPOLL:
                    return
            stop.wait(interval)


def sampling(what: str) -> Lease[Event]:
    """The lease of a sample feed: releasing it stops the feed between two rounds."""
    stop = Event()
    return Lease(stop, stop.set, what)
