"""The ``text/event-stream`` wire format, parsed incrementally (what eventsource feeds send)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SSEEvent:
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
        self._buffer = b""
        self._skip_lf = False
        self._first_line = True
        self._event = ""
        self._data: list[str] = []
        self._last_id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Parse a chunk of bytes and return the events it completed."""
        if self._skip_lf and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        self._skip_lf = False
        self._buffer += chunk
        events: list[SSEEvent] = []
        start = 0
        while True:
            cr, lf = self._buffer.find(b"\r", start), self._buffer.find(b"\n", start)
            ends = [i for i in (cr, lf) if i >= 0]
            if not ends:
                break
            end = min(ends)
            line = self._buffer[start:end]
            if self._buffer[end : end + 1] == b"\r":
                if end + 1 == len(self._buffer):
                    self._skip_lf = True  # the LF of this CRLF may be in the next chunk
                elif self._buffer[end + 1 : end + 2] == b"\n":
                    end += 1
            start = end + 1
            event = self._line(line.decode("utf-8", "replace"))
            if event is not None:
                events.append(event)
        self._buffer = self._buffer[start:]
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
