"""Pipe readers: a child's output, cut into chunks that end at a newline.

A chunk used to be one pipe read, so a line could be cut anywhere the reader
happened to catch up with the writer: ``print("x")`` writes ``x`` and then
``\\n``, and under load those became two chunks (an empty event in a
browser's EventSource, a blank line in a log view, two halves around a gap).
Now the partial line at the end of a read is held back until the rest of it
comes, for at most ``LINE_HOLD`` seconds or until it fills a whole chunk,
then sent as it is: a prompt without a newline still arrives within a few
milliseconds, and binary output still arrives byte for byte.

The hot path stays a plain read: a read that ends with a newline (a flood of
lines, when the pipe had no more) is the chunk itself; one that ends inside a
line costs one copy of the complete lines it holds.

Each read asks for what the pipe holds (``FIONREAD``), not for a whole chunk:
``os.read(fd, 512 KiB)`` allocates 512 KiB and shrinks it to what came. Once
glibc has freed one such block, its dynamic mmap threshold rises above it and
later ones come from the heap, where each small chunk left behind by a shrink
kept a 512 KiB hole from being reused: gafferd grew from 40 to 74 MiB in 45 s
under a child printing short lines (``bench/flood_rss.py --writer print``)
while Python's own objects stayed flat (tracemalloc).
"""

from __future__ import annotations

import fcntl
import os
import termios
import time
from array import array
from collections.abc import Sequence
from typing import Any

import gevent
from gevent import get_hub
from gevent.hub import Waiter

from .streams import Stream

#: Longest time a partial line is held back waiting for its newline.
LINE_HOLD = 0.005
#: What a read asks for when the pipe says it is empty (to see EOF, or a late write).
PROBE_SIZE = 4096
_COUNT = array("i", [0])


class LineFramer:
    """Cuts the bytes a pipe gives into chunks of whole lines (pure: no I/O, no clock).

    ``max_chunk`` bounds every chunk; a line that long is sent in pieces.
    """

    def __init__(self, max_chunk: int) -> None:
        self.max_chunk = max(1, max_chunk)
        #: The partial last line held back.
        self.pending = b""

    def room(self) -> int:
        """How many bytes to read next, so that pending plus the read fit in one chunk."""
        return self.max_chunk - len(self.pending)

    def feed(self, data: bytes) -> bytes | None:
        """The chunk to send for ``data`` (None: hold it all); keeps the partial last line."""
        pending = self.pending
        if data.endswith(b"\n"):
            self.pending = b""
            return pending + data if pending else data
        cut = data.rfind(b"\n") + 1
        if not cut:  # no newline: the line goes on
            pending = pending + data if pending else data
            if len(pending) >= self.max_chunk:
                self.pending = b""
                return pending
            self.pending = pending
            return None
        self.pending = data[cut:]
        if pending:
            return b"".join((pending, memoryview(data)[:cut]))
        return data[:cut]

    def flush(self) -> bytes:
        """Give up waiting: the held partial line, as it is (b"" if none)."""
        pending, self.pending = self.pending, b""
        return pending


def read_pipe(
    fd: int, streams: Sequence[Stream], chunk_size: int = 65536, hold: float = LINE_HOLD
) -> None:
    """Reader greenlet body: read ``fd`` (non-blocking) to EOF, append line chunks to ``streams``.

    A partial line held at the end (EOF, or the greenlet killed once the child
    is gone) is sent as it is.
    """
    framer = LineFramer(chunk_size)
    hub = get_hub()
    watcher = hub.loop.io(fd, 1)
    held_at = 0.0  # when the partial line now held was read
    expired = False  # it was held long enough: send it unless the next read completes it

    def send(data: bytes) -> None:
        ts = time.time()
        for stream in streams:
            stream.append(data, ts)

    try:
        while True:
            try:
                data = os.read(fd, min(framer.room(), available(fd) or PROBE_SIZE))
            except BlockingIOError:
                if not framer.pending:
                    hub.wait(watcher)
                elif expired:
                    send(framer.flush())
                    expired = False
                else:
                    left = held_at + hold - time.monotonic()
                    # Expired: read once more before giving up, as the rest of the line
                    # may have come in the same loop turn as the timer.
                    expired = left <= 0 or not _readable_within(watcher, left)
                continue
            except OSError:
                break
            if not data:
                break
            expired, was_held = False, bool(framer.pending)
            chunk = framer.feed(data)
            if chunk is not None:
                send(chunk)
            if framer.pending:
                if chunk is not None or not was_held:
                    held_at = time.monotonic()  # a new partial line
                elif time.monotonic() - held_at >= hold:
                    send(framer.flush())  # a long line trickling in: hold it no longer
            # A child that writes faster than we read never makes the read wait:
            # yield once per read so the rest of the daemon keeps running.
            gevent.sleep(0)
    finally:
        watcher.close()
        tail = framer.flush()
        if tail:
            send(tail)


def available(fd: int) -> int:
    """Bytes waiting in the pipe (0 if empty or unknown)."""
    try:
        fcntl.ioctl(fd, termios.FIONREAD, _COUNT)  # no switch before _COUNT is read
    except OSError:
        return 0
    return _COUNT[0]


def _readable_within(watcher: Any, timeout: float) -> bool:
    """Wait until the pipe is readable (True) or ``timeout`` passes (False)."""
    waiter: Waiter[bool] = Waiter()
    timer = get_hub().loop.timer(timeout)
    watcher.start(waiter.switch, True)
    timer.start(waiter.switch, False)
    try:
        return bool(waiter.get())
    finally:
        watcher.stop()
        timer.close()
