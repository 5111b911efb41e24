"""The one feed layer: framing, bodies, parameters and the lease that releases a feed.

Process streams, ``/watch``, ``/stats``, ``_logs`` and websockets all take
their feed machinery from here: ``framing`` (what the bytes look like),
``bodies`` (when they are written), ``options`` (what the query asked for),
``lease`` (the one owner that releases a subscription when the client
leaves). The HTTP side (a disconnect watcher, revoked tokens, the Flask
response) is ``api.disconnect``, which only ever asks a lease to release.
"""

from .bodies import event_body, sample_body, sampling, stream_body, stream_longpoll
from .framing import (
    JOIN_LIMIT,
    RAW_HEARTBEAT,
    SSE_HEARTBEAT,
    SSE_PREAMBLE,
    STREAM_HEADERS,
    ChunkFormatter,
    Feed,
    FrameCache,
    event_mimetype,
    frame_cache_for,
    gap_marker,
    heartbeat,
    json_line,
    message,
    preamble,
    sse,
    stream_mimetype,
    writes,
)
from .lease import Lease, open_leases
from .options import (
    DEFAULT_HEARTBEAT,
    StreamOptions,
    parse_heartbeat,
    parse_overflow,
    parse_stat_feed,
    replay_since,
)

__all__ = [
    "DEFAULT_HEARTBEAT", "JOIN_LIMIT", "RAW_HEARTBEAT", "SSE_HEARTBEAT", "SSE_PREAMBLE",
    "STREAM_HEADERS", "ChunkFormatter", "Feed", "FrameCache", "Lease", "StreamOptions",
    "event_body", "event_mimetype", "frame_cache_for", "gap_marker", "heartbeat", "json_line",
    "message", "open_leases", "parse_heartbeat", "parse_overflow", "parse_stat_feed",
    "preamble", "replay_since", "sample_body", "sampling", "sse", "stream_body",
    "stream_longpoll", "stream_mimetype", "writes",
]  # fmt: skip
