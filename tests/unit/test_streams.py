"""Stream and Subscription as pure data structures: scripted appends, exact counts."""

from __future__ import annotations

import time
import tracemalloc

import gevent

from gaffer_gevent.streams import (
    MAX_BATCH_BYTES,
    Chunk,
    Gap,
    Item,
    Overflow,
    Stream,
    Subscription,
)


def ring(size: int) -> Stream:
    """A stream bounded by data bytes alone, so the arithmetic of these tests is exact."""
    return Stream("out", buffer_size=size, chunk_overhead=0)


def chunks_of(items: list[Item] | None) -> list[Chunk]:
    return [item for item in items or [] if isinstance(item, Chunk)]


def gaps_of(items: list[Item] | None) -> list[Gap]:
    return [item for item in items or [] if isinstance(item, Gap)]


def fill(stream: Stream, count: int, size: int = 10) -> None:
    """Append ``count`` chunks of ``size`` bytes: chunk n is ``n`` repeated, newline-ended."""
    for n in range(1, count + 1):
        stream.append(f"{n:0{size - 1}d}\n".encode())


def drain(sub: Subscription) -> list[Item]:
    items: list[Item] = []
    while batch := sub.take():
        items += batch
    return items


def test_eviction_is_by_bytes_not_by_count() -> None:
    stream = ring(100)
    fill(stream, 25)
    assert stream.held_bytes == 100
    assert [c.seq for c in stream.chunks] == list(range(16, 26))
    assert stream.total_bytes == 250


def test_a_chunk_bigger_than_the_buffer_is_still_held_alone() -> None:
    stream = ring(100)
    fill(stream, 3)
    stream.append(b"x" * 500)
    assert [c.seq for c in stream.chunks] == [4]
    assert stream.held_bytes == 500


def test_live_subscription_sees_only_new_chunks() -> None:
    stream = ring(1000)
    fill(stream, 3)
    sub = stream.subscribe()
    assert sub.take() == []
    stream.append(b"new\n")
    (chunk,) = sub.take()
    assert isinstance(chunk, Chunk)
    assert (chunk.seq, chunk.offset, chunk.data) == (4, 30, b"new\n")


def test_since_replays_every_chunk_after_it() -> None:
    stream = ring(1000)
    fill(stream, 10)
    sub = stream.subscribe(since=6)
    assert [c.seq for c in chunks_of(drain(sub))] == [7, 8, 9, 10]
    assert sub.last_seq == 10


def test_since_older_than_the_buffer_reports_an_exact_gap() -> None:
    stream = ring(100)
    fill(stream, 25)  # chunks 16..25 held
    sub = stream.subscribe(since=3)
    items = drain(sub)
    assert items[0] == Gap(chunks=12, bytes=120, next_seq=16)
    assert [c.seq for c in chunks_of(items)] == list(range(16, 26))
    assert (sub.dropped_chunks, sub.dropped_bytes) == (12, 120)


def test_gap_of_a_slow_subscription_counts_bytes_of_uneven_chunks() -> None:
    stream = ring(64)
    sub = stream.subscribe()
    sizes = [5, 17, 3, 40, 9, 30, 12, 25]
    for size in sizes:
        stream.append(b"y" * size)
    held = [c.seq for c in stream.chunks]
    lost = held[0] - 1
    items = drain(sub)
    assert items[0] == Gap(chunks=lost, bytes=sum(sizes[:lost]), next_seq=held[0])
    got = b"".join(c.data for c in chunks_of(items))
    assert len(got) == sum(sizes[lost:])


def test_since_zero_replays_from_the_start() -> None:
    stream = ring(1000)
    fill(stream, 3)
    assert [c.seq for c in chunks_of(drain(stream.subscribe(since=0)))] == [1, 2, 3]


def test_since_from_the_future_goes_live() -> None:
    stream = ring(1000)
    fill(stream, 3)
    sub = stream.subscribe(since=5000)
    assert sub.take() == []
    stream.append(b"next\n")
    assert [c.seq for c in chunks_of(sub.take())] == [4]


def test_since_on_an_empty_stream() -> None:
    stream = Stream("out")
    sub = stream.subscribe(since=7)
    stream.append(b"a")
    assert [c.data for c in chunks_of(sub.take())] == [b"a"]


