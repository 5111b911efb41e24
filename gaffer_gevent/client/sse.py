"""The ``text/event-stream`` wire format, parsed incrementally (what eventsource feeds send)."""

from __future__ import annotations

import re
from typing import NamedTuple

#: CRLF, CR or LF (CRLF first, so it is one line end, not two).
_LINE_END = re.compile(rb"\r\n|\r|\n")


class SSEEvent(NamedTuple):
    """One server-sent event: the ``event`` name, its ``data`` and the last ``id`` seen."""

    event: str
    data: str
    id: str | None = None
    retry: int | None = None


class SSEParser:
    """Incremental ``text/event-stream`` parser following the WHATWG rules.

    Lines end at CRLF, LF or CR (a CR at the end of one chunk and an LF at the
    start of the next are one line end); ``:`` lines are comments; ``data``
    lines are joined with ``\\n``; a blank line dispatches; an event without
    data is not dispatched. Heartbeat newlines therefore produce nothing.
    """

    def __init__(self) -> None:
        self._pending = bytearray()  # the start of a line whose end has not arrived yet
        self._skip_lf = False
        self._first_line = True
        self._event = ""
        self._data: list[str] = []
        self._last_id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Parse a chunk of bytes and return the events it completed.

        Only the new chunk is scanned, once: a long line that arrives in many
        chunks costs time linear in its length, not in its length squared.
        """
        if self._skip_lf and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        self._skip_lf = False
        events: list[SSEEvent] = []
        start = 0
        for end in _LINE_END.finditer(chunk):
            line = chunk[start : end.start()]
            if self._pending:
                self._pending += line
                line = bytes(self._pending)
                self._pending.clear()
            if end.group() == b"\r" and end.end() == len(chunk):
                self._skip_lf = True  # the LF of this CRLF may be in the next chunk
            start = end.end()
            event = self._line(line.decode("utf-8", "replace"))
            if event is not None:
                events.append(event)
        self._pending += chunk[start:]
        return events

    def _line(self, line: str) -> SSEEvent | None:
        if self._first_line:
            self._first_line = False
            line = line.removeprefix("\ufeff")
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self._last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)
        return None

    def _dispatch(self) -> SSEEvent | None:
        event, data = self._event or "message", self._data
        self._event, self._data = "", []
        if not data:
            return None
        return SSEEvent(event, "\n".join(data), self._last_id, self._retry)
