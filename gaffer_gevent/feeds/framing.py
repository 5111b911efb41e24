"""Feed framing, pure: how chunks, events and gaps look on a longpoll, continuous or SSE feed.

Every byte a feed writes is decided here: the SSE messages (``sse``), the
JSON lines, the preamble sent at once (pywsgi sends no status line before the
first non-empty chunk), the heartbeats and the gap notices. ``bodies`` decides
when to write them.

A plain continuous feed is the child's bytes themselves, so where it skipped
data for a slow client it writes a marker line, ``[gaffer: 41 chunks, 2768896
bytes lost]``, always on a line of its own: a line cut by the loss is ended
before it, and the rest of a line whose start was lost is dropped after it
(and counted in it), so every other line is one the child wrote.
"""

from __future__ import annotations

import codecs
import enum
import json
import re
from collections.abc import Iterator
from typing import Any
from weakref import WeakKeyDictionary

from ..streams import Chunk, Gap, Item, Stream

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
SSE_PREAMBLE = b"retry: 1000\r\n\r\n"
SSE_HEARTBEAT = b":\r\n\r\n"
RAW_HEARTBEAT = b"\n"
#: Frames are joined into writes of up to this size; bigger ones go out alone, uncopied.
#: Also the size of a feed's batches: a client that stopped reading holds one batch.
JOIN_LIMIT = 64 * 1024
#: Headers of every feed reply: never cached, never buffered by a proxy (nginx honours the second).
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


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


def preamble(feed: Feed) -> bytes:
    """The first bytes of a continuous or eventsource feed, sent before anything happens."""
    return SSE_PREAMBLE if feed is Feed.EVENTSOURCE else RAW_HEARTBEAT


def heartbeat(feed: Feed) -> bytes:
    """What an idle feed writes every heartbeat interval (a write is how a dead client shows)."""
    return SSE_HEARTBEAT if feed is Feed.EVENTSOURCE else RAW_HEARTBEAT


def message(feed: Feed, event: str, payload: Any) -> bytes:
    """One event (a /watch event, a /stats sample) as the feed frames it."""
    return sse(event, json.dumps(payload)) if feed is Feed.EVENTSOURCE else json_line(payload)


def event_mimetype(feed: Feed) -> str:
    """The content type of a /watch or /stats feed."""
    return "text/event-stream" if feed is Feed.EVENTSOURCE else "application/json"


def stream_mimetype(feed: Feed, *, as_json: bool) -> str:
    """The content type of a process output feed (its bytes, or ``format=json`` lines)."""
    if feed is Feed.EVENTSOURCE:
        return "text/event-stream"
    return "application/x-ndjson" if as_json else "application/octet-stream"


def sse(event: str, data: str, event_id: int | None = None) -> bytes:
    """One standard SSE message: event, id, one ``data:`` per line, blank line."""
    lines = _LINE_BREAK.split(data)
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()
    head = f"event: {event}\r\n" + (f"id: {event_id}\r\n" if event_id is not None else "")
    return (head + "".join(f"data: {line}\r\n" for line in lines) + "\r\n").encode()


def json_line(payload: Any) -> bytes:
    return (json.dumps(payload) + "\r\n").encode()


def gap_marker(gap: Gap, extra_bytes: int = 0) -> bytes:
    """The line a plain continuous feed writes where it lost data (``bytes`` only if known)."""
    if gap.bytes is None:
        return b"[gaffer: %d chunks lost]\n" % gap.chunks
    return b"[gaffer: %d chunks, %d bytes lost]\n" % (gap.chunks, gap.bytes + extra_bytes)


class FrameCache:
    """The framed bytes of recent chunks of one stream, shared by all its feeds.

    With a hundred SSE clients on one process, each chunk would otherwise be
    decoded and framed a hundred times; now it is framed once. Bounded by
    bytes as well as by count: frames are about the size of their chunks, so a
    count alone would let big chunks hold many megabytes per stream.
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
        #: Plain feeds: the last bytes sent did not end a line.
        self._line_open = False

    @property
    def plain(self) -> bool:
        """The child's bytes as they are (a continuous feed without JSON)."""
        return self.feed is not Feed.EVENTSOURCE and not self.as_json

    def heartbeat(self) -> bytes:
        if self.feed is not Feed.EVENTSOURCE:
            self._line_open = False
        return heartbeat(self.feed)

    def _mid_character(self) -> bool:
        """True while the decoder holds the first bytes of a split UTF-8 character."""
        return bool(self._decoder.getstate()[0])

    def text(self, data: bytes) -> str:
        return self._decoder.decode(data)

    def chunk_json(self, chunk: Chunk) -> dict[str, Any]:
        return {"seq": chunk.seq, "ts": chunk.ts, **self.ids, "label": self.label,
                "data": self.text(chunk.data)}  # fmt: skip

    def frames(self, batch: list[Item], *, mark_gaps: bool = True) -> list[bytes]:
        """The frames of a batch, in order; ``mark_gaps=False`` leaves plain gaps unmarked."""
        if not self.plain:
            return [self.frame(item) for item in batch]
        frames: list[bytes] = []
        gap: Gap | None = None
        for item in batch:
            if isinstance(item, Gap):
                gap = item if mark_gaps else None
                continue
            data = item.data
            if gap is not None:
                # The first chunk after a gap may go on with a line whose start was lost.
                cut = 0 if item.starts_line else data.find(b"\n") + 1
                frames.append(self._marker(gap, cut))
                data, gap = (data[cut:] if cut else data), None
            if data:
                frames.append(data)
                self._line_open = not data.endswith(b"\n")
        if gap is not None:
            frames.append(self._marker(gap))
        return frames

    def _marker(self, gap: Gap, extra_bytes: int = 0) -> bytes:
        marker = gap_marker(gap, extra_bytes)
        if self._line_open:
            self._line_open = False
            return b"\n" + marker  # never in the middle of a line
        return marker

    def frame(self, item: Item) -> bytes:
        if isinstance(item, Gap):
            gap = {"chunks": item.chunks, "bytes": item.bytes, "next_seq": item.next_seq}
            if self.feed is Feed.EVENTSOURCE:
                return sse("gap", json.dumps(gap))
            return json_line({"gap": gap}) if self.as_json else self._marker(item)
        if self.plain:
            self._line_open = not item.data.endswith(b"\n")
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
            if self.as_json:
                return sse(self.label, json.dumps(self.chunk_json(chunk)), chunk.seq)
            text = self.text(chunk.data)
            if not chunk.starts_line:
                # The chunk before ended mid-line (its newline came later than the reader
                # waits) and went out as an event, which ends a line in a browser: the
                # newline that completes it would arrive as an empty event.
                text = _without_leading_break(text)
                if not text:
                    return b""
            return sse(self.label, text, chunk.seq)
        return json_line(self.chunk_json(chunk))


def _without_leading_break(text: str) -> str:
    if text.startswith("\r\n"):
        return text[2:]
    return text[1:] if text.startswith(("\n", "\r")) else text


def writes(frames: list[bytes]) -> Iterator[bytes]:
    """Small frames joined into writes of up to ``JOIN_LIMIT``; big ones alone (no copy)."""
    group: list[bytes] = []
    size = 0
    for frame in frames:
        if size + len(frame) > JOIN_LIMIT and group:
            yield b"".join(group)
            group, size = [], 0
        if len(frame) >= JOIN_LIMIT:
            yield frame
        elif frame:
            group.append(frame)
            size += len(frame)
    if group:
        yield b"".join(group)
