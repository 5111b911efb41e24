"""Output streams: one ring buffer per label, read by cursors that never block the child.

Every chunk (whole lines read from a pipe, see ``reader``) gets a sequence
number and goes into a ring buffer bounded by bytes, each chunk counting its
data plus ``CHUNK_OVERHEAD`` for its objects: a child printing short lines
makes many small chunks, and a 1 MiB ring of 7-byte chunks held 28 MiB of
Python objects. A ``Subscription`` is only a cursor into that ring,
so the daemon's memory does not grow with the number or the slowness of
consumers. A consumer that falls further behind than the ring holds is dealt
with by a named overflow policy:

* ``skip`` (default): jump to the oldest chunk still held and report a ``Gap``
  (chunks and bytes lost) before it;
* ``close``: report the ``Gap`` and end the subscription.

Waking consumers costs O(1) per chunk for the reader: the waiting consumers
are handed to one hub callback that resumes each in turn; each awakened
consumer then takes every chunk available in one batch, so a busy stream
sends several chunks per write.
"""

from __future__ import annotations

import enum
import time
from array import array
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from gevent import get_hub
from gevent.hub import Waiter

DEFAULT_BUFFER_SIZE = 1024 * 1024
#: Most bytes handed to a consumer in one batch (keeps single writes reasonable).
MAX_BATCH_BYTES = 1024 * 1024
#: What a chunk costs beyond its data: the Chunk, its bytes' header, its float and ints and
#: its ring slot (tracemalloc: 28 MiB for 161,000 chunks of 6.5 bytes on average).
CHUNK_OVERHEAD = 176
#: How many evicted chunks' end offsets are remembered to size gaps exactly.
_EVICTED_INDEX = 4096


class Overflow(enum.Enum):
    SKIP = "skip"
    CLOSE = "close"


@dataclass(slots=True, frozen=True)
class Chunk:
    """Bytes read from a pipe: ``offset`` is the number of bytes the stream carried before it.

    ``starts_line``: the chunk before it ended with a newline (or there was none).
    """

    seq: int
    offset: int
    ts: float
    data: bytes
    starts_line: bool = True


@dataclass(slots=True, frozen=True)
class Gap:
    """Data a consumer will never see: it fell behind the ring buffer.

    ``bytes`` is None when the loss is too old to size exactly.
    """

    chunks: int
    bytes: int | None
    next_seq: int


Item = Chunk | Gap


