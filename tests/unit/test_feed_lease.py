"""The feed lease: one owner releases a feed's subscription, exactly once, however it ends."""

from __future__ import annotations

import gevent
import pytest

from gaffer_gevent.events import EventBus
from gaffer_gevent.feeds import (
    RAW_HEARTBEAT,
    ChunkFormatter,
    Feed,
    Lease,
    event_body,
    open_leases,
    sample_body,
    sampling,
    stream_body,
)
from gaffer_gevent.streams import Stream
from tests.helpers import wait_for


class Counted:
    """A release that counts its calls (a subscription's close, say)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1


def test_every_way_out_releases_once() -> None:
    release, hook = Counted(), Counted()
    lease = Lease("sub", release, "test")
    lease.on_release(hook)
    assert lease in open_leases("test")
    with lease as resource:
        assert resource == "sub"
        lease.release()  # a client that left, while the body still runs
    lease.release()  # the response closing afterwards
    assert (release.calls, hook.calls, lease.released) == (1, 1, True)
    assert lease not in open_leases()


def test_the_context_manager_releases_on_an_exception() -> None:
    release = Counted()
    lease = Lease("sub", release, "test")
    with pytest.raises(ZeroDivisionError), lease:
        _ = 1 / 0
    assert release.calls == 1 and lease.released
    lease.release()
    assert release.calls == 1
    assert lease not in open_leases()


def test_a_hook_added_after_the_release_runs_at_once() -> None:
    lease = Lease("sub", Counted())
    lease.release()
    hook = Counted()
    lease.on_release(hook)
    assert hook.calls == 1


def test_a_failing_hook_keeps_neither_the_release_nor_the_other_hooks_from_running() -> None:
    release, after = Counted(), Counted()
    lease = Lease("sub", release)

    def broken() -> None:
        raise RuntimeError("a hook that fails")

    lease.on_release(broken)
    lease.on_release(after)
    lease.release()
    assert (release.calls, after.calls) == (1, 1)


def test_a_failing_release_still_runs_the_hooks_and_counts_as_released() -> None:
    hook = Counted()

    def broken() -> None:
        raise RuntimeError("a release that fails")

    lease = Lease("sub", broken)
    lease.on_release(hook)
    with pytest.raises(RuntimeError):
        lease.release()
    assert hook.calls == 1 and lease.released
    lease.release()  # not tried again
    assert lease not in open_leases()


def test_a_stream_body_never_started_is_released_by_its_lease() -> None:
    stream = Stream("out")
    sub = stream.subscribe()
    lease = Lease(sub, sub.close, "test")
    body = stream_body(lease, ChunkFormatter(Feed.CONTINUOUS, "out", as_json=False, ids={}), None)
    body.close()  # closing an unstarted generator runs no ``with``: the response's close does
    assert stream.subscriptions == {sub}
    lease.release()
    assert stream.subscriptions == set() and sub.closed


def test_a_stream_body_ends_when_its_lease_is_released_from_another_greenlet() -> None:
    stream = Stream("out")
    sub = stream.subscribe()
    lease = Lease(sub, sub.close, "test")
    body = stream_body(lease, ChunkFormatter(Feed.CONTINUOUS, "out", as_json=False, ids={}), None)
    assert next(body) == RAW_HEARTBEAT
    reader = gevent.spawn(list, body)  # waits for data that never comes
    wait_for(lambda: stream._waiters)
    gevent.spawn(lease.release).join(timeout=5)  # the disconnect watcher, say
    assert reader.get(timeout=5) == []
    assert stream.subscriptions == set() and lease not in open_leases()


def test_an_event_body_closed_mid_feed_leaves_the_bus_without_subscribers() -> None:
    bus = EventBus()
    queue = bus.queue(".")
    lease = Lease(queue, queue.close, "test")
    body = event_body(lease, Feed.CONTINUOUS, None)
    assert next(body) == RAW_HEARTBEAT
    bus.publish("create", name="a")
    assert b'"create"' in next(body)
    body.close()  # the client's write failed: GeneratorExit at the yield
    assert bus.subscriber_count == 0 and lease.released
    bus.close()


def test_a_sample_body_stops_between_rounds_when_released() -> None:
    lease = sampling("test")
    rounds = Counted()

    def samples() -> list[dict[str, int]]:
        rounds()
        return [{"n": rounds.calls}]

    body = sample_body(lease, Feed.CONTINUOUS, "stat", samples, 60.0)
    assert next(body) == RAW_HEARTBEAT
    assert next(body) == b'{"n": 1}\r\n'
    reader = gevent.spawn(list, body)  # now waiting 60 s for the next round
    gevent.idle()
    lease.release()
    assert reader.get(timeout=5) == []
    assert rounds.calls == 1 and lease not in open_leases()
