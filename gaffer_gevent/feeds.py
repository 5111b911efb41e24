"""Turn subscriptions into HTTP bodies: longpoll, continuous and eventsource feeds.

Framing is pure (``sse``, ``chunk_json``); the generators wait on a
subscription with the heartbeat as timeout, send a first byte at once (pywsgi
sends no status line before the first non-empty chunk), end when the stream
ends and always release the subscription in ``finally``.
"""

from __future__ import annotations

import codecs
import enum
import json
import re
from collections.abc import Callable, Iterator
from typing import Any
from weakref import WeakKeyDictionary

from .events import EventQueue
from .streams import Chunk, Gap, Item, Stream, Subscription

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
SSE_PREAMBLE = b"retry: 1000\r\n\r\n"
SSE_HEARTBEAT = b":\r\n\r\n"
RAW_HEARTBEAT = b"\n"
#: Batches up to this size go out as one write; bigger ones frame by frame, uncopied.
JOIN_LIMIT = 64 * 1024


class Feed(enum.Enum):
    LONGPOLL = "longpoll"
    CONTINUOUS = "continuous"
    EVENTSOURCE = "eventsource"

    @classmethod
    def parse(cls, value: str | None) -> Feed:
        """Unknown values mean longpoll, as in gaffer."""
        try:
            return cls((value or "longpoll").lower())
        except ValueError:
            return cls.LONGPOLL


def sse(event: str, data: str, event_id: int | None = None) -> bytes:
    """One standard SSE message: event, id, one ``data:`` per line, blank line."""
    lines = _LINE_BREAK.split(data)
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()
    head = f"event: {event}\r\n" + (f"id: {event_id}\r\n" if event_id is not None else "")
    return (head + "".join(f"data: {line}\r\n" for line in lines) + "\r\n").encode()


def json_line(payload: Any) -> bytes:
    return (json.dumps(payload) + "\r\n").encode()


class FrameCache:
    """The framed bytes of recent chunks of one stream, shared by all its feeds.

    With a hundred SSE clients on one process, each chunk would otherwise be
    decoded and framed a hundred times; now it is framed once. Bounded by
    bytes as well as by count: frames are about the size of their chunks, and
    256 frames of 64 KiB chunks held 17 MB per stream (``bench/flood_rss.py``
    saw gafferd creep by that much before the count bound held).
    """

    def __init__(self, size: int = 256, max_bytes: int = 2 * 1024 * 1024) -> None:
        self.size = size
        self.max_bytes = max_bytes
        self.held_bytes = 0
        self._frames: dict[tuple[object, ...], bytes] = {}

    def get(self, key: tuple[object, ...]) -> bytes | None:
        return self._frames.get(key)

    def put(self, key: tuple[object, ...], frame: bytes) -> None:
        if len(frame) > self.max_bytes:
            return  # would evict everything else
        old = self._frames.pop(key, None)
        if old is not None:
            self.held_bytes -= len(old)
        self._frames[key] = frame
        self.held_bytes += len(frame)
        while len(self._frames) > self.size or self.held_bytes > self.max_bytes:
            self.held_bytes -= len(self._frames.pop(next(iter(self._frames))))


_frame_caches: WeakKeyDictionary[Stream, FrameCache] = WeakKeyDictionary()


def frame_cache_for(stream: Stream) -> FrameCache:
    """The stream's shared frames, bounded like its ring buffer (twice: framing adds bytes)."""
    cache = _frame_caches.get(stream)
    if cache is None:
        cache = _frame_caches[stream] = FrameCache(max_bytes=2 * stream.buffer_size)
    return cache


class ChunkFormatter:
    """Frames stream items for one feed; keeps a UTF-8 decoder across chunks."""

    def __init__(
        self,
        feed: Feed,
        label: str,
        *,
        as_json: bool,
        ids: dict[str, int],
        cache: FrameCache | None = None,
    ) -> None:
        self.feed, self.label, self.as_json, self.ids = feed, label, as_json, ids
        self.cache = cache
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def _mid_character(self) -> bool:
        """True while the decoder holds the first bytes of a split UTF-8 character."""
        return bool(self._decoder.getstate()[0])

    def text(self, data: bytes) -> str:
        return self._decoder.decode(data)

    def chunk_json(self, chunk: Chunk) -> dict[str, Any]:
        return {"seq": chunk.seq, "ts": chunk.ts, **self.ids, "label": self.label,
                "data": self.text(chunk.data)}  # fmt: skip

    def frame(self, item: Item) -> bytes:
        if isinstance(item, Gap):
            gap = {"chunks": item.chunks, "bytes": item.bytes, "next_seq": item.next_seq}
            if self.feed is Feed.EVENTSOURCE:
                return sse("gap", json.dumps(gap))
            return json_line({"gap": gap}) if self.as_json else b""
        if self.feed is not Feed.EVENTSOURCE and not self.as_json:
            return item.data
        if self.cache is None or self._mid_character():
            return self._frame_chunk(item)
        # A frame depends only on the chunk when decoding starts and ends on a
        # character boundary; only such frames are shared.
        key = (self.feed, self.as_json, item.seq, item.offset)
        frame = self.cache.get(key)
        if frame is None:
            frame = self._frame_chunk(item)
            if not self._mid_character():
                self.cache.put(key, frame)
        return frame

    def _frame_chunk(self, chunk: Chunk) -> bytes:
        if self.feed is Feed.EVENTSOURCE:
            payload = json.dumps(self.chunk_json(chunk)) if self.as_json else self.text(chunk.data)
            return sse(self.label, payload, chunk.seq)
        return json_line(self.chunk_json(chunk))


def stream_body(
    sub: Subscription, formatter: ChunkFormatter, heartbeat: float | None
) -> Iterator[bytes]:
    """Body of a continuous or eventsource stream feed."""
    sse_feed = formatter.feed is Feed.EVENTSOURCE
    try:
        yield SSE_PREAMBLE if sse_feed else RAW_HEARTBEAT
        while True:
            batch = sub.read(heartbeat)
            if batch is None:
                return
            if not batch:
                yield SSE_HEARTBEAT if sse_feed else RAW_HEARTBEAT
                continue
            frames = [formatter.frame(item) for item in batch]
            if sum(map(len, frames)) <= JOIN_LIMIT:
                frames = [b"".join(frames)]  # small frames: one write for the batch
            for frame in frames:
                if frame:
                    yield frame  # big ones each in its own write: joining would copy them
    finally:
        sub.close()


def event_body(
    queue: EventQueue,
    feed: Feed,
    heartbeat: float | None,
    render: Callable[[str, dict[str, Any]], dict[str, Any]] | None = None,
) -> Iterator[bytes]:
    """Body of a /watch or /stats feed over an event queue (longpoll ends after one)."""
    try:
        if feed is Feed.EVENTSOURCE:
            yield SSE_PREAMBLE
        elif feed is Feed.CONTINUOUS:
            yield RAW_HEARTBEAT
        while True:
            item = queue.get(heartbeat if feed is not Feed.LONGPOLL else None)
            if item is None:
                if queue.closed:
                    return
                yield SSE_HEARTBEAT if feed is Feed.EVENTSOURCE else RAW_HEARTBEAT
                continue
            event, payload = item
            message = render(event, payload) if render else payload
            if feed is Feed.EVENTSOURCE:
                yield sse(event, json.dumps(message))
            else:
                yield json_line(message)
                if feed is Feed.LONGPOLL:
                    return
    finally:
        queue.close()
