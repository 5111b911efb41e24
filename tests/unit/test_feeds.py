"""Feed framing: standard SSE, and frames shared between the feeds of one stream."""

from collections.abc import Iterator

from gaffer_gevent.feeds import (
    JOIN_LIMIT,
    RAW_HEARTBEAT,
    ChunkFormatter,
    Feed,
    FrameCache,
    Lease,
    gap_marker,
    sse,
    stream_body,
    writes,
)
from gaffer_gevent.streams import Chunk, Gap, Overflow, Stream, Subscription


def test_sse_frames_one_data_line_per_line() -> None:
    assert sse("stdout", "a\nb\n", 7) == b"event: stdout\r\nid: 7\r\ndata: a\r\ndata: b\r\n\r\n"
    assert sse("gap", "{}") == b"event: gap\r\ndata: {}\r\n\r\n"


def test_feeds_of_one_stream_share_frames_and_stay_exact() -> None:
    stream = Stream("out")
    cache = FrameCache()
    first = ChunkFormatter(Feed.EVENTSOURCE, "out", as_json=False, ids={}, cache=cache)
    second = ChunkFormatter(Feed.EVENTSOURCE, "out", as_json=False, ids={}, cache=cache)
    chunk = stream.append(b"hello\n")
    frame = first.frame(chunk)
    assert second.frame(chunk) is frame  # framed once, shared
    assert frame == b"event: out\r\nid: 1\r\ndata: hello\r\n\r\n"


def test_a_newline_that_completes_a_line_sent_alone_is_no_empty_event() -> None:
    """print()'s two writes can be two chunks under load: the event of the first already
    ends the line in a browser, so the lone newline is not an empty event of its own."""
    stream = Stream("out")
    formatter = ChunkFormatter(Feed.EVENTSOURCE, "out", as_json=False, ids={})
    frames = [formatter.frame(stream.append(data)) for data in (b"a", b"\n", b"b", b"\nc\n")]
    assert frames == [
        b"event: out\r\nid: 1\r\ndata: a\r\n\r\n",
        b"",
        b"event: out\r\nid: 3\r\ndata: b\r\n\r\n",
        b"event: out\r\nid: 4\r\ndata: c\r\n\r\n",
    ]
    # A feed starting at the lone newline (Last-Event-ID 1) sees no empty event either.
    late = ChunkFormatter(Feed.EVENTSOURCE, "out", as_json=False, ids={})
    assert late.frame(stream.chunks[1]) == b""


def test_a_character_split_across_chunks_is_never_shared_wrongly() -> None:
    stream = Stream("out")
    cache = FrameCache()
    whole = ChunkFormatter(Feed.EVENTSOURCE, "out", as_json=False, ids={}, cache=cache)
    late = ChunkFormatter(Feed.EVENTSOURCE, "out", as_json=False, ids={}, cache=cache)
    euro = "€".encode()
    head, tail = stream.append(b"price " + euro[:1]), stream.append(euro[1:] + b" 5\n")
    assert whole.frame(head) == b"event: out\r\nid: 1\r\ndata: price \r\n\r\n"
    assert whole.frame(tail) == "event: out\r\nid: 2\r\ndata: € 5\r\n\r\n".encode()
    # a feed that joined at the second chunk sees the broken character replaced
    assert late.frame(tail) == "event: out\r\nid: 2\r\ndata: \ufffd\ufffd 5\r\n\r\n".encode()


def test_frame_cache_is_bounded() -> None:
    cache = FrameCache(size=2)
    for seq in range(5):
        cache.put((seq,), b"x")
    assert cache.get((0,)) is None and cache.get((4,)) == b"x"


def test_frame_cache_is_bounded_by_bytes() -> None:
    cache = FrameCache(size=100, max_bytes=1000)
    for seq in range(10):
        cache.put((seq,), b"x" * 300)
    assert cache.held_bytes == 900
    assert [seq for seq in range(10) if cache.get((seq,))] == [7, 8, 9]
    cache.put((10,), b"y" * 1001)  # bigger than the whole budget: not kept
    assert cache.get((10,)) is None and cache.held_bytes == 900
    cache.put((9,), b"z" * 100)  # replacing a key counts it once
    assert cache.held_bytes == 700


