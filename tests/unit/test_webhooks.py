"""WebhookDispatcher against real local HTTP receivers (in this process, under gevent)."""

import json
import socket
import time
from collections.abc import Iterator

import pytest
from gevent.pywsgi import WSGIServer

from gaffer_gevent.events import EventBus
from gaffer_gevent.webhooks import WebhookDispatcher

from ..helpers import wait_for


class Receiver:
    """A WSGI app recording each POST; ``/status/<code>`` answers that status."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str, dict]] = []
        self.server = WSGIServer(("127.0.0.1", 0), self.app, log=None, error_log=None)
        self.server.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.fail_first: set[str] = set()

    def app(self, environ, start_response):
        path = environ["PATH_INFO"]
        body = environ["wsgi.input"].read()
        self.received.append((path, environ.get("CONTENT_TYPE", ""), json.loads(body)))
        status = "200 OK"
        if path.startswith("/status/"):
            status = f"{path.rsplit('/', 1)[1]} X"
        elif path in self.fail_first:
            self.fail_first.discard(path)
            status = "503 Busy"
        start_response(status, [("Content-Type", "text/plain")])
        return [b"ok"]

    def events(self, path: str) -> list[str]:
        return [payload["event"] for p, _, payload in self.received if p == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.stop(timeout=1)


@pytest.fixture
def hanging_url() -> Iterator[str]:
    """Accepts connections (kernel backlog) and never answers them."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
    sock.close()