def test_tail_starts_inside_a_chunk() -> None:
    stream = ring(1000)
    stream.append(b"one\ntwo\nthr")
    stream.append(b"ee\nfour\n")
    items = drain(stream.subscribe(tail=3))
    assert b"".join(c.data for c in chunks_of(items)) == b"two\nthree\nfour\n"
    assert chunks_of(items)[0].offset == 4


def test_tail_larger_than_held_replays_everything_held() -> None:
    stream = ring(1000)
    fill(stream, 4)
    items = drain(stream.subscribe(tail=100))
    assert [c.seq for c in chunks_of(items)] == [1, 2, 3, 4]


def test_tail_whose_chunk_was_evicted_reports_the_gap_without_trimming() -> None:
    stream = ring(30)
    stream.append(b"a1\na2\na3\n")
    sub = stream.subscribe(tail=2)
    fill(stream, 5)  # evicts the first chunk
    items = drain(sub)
    (gap,) = gaps_of(items)
    assert gap.chunks == 3 and gap.bytes == 6 + 20  # "a2\na3\n" and two 10-byte chunks
    assert all(len(c.data) == 10 for c in chunks_of(items))


def test_overflow_close_reports_the_gap_then_ends() -> None:
    stream = ring(50)
    sub = stream.subscribe(overflow=Overflow.CLOSE)
    fill(stream, 10)
    assert sub.read(0) == [Gap(chunks=5, bytes=50, next_seq=6)]
    assert sub.read(0) is None
    assert sub not in stream.subscriptions


def test_overflow_skip_keeps_going_and_counts() -> None:
    stream = ring(50)
    sub = stream.subscribe()
    fill(stream, 10)
    drain(sub)
    fill(stream, 10)
    items = drain(sub)
    assert gaps_of(items) == [Gap(chunks=5, bytes=50, next_seq=16)]
    assert (sub.dropped_chunks, sub.dropped_bytes) == (10, 100)
    assert sub.stats()["dropped_bytes"] == 100


def test_stats_show_the_lag_of_a_cursor() -> None:
    stream = ring(1000)
    sub = stream.subscribe()
    fill(stream, 4)
    stats = sub.stats()
    assert (stats["lag_chunks"], stats["lag_bytes"]) == (4, 40)
    drain(sub)
    assert (sub.stats()["lag_chunks"], sub.stats()["lag_bytes"]) == (0, 0)


def test_read_waits_for_data_and_ends_with_the_stream() -> None:
    stream = Stream("out")
    sub = stream.subscribe()
    assert sub.read(0.01) == []
    gevent.spawn_later(0.01, stream.append, b"late")
    assert [c.data for c in chunks_of(sub.read(5))] == [b"late"]
    gevent.spawn_later(0.01, stream.close)
    assert sub.read(5) is None


def test_closing_a_subscription_wakes_its_reader() -> None:
    stream = Stream("out")
    sub = stream.subscribe()
    reader = gevent.spawn(sub.read, 30)
    gevent.sleep(0)
    sub.close()
    assert reader.get(timeout=5) is None


def test_batches_are_bounded_but_never_empty() -> None:
    stream = ring(10 * MAX_BATCH_BYTES)
    for _ in range(3):
        stream.append(b"z" * MAX_BATCH_BYTES)  # each one fills a default batch
    sub = stream.subscribe(since=0)
    assert len(sub.take(max_bytes=1000)) == 1
    assert len(sub.take()) == 1
    assert len(sub.take(max_bytes=10**9)) == 1


def test_sinks_see_every_chunk_synchronously() -> None:
    stream = ring(10)
    seen: list[int] = []
    stream.sinks.append(lambda chunk: seen.append(chunk.seq))
    fill(stream, 5)
    assert seen == [1, 2, 3, 4, 5]


def test_end_offset_of_evicted_chunks_is_remembered() -> None:
    stream = ring(20)
    fill(stream, 10)
    assert stream.end_offset(0) == 0
    assert stream.end_offset(3) == 30
    assert stream.end_offset(10) == 100
    assert stream.end_offset(99) == 100


