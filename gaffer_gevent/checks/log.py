"""A log check (readiness only): the pid is ready at the first output line matching a regex.

It reads the pid's stream ring through a ``Subscription`` from the first chunk, so
a line printed before the check started counts, and a slow check never holds up
the child (the ring is the buffer). The regex sees at most ``MAX_LINE``
characters of each line, and a partial line is kept up to that size only.
"""

from __future__ import annotations

import re

from ..streams import Chunk, Stream

#: Most characters of one line given to the regex.
MAX_LINE = 4096


def first_match(stream: Stream, pattern: re.Pattern[str]) -> str | None:
    """Wait for the first line of ``stream`` that ``pattern`` finds; None if it ends first."""
    sub = stream.subscribe(since=0)
    sub.owner = "readiness check"
    pending = b""
    try:
        while (batch := sub.read()) is not None:
            for item in batch:
                if not isinstance(item, Chunk):
                    pending = b""  # lost chunks: the partial line is broken
                    continue
                *lines, pending = (pending + item.data).split(b"\n")
                for line in lines:
                    text = line[:MAX_LINE].decode("utf-8", "replace")
                    if pattern.search(text):
                        return text
                pending = pending[:MAX_LINE]
            if pending:  # a prompt without a newline yet
                text = pending.decode("utf-8", "replace")
                if pattern.search(text):
                    return text
        return None
    finally:
        sub.close()
