"""A feed's query parameters, parsed once for every feed: kind, heartbeat, replay, overflow.

Pure: the views hand over the raw values (``request.args.get(...)``), so the
rules (a ``Last-Event-ID`` header wins over ``since``, ``heartbeat=true`` is
60 s, NaN is refused) hold the same on process streams, ``/watch`` and
``/stats``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import BadValue
from ..limits import MAX_TIMEOUT, ascii_digits, ascii_int, optional_int_of
from ..streams import Overflow
from .framing import Feed

#: Seconds between heartbeats with ``heartbeat=true`` (the default).
DEFAULT_HEARTBEAT = 60.0


def parse_heartbeat(value: str | None) -> float | None:
    """``true`` (default) is 60 s, a number is seconds, ``0``/``false`` disables."""
    value = (value if value is not None else "true").strip().lower()
    if value == "true":
        return DEFAULT_HEARTBEAT
    if value == "false":
        return None
    try:
        seconds = float(value)
    except ValueError:
        raise BadValue(f"heartbeat must be true, false or seconds, not {value!r}") from None
    if not 0 <= seconds <= MAX_TIMEOUT:  # NaN fails every comparison
        raise BadValue(f"heartbeat must be 0 to {MAX_TIMEOUT:g} seconds")
    return seconds or None


def parse_stat_feed(value: str | None) -> Feed | None:
    """Stats default to ``feed=normal``: one reply (None), not a feed."""
    if ("normal" if value is None else value).lower() == "normal":
        return None
    return Feed.parse(value)


def replay_since(args: Mapping[str, str], last_event_id: str | None) -> int | None:
    """Where a replay starts: the ``Last-Event-ID`` header first, then ``since``/``last_event_id``.

    A browser's EventSource reconnects to the very same URL, adding only the
    header: a page that asked for ``?since=0`` must resume after the last event
    it saw, not replay everything again.
    """
    value = (last_event_id or "").strip()
    if value:
        seq = ascii_int(value) if ascii_digits(value) else None
        if seq is None:
            raise BadValue("Last-Event-ID must be a sequence number")
        return seq
    since = optional_int_of(args.get("since"), "since")
    return optional_int_of(args.get("last_event_id"), "last_event_id") if since is None else since


def parse_overflow(value: str | None) -> Overflow:
    try:
        return Overflow("skip" if value is None else value)
    except ValueError:
        raise BadValue("overflow must be skip or close") from None


@dataclass(frozen=True, slots=True)
class StreamOptions:
    """What a process output feed was asked for, parsed in the order errors are reported."""

    feed: Feed
    heartbeat: float | None
    since: int | None
    tail: int | None
    overflow: Overflow
    as_json: bool

    @property
    def replay(self) -> bool:
        """A replay was asked for (a longpoll then answers every chunk after it, not one)."""
        return self.since is not None or self.tail is not None

    @classmethod
    def parse(cls, args: Mapping[str, str], last_event_id: str | None) -> StreamOptions:
        return cls(
            feed=Feed.parse(args.get("feed")),
            heartbeat=parse_heartbeat(args.get("heartbeat")),
            since=replay_since(args, last_event_id),
            tail=optional_int_of(args.get("tail"), "tail"),
            overflow=parse_overflow(args.get("overflow")),
            as_json=args.get("format") == "json",
        )
