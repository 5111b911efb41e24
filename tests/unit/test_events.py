"""Event bus: dotted patterns, publish order, one delivery per subscriber."""

from gaffer_gevent.events import EventBus, matches
from tests.helpers import wait_for


def test_pattern_matching_is_by_whole_segments() -> None:
    assert matches(".", "proc.a.spawn")
    assert matches("spawn", "spawn") and not matches("spawn", "proc.x.spawn")
    assert matches("proc.dummy", "proc.dummy.exit")
    assert not matches("proc.dum", "proc.dummy.exit")
    assert matches("a.b.", "a.b.c") and not matches("a.b", "z.a.b")


def test_events_arrive_in_order_once_and_asynchronously() -> None:
    bus = EventBus()
    seen: list[str] = []
    bus.subscribe("proc", lambda event, payload: seen.append(event))
    bus.publish("create", name="x")
    bus.publish("proc.x.start", name="x")
    bus.publish("proc.x.spawn", name="x", pid=1)
    assert seen == []  # delivered on a later loop iteration
    wait_for(lambda: len(seen) == 2, timeout=5)
    assert seen == ["proc.x.start", "proc.x.spawn"]
    bus.close()


def test_a_failing_listener_does_not_stop_others() -> None:
    bus = EventBus()
    seen: list[str] = []

    def broken(event: str, payload: dict[str, object]) -> None:
        raise RuntimeError("boom")

    bus.subscribe(".", broken)
    bus.subscribe(".", lambda event, payload: seen.append(event))
    bus.publish("create", name="x")
    wait_for(lambda: seen == ["create"], timeout=5)
    bus.close()


def test_queue_is_bounded_and_unsubscribes_on_close() -> None:
    bus = EventBus()
    queue = bus.queue(".", maxsize=3)
    for i in range(5):
        bus.publish("update", name=str(i))
    bus.flush()
    assert queue.dropped == 2
    assert [queue.get(0)[1]["name"] for _ in range(3)] == ["2", "3", "4"]  # type: ignore[index]
    queue.close()
    assert bus.subscriber_count == 0
    bus.close()