class Stream:
    """The output of one label of one process."""

    def __init__(
        self,
        label: str,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
        chunk_overhead: int = CHUNK_OVERHEAD,
    ) -> None:
        self.label = label
        self.buffer_size = buffer_size
        self.chunk_overhead = chunk_overhead
        self.chunks: deque[Chunk] = deque()
        #: Data bytes held (the ring's bound also counts ``chunk_overhead`` per chunk).
        self.held_bytes = 0
        self.total_bytes = 0
        #: Bytes its consumers lost so far, reported or not (monotonic: for ``/metrics``).
        self.lost_bytes = 0
        self.last_seq = 0
        self.closed = False
        self.subscriptions: set[Subscription] = set()
        self.sinks: list[Callable[[Chunk], None]] = []
        #: Consumers waiting for the next change, each on its own one-shot waiter.
        self._waiters: dict[Waiter[bool], None] = {}
        #: End offsets of evicted chunks (32 KiB), made at the first eviction: most
        #: streams never fill their ring, and a daemon may hold hundreds of them.
        self._evicted_end: array[int] | None = None
        self._line_open = False  # the last chunk did not end with a newline

    # -- producer side ------------------------------------------------------

    def append(self, data: bytes, ts: float | None = None) -> Chunk:
        """Store one chunk, evict old ones past the byte bound, wake consumers."""
        self.last_seq += 1
        chunk = Chunk(self.last_seq, self.total_bytes, time.time() if ts is None else ts, data,
                      not self._line_open)  # fmt: skip
        self._line_open = not data.endswith(b"\n")
        chunks = self.chunks
        chunks.append(chunk)
        self.total_bytes += len(data)
        self.held_bytes += len(data)
        overhead = self.chunk_overhead
        while self.held_bytes + overhead * len(chunks) > self.buffer_size and len(chunks) > 1:
            old = self.chunks.popleft()
            self.held_bytes -= len(old.data)
            if self._evicted_end is None:
                self._evicted_end = array("q", [-1]) * _EVICTED_INDEX
            self._evicted_end[old.seq % _EVICTED_INDEX] = old.offset + len(old.data)
        for sink in self.sinks:
            sink(chunk)
        self._wake()
        return chunk

    def close(self) -> None:
        """End of stream: consumers finish what is buffered, then end."""
        if not self.closed:
            self.closed = True
            self._wake()

    def _wake(self) -> None:
        if self._waiters:
            waiters, self._waiters = self._waiters, {}
            get_hub().loop.run_callback(_resume_all, waiters)

    # -- consumer side ------------------------------------------------------

    @property
    def first_seq(self) -> int:
        """The oldest sequence number still held (last_seq + 1 when empty)."""
        return self.chunks[0].seq if self.chunks else self.last_seq + 1

    def end_offset(self, seq: int) -> int | None:
        """Byte offset just after chunk ``seq``, if still known."""
        if seq <= 0:
            return 0
        if seq >= self.last_seq:
            return self.total_bytes
        if seq >= self.first_seq:
            return self.chunks[seq - self.first_seq].offset + len(
                self.chunks[seq - self.first_seq].data
            )
        if self._evicted_end is not None and self.first_seq - seq <= _EVICTED_INDEX:
            value = self._evicted_end[seq % _EVICTED_INDEX]
            return None if value < 0 else value
        return None

    def start_offset(self, seq: int) -> int:
        """Byte offset where held chunk ``seq`` starts (the stream's end past the last one)."""
        if self.first_seq <= seq <= self.last_seq:
            return self.chunks[seq - self.first_seq].offset
        return self.total_bytes

    def tail_start(self, lines: int) -> tuple[int, int]:
        """Where the last ``lines`` lines start: (seq, bytes to skip in that chunk)."""
        if lines <= 0 or not self.chunks:
            return self.last_seq + 1, 0
        newlines = 0
        for chunk in reversed(self.chunks):
            data = chunk.data
            end = (
                len(data) - 1 if chunk.seq == self.last_seq and data.endswith(b"\n") else len(data)
            )
            pos = end
            while True:
                pos = data.rfind(b"\n", 0, pos)
                if pos < 0:
                    break
                newlines += 1
                if newlines == lines:
                    return chunk.seq, pos + 1
        return self.first_seq, 0

    def subscribe(
        self,
        *,
        since: int | None = None,
        tail: int | None = None,
        overflow: Overflow = Overflow.SKIP,
    ) -> Subscription:
        """A cursor: live by default, or replaying after seq ``since`` / the last ``tail`` lines."""
        sub = Subscription(self, overflow)
        if tail is not None:
            sub.next_seq, sub._skip_bytes = self.tail_start(tail)
            sub.next_offset = self.start_offset(sub.next_seq) + sub._skip_bytes
        elif since is not None:
            # An id from the future (e.g. a browser reconnecting to a restarted daemon,
            # whose sequence numbers start again at 1) means "live", not "after a
            # chunk that may never come".
            since = min(max(since, 0), self.last_seq)
            sub.next_seq = since + 1
            sub.next_offset = self.end_offset(since)
        else:
            sub.next_seq = self.last_seq + 1
            sub.next_offset = self.total_bytes
        self.subscriptions.add(sub)
        return sub

    def wait_changed(self, timeout: float | None, timer: Any = None) -> bool:
        """Wait until the stream changes (True) or ``timeout`` passes (False).

        Each wait has its own ``Waiter``, so a wake-up that comes late (the
        timer and a chunk in the same loop turn) finds nobody waiting on it and
        switches nowhere. ``timer``, if given, is a libev timer whose repeat is
        ``timeout``, re-armed here instead of making a new one. This replaces
        ``Event.wait(timeout)``, which built a pure-Python ``Timeout`` per call
        and unlinked each waiter from a shared list, quadratic in subscribers
        (39 us per wake-up with 3,000 of them, 6 us now).
        """
        waiter: Waiter[bool] = Waiter()
        self._waiters[waiter] = None
        one_off = timer is None and timeout is not None
        if one_off:
            timer = get_hub().loop.timer(max(timeout or 0.0, 0.0))
            timer.start(waiter.switch, False)
        elif timer is not None:
            timer.again(waiter.switch, False)
        try:
            return bool(waiter.get())
        finally:
            if one_off:
                timer.close()
            elif timer is not None:
                timer.stop()  # kept for the next wait
            self._waiters.pop(waiter, None)

    @property
    def dropped_bytes(self) -> int:
        return sum(s.dropped_bytes + s.unnoticed_loss()[1] for s in self.subscriptions)

    @property
    def dropped_bytes_total(self) -> int:
        """Every byte any consumer ever lost, including consumers gone since."""
        return self.lost_bytes + sum(s.unnoticed_loss()[1] for s in self.subscriptions)