def test_stats_count_a_loss_the_cursor_has_not_taken_yet() -> None:
    """A consumer stuck in a socket write takes nothing; its counters must still move."""
    stream = ring(50)
    sub = stream.subscribe()
    fill(stream, 10)
    stats = sub.stats()
    assert (stats["dropped_chunks"], stats["dropped_bytes"]) == (5, 50)
    assert stream.dropped_bytes == 50
    drain(sub)
    assert (sub.stats()["dropped_chunks"], sub.stats()["dropped_bytes"]) == (5, 50)


def test_wait_changed_wakes_every_waiter_and_leaves_none_registered() -> None:
    stream = Stream("out")
    waiters = [gevent.spawn(stream.wait_changed, 30) for _ in range(50)]
    gevent.sleep(0)
    assert len(stream._waiters) == 50
    stream.append(b"x")
    assert [w.get(timeout=5) for w in waiters] == [True] * 50
    assert not stream._waiters


def test_wait_changed_times_out_and_a_later_wake_does_not_switch_in() -> None:
    stream = Stream("out")
    assert stream.wait_changed(0.01) is False
    assert not stream._waiters
    stream.append(b"x")
    gevent.sleep(0.02)  # a stale wake-up would switch in here and break the sleep
    assert stream.wait_changed(0) is False


def test_a_timeout_and_a_chunk_in_the_same_loop_turn_resume_once() -> None:
    stream = Stream("out")
    results = []

    def reader() -> None:
        results.append(stream.wait_changed(0))  # its timer is due on the next loop turn
        started = time.monotonic()
        gevent.sleep(0.02)  # a second resume would switch in here and cut the sleep short
        results.append(time.monotonic() - started)

    worker = gevent.spawn(reader)
    gevent.sleep(0)
    stream.append(b"x")  # wakes it in the same turn as its timer
    worker.join(timeout=5)
    assert worker.successful(), worker.exception
    assert len(results) == 2 and results[1] >= 0.019  # either wake may win; only one resumes
    assert not stream._waiters


def test_a_killed_waiter_leaves_nothing_registered() -> None:
    stream = Stream("out")
    waiter = gevent.spawn(stream.wait_changed, 30)
    gevent.sleep(0)
    assert len(stream._waiters) == 1
    waiter.kill(block=True, timeout=5)
    assert not stream._waiters


def test_wake_ups_without_data_do_not_postpone_the_timeout() -> None:
    """Other feeds coming and going wake every reader of a stream; a reader's heartbeat
    must still come after its timeout, not after the churn stops."""
    stream = Stream("out")
    sub = stream.subscribe()
    churning = True

    def churn() -> None:
        while churning:
            stream.subscribe().close()  # wakes every waiting reader, with no data
            gevent.sleep(0.02)

    churner = gevent.spawn(churn)
    try:
        reader = gevent.spawn(sub.read, 0.2)
        assert reader.get(timeout=2) == []  # the churn would go on for ever
    finally:
        churning = False
        churner.join(timeout=5)


def test_a_read_timer_is_reused_while_the_timeout_stays_the_same() -> None:
    stream = Stream("out")
    sub = stream.subscribe()
    assert sub.read(0.001) == []
    timer = sub._timer
    assert sub.read(0.001) == [] and sub._timer is timer
    assert sub.read(0.002) == [] and sub._timer is not timer


def test_a_ring_of_tiny_chunks_is_bounded_in_memory_not_only_in_data() -> None:
    """A child printing short lines makes chunks of a few bytes: their objects count too."""
    size = 256 * 1024
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        stream = Stream("out", buffer_size=size)
        for n in range(100_000):
            stream.append(b"%d" % n if n % 2 else b"\n")  # print(): the text, then the newline
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert stream.held_bytes + stream.chunk_overhead * len(stream.chunks) <= size
    assert used < 1.5 * size  # the ring, its deque and its 32 KiB gap index


def test_batches_count_chunk_overhead_too() -> None:
    stream = Stream("out")
    for _ in range(100):
        stream.append(b"x")
    sub = stream.subscribe(since=0)
    assert len(sub.take(max_bytes=10 * (1 + stream.chunk_overhead))) == 10