def continuous_body(stream: Stream) -> tuple[Iterator[bytes], Subscription]:
    sub = stream.subscribe(since=0)
    formatter = ChunkFormatter(Feed.CONTINUOUS, "out", as_json=False, ids={})
    return stream_body(Lease(sub, sub.close), formatter, None), sub


def test_a_batch_of_small_chunks_is_one_write() -> None:
    stream = Stream("out")
    for n in range(3):
        stream.append(b"line %d\n" % n)
    body, sub = continuous_body(stream)
    assert next(body) == RAW_HEARTBEAT
    assert next(body) == b"line 0\nline 1\nline 2\n"
    body.close()
    assert sub.closed


def test_big_chunks_are_written_one_by_one_without_a_copy() -> None:
    stream = Stream("out", buffer_size=4 * JOIN_LIMIT)
    chunks = [stream.append(bytes([n]) * JOIN_LIMIT).data for n in range(2)]
    body, _ = continuous_body(stream)
    assert next(body) == RAW_HEARTBEAT
    assert next(body) is chunks[0]  # the stored bytes themselves
    assert next(body) is chunks[1]
    stream.append(b"z")
    assert next(body) == b"z"
    body.close()


# -- plain continuous feeds: gap markers -----------------------------------------------------


def plain() -> ChunkFormatter:
    return ChunkFormatter(Feed.CONTINUOUS, "out", as_json=False, ids={})


def lagging(buffer_size: int, *before: bytes) -> tuple[Stream, Subscription]:
    """A ring bounded by data bytes only, and a cursor at its start after ``before``."""
    stream = Stream("out", buffer_size=buffer_size, chunk_overhead=0)
    for data in before:
        stream.append(data)
    return stream, stream.subscribe(since=stream.last_seq)


def test_a_plain_feed_marks_what_it_skipped_on_a_line_of_its_own() -> None:
    stream, sub = lagging(21)
    for n in range(1, 6):
        stream.append(b"line %d\n" % n)  # 7 bytes: the ring keeps the last 3
    frames = plain().frames(sub.take())
    assert frames == [b"[gaffer: 2 chunks, 14 bytes lost]\n", b"line 3\n", b"line 4\n", b"line 5\n"]
    assert gap_marker(Gap(41, 2768896, 50)) == b"[gaffer: 41 chunks, 2768896 bytes lost]\n"
    assert gap_marker(Gap(3, None, 9)) == b"[gaffer: 3 chunks lost]\n"


def test_a_marker_after_a_cut_line_starts_a_new_line() -> None:
    stream, sub = lagging(14)
    formatter = plain()
    stream.append(b"Password: ")  # a prompt, sent after the hold without its newline
    assert formatter.frames(sub.take()) == [b"Password: "]
    for n in range(1, 4):
        stream.append(b"line %d\n" % n)
    assert formatter.frames(sub.take()) == [
        b"\n[gaffer: 1 chunks, 7 bytes lost]\n", b"line 2\n", b"line 3\n",
    ]  # fmt: skip


def test_the_rest_of_a_line_whose_start_was_lost_is_dropped_and_counted() -> None:
    stream, sub = lagging(12)
    stream.append(b"line 1\n")
    stream.append(b"par")  # a long line, sent in pieces
    stream.append(b"tial\nline 2\n")  # 12 bytes: alone in the ring
    items = sub.take()
    assert [item.starts_line for item in items if isinstance(item, Chunk)] == [False]
    assert plain().frames(items) == [b"[gaffer: 2 chunks, 15 bytes lost]\n", b"line 2\n"]


def test_overflow_close_ends_a_plain_feed_without_a_marker() -> None:
    stream = Stream("out", buffer_size=14, chunk_overhead=0)
    sub = stream.subscribe(overflow=Overflow.CLOSE)
    for n in range(1, 4):
        stream.append(b"line %d\n" % n)
    body = stream_body(Lease(sub, sub.close), plain(), None)
    assert list(body) == [RAW_HEARTBEAT]
    assert sub.closed


def test_small_frames_are_joined_and_big_ones_go_alone() -> None:
    big = b"b" * JOIN_LIMIT
    assert list(writes([b"a", b"", b"c", big, b"d"])) == [b"ac", big, b"d"]
    assert list(writes([b"x" * (JOIN_LIMIT - 1), b"yy"])) == [b"x" * (JOIN_LIMIT - 1), b"yy"]