@pytest.fixture
def dead_url() -> str:
    """A port nothing listens on."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/hook"


@pytest.fixture
def bus() -> Iterator[EventBus]:
    b = EventBus()
    yield b
    b.close()


def test_posts_matching_events_as_json_by_exact_name(bus, receiver):
    hooks = [
        ("create", f"{receiver.url}/create"),
        ("proc.dummy.spawn", f"{receiver.url}/spawn"),
        ("proc.dummy", f"{receiver.url}/never"),  # no prefix matching (spec 10)
        (".", f"{receiver.url}/all"),
    ]
    dispatcher = WebhookDispatcher(bus, hooks)
    dispatcher.start()
    try:
        bus.publish("create", name="dummy")
        bus.publish("proc.dummy.spawn", name="dummy", pid=1, os_pid=42, detached=False)
        bus.publish("proc.dummy.exit", name="dummy", pid=1)
        bus.publish("spawn", name="dummy", pid=1, os_pid=42, detached=False)
        wait_for(lambda: dispatcher.delivered == 6)
    finally:
        dispatcher.stop(1.0)  # flushes: a wrong extra delivery would be counted by now
    assert (dispatcher.delivered, dispatcher.failed, dispatcher.dropped) == (6, 0, 0)
    assert receiver.events("/create") == ["create"]
    assert receiver.events("/spawn") == ["proc.dummy.spawn"]
    assert receiver.events("/never") == []
    assert receiver.events("/all") == ["create", "proc.dummy.spawn", "proc.dummy.exit", "spawn"]
    assert {ctype for _, ctype, _ in receiver.received} == {"application/json"}
    spawn = next(body for path, _, body in receiver.received if path == "/spawn")
    assert spawn == {
        "event": "proc.dummy.spawn", "name": "dummy", "pid": 1, "os_pid": 42, "detached": False,
    }  # fmt: skip


def test_hanging_and_dead_receivers_block_neither_the_bus_nor_other_hooks(
    bus, receiver, hanging_url, dead_url
):
    hooks = [(".", hanging_url), (".", dead_url), (".", f"{receiver.url}/good")]
    dispatcher = WebhookDispatcher(bus, hooks, timeout=0.3, retries=2, backoff=0.05)
    dispatcher.start()
    seen: list[tuple[str, float]] = []
    bus.subscribe(".", lambda event, payload: seen.append((event, time.monotonic())))
    try:
        started = time.monotonic()
        for n in range(3):
            bus.publish("create", name=f"t{n}")
        wait_for(lambda: len(seen) == 3, timeout=1.0)
        assert seen[-1][1] - started < 0.5
        # The healthy receiver gets everything long before the hanging one times out once.
        wait_for(lambda: len(receiver.events("/good")) == 3, timeout=1.0)
        assert time.monotonic() - started < 1.0
        # Each bad receiver: 3 attempts per event, then the event is dropped.
        wait_for(lambda: dispatcher.failed == 6, timeout=15.0)
        assert (dispatcher.delivered, dispatcher.dropped) == (3, 0)
    finally:
        dispatcher.stop(0.5)


def test_retries_server_errors_but_not_refusals(bus, receiver):
    receiver.fail_first.add("/flaky")
    hooks = [("create", f"{receiver.url}/flaky"), ("create", f"{receiver.url}/status/400")]
    dispatcher = WebhookDispatcher(bus, hooks, retries=3, backoff=0.01)
    dispatcher.start()
    try:
        bus.publish("create", name="x")
        wait_for(lambda: dispatcher.delivered == 1 and dispatcher.failed == 1)
        assert receiver.events("/flaky") == ["create", "create"]  # 503, then 200
        assert receiver.events("/status/400") == ["create"]  # refused: not retried
    finally:
        dispatcher.stop(1.0)


def test_full_queue_drops_the_oldest_and_counts(bus, dead_url):
    dispatcher = WebhookDispatcher(bus, [(".", dead_url)], queue_size=2, retries=0)
    dispatcher.start()
    try:
        # Called directly (no yield in between), so the sender cannot drain meanwhile.
        for n in range(10):
            dispatcher.on_event("create", {"event": "create", "name": f"t{n}"})
        assert dispatcher.dropped == 8
        assert dispatcher.pending == 2
        wait_for(lambda: dispatcher.failed == 2)
    finally:
        dispatcher.stop(1.0)
    assert (dispatcher.delivered, dispatcher.failed, dispatcher.dropped) == (0, 2, 8)


def test_stop_flushes_queued_events_then_ignores_new_ones(bus, receiver):
    dispatcher = WebhookDispatcher(bus, [(".", f"{receiver.url}/all")])
    dispatcher.start()
    for n in range(20):
        dispatcher.on_event("create", {"event": "create", "name": f"t{n}"})
    dispatcher.stop(5.0)
    assert dispatcher.delivered == 20
    assert [body["name"] for _, _, body in receiver.received] == [f"t{n}" for n in range(20)]
    bus.publish("create", name="late")
    bus.flush()  # delivers to listeners synchronously: a stopped dispatcher queues nothing
    assert dispatcher.pending == 0
    assert len(receiver.received) == 20


def test_stop_gives_up_on_a_hanging_receiver_within_the_timeout(bus, hanging_url):
    dispatcher = WebhookDispatcher(bus, [(".", hanging_url)], timeout=5.0)
    dispatcher.start()
    dispatcher.on_event("create", {"event": "create", "name": "a"})
    dispatcher.on_event("create", {"event": "create", "name": "b"})
    wait_for(lambda: dispatcher.pending == 1)  # "a" is in flight to the hanging receiver
    started = time.monotonic()
    dispatcher.stop(0.3)
    assert time.monotonic() - started < 2.0
    assert dispatcher.dropped == 2  # "a" was cut short in flight, "b" never left the queue
    assert (dispatcher.delivered, dispatcher.failed) == (0, 0)


def test_register_and_unregister_at_runtime(bus, receiver):
    dispatcher = WebhookDispatcher(bus, [])
    dispatcher.start()
    try:
        dispatcher.register("delete", f"{receiver.url}/d")
        dispatcher.register("delete", f"{receiver.url}/d")  # once only
        assert dispatcher.urls_for("delete") == [f"{receiver.url}/d"]
        bus.publish("delete", name="x")
        wait_for(lambda: dispatcher.delivered == 1)
        dispatcher.unregister("delete", f"{receiver.url}/d")
        assert dispatcher.urls_for("delete") == []
    finally:
        dispatcher.stop(1.0)