class Subscription:
    """One consumer's cursor into a stream."""

    def __init__(self, stream: Stream, overflow: Overflow = Overflow.SKIP) -> None:
        self.stream = stream
        self.overflow = overflow
        self.next_seq = stream.last_seq + 1
        self.next_offset: int | None = stream.total_bytes
        self.dropped_chunks = 0
        self.dropped_bytes = 0
        self.closed = False
        #: Who reads this cursor (a feed, a log file), shown by the debug endpoint.
        self.owner = ""
        self._skip_bytes = 0
        self._timer: Any = None
        self._timer_after = 0.0

    @property
    def last_seq(self) -> int:
        """The sequence number of the last chunk handed out (0 before any)."""
        return self.next_seq - 1

    @property
    def at_end(self) -> bool:
        return self.closed or (self.stream.closed and self.next_seq > self.stream.last_seq)

    def take(self, max_bytes: int = MAX_BATCH_BYTES) -> list[Item]:
        """What is available now (without waiting), a gap first if chunks were lost.

        At most ``max_bytes``, chunks counted with their overhead as in the ring, but
        always at least one chunk.
        """
        if self.closed:
            return []
        stream = self.stream
        items: list[Item] = []
        first = stream.first_seq
        if self.next_seq < first:
            lost = first - self.next_seq
            first_offset = stream.chunks[0].offset if stream.chunks else stream.total_bytes
            lost_bytes = None if self.next_offset is None else first_offset - self.next_offset
            self.dropped_chunks += lost
            self.dropped_bytes += lost_bytes or 0
            stream.lost_bytes += lost_bytes or 0
            items.append(Gap(lost, lost_bytes, first))
            self.next_seq, self.next_offset = first, first_offset
            self._skip_bytes = 0  # the tail's first chunk is gone: nothing left to trim
            if self.overflow is Overflow.CLOSE:
                self.close()
                return items
        size = 0
        index = self.next_seq - first
        chunks = stream.chunks
        overhead = stream.chunk_overhead
        while index < len(chunks) and (size < max_bytes or not items):
            chunk = chunks[index]
            if self._skip_bytes:
                chunk = Chunk(chunk.seq, chunk.offset + self._skip_bytes, chunk.ts,
                              chunk.data[self._skip_bytes:])  # fmt: skip
                self._skip_bytes = 0
            items.append(chunk)
            size += len(chunk.data) + overhead
            index += 1
            self.next_seq = chunk.seq + 1
            self.next_offset = chunk.offset + len(chunk.data)
        return items

    def read(
        self, timeout: float | None = None, max_bytes: int = MAX_BATCH_BYTES
    ) -> list[Item] | None:
        """Wait up to ``timeout`` for data: a batch, [] on timeout, None at end of stream."""
        deadline = None if timeout is None else time.monotonic() + timeout
        timer = None if timeout is None else self._timer_for(timeout)
        while True:
            if self.at_end:
                return None
            items = self.take(max_bytes)
            if items:
                return items
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return []
            self.stream.wait_changed(remaining, timer)
            timer = None  # woken without data: wait again for exactly what is left

    def _timer_for(self, timeout: float) -> Any:
        """A timer for the first wait of each read, kept: a feed reads with the same heartbeat."""
        if self._timer is None or self._timer_after != timeout:
            self._timer = get_hub().loop.timer(timeout, timeout)
            self._timer_after = timeout
        return self._timer

    def __iter__(self) -> Iterator[Item]:
        while (batch := self.read()) is not None:
            yield from batch

    def close(self) -> None:
        if not self.closed:
            self.stream.lost_bytes += self.unnoticed_loss()[1]  # it will never take it now
            self.closed = True
            self.stream.subscriptions.discard(self)
            self.stream._wake()  # a feed waiting on this cursor returns at once

    def unnoticed_loss(self) -> tuple[int, int]:
        """Chunks and bytes already evicted past this cursor that ``take`` has not reported yet.

        A consumer stuck in a socket write takes nothing, so its counters would
        stay at 0 while it loses everything; the debug view adds this in.
        """
        first = self.stream.first_seq
        if self.closed or self.next_seq >= first:
            return 0, 0
        first_offset = self.stream.start_offset(first)
        lost_bytes = 0 if self.next_offset is None else first_offset - self.next_offset
        return first - self.next_seq, lost_bytes

    def stats(self) -> dict[str, Any]:
        """Where this cursor is and what it lost (``lag_*``: held but not yet taken)."""
        stream = self.stream
        pending_chunks, pending_bytes = self.unnoticed_loss()
        lag_chunks = max(0, stream.last_seq - max(self.next_seq, stream.first_seq) + 1)
        start = max(self.next_offset or 0, stream.start_offset(stream.first_seq))
        return {
            "label": stream.label,
            "owner": self.owner,
            "next_seq": self.next_seq,
            "lag_chunks": lag_chunks,
            "lag_bytes": max(0, stream.total_bytes - start) if lag_chunks else 0,
            "overflow": self.overflow.value,
            "dropped_chunks": self.dropped_chunks + pending_chunks,
            "dropped_bytes": self.dropped_bytes + pending_bytes,
        }


def _resume_all(waiters: dict[Waiter[bool], None]) -> None:
    """Hub callback: resume each consumer in turn (one that stopped waiting is skipped)."""
    for waiter in waiters:
        waiter.switch(True)
