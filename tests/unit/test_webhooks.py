"""WebhookDispatcher against real local HTTP receivers (in this process, under gevent)."""

import hashlib
import hmac
import itertools
import json
import logging
import socket
import time
from collections.abc import Iterator

import pytest

from gaffer_gevent.events import EventBus
from gaffer_gevent.signing import Secret
from gaffer_gevent.webhooks import WebhookDispatcher

from ..helpers import wait_for


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


# -- signed hooks -------------------------------------------------------------------------

KEY = b"hook-key-Qw7-never-shown"
NOW = 1_700_000_000.75


def hmac_of(key: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def test_signed_hook_verifies_with_its_secret_and_unsigned_hook_is_unchanged(bus, receiver):
    signed, plain = f"{receiver.url}/signed", f"{receiver.url}/plain"
    dispatcher = WebhookDispatcher(
        bus,
        [("create", signed), ("create", plain)],
        secrets={signed: Secret(KEY)},
        clock=lambda: NOW,
    )
    dispatcher.start()
    try:
        bus.publish("create", name="x")
        wait_for(lambda: dispatcher.delivered == 2)
    finally:
        dispatcher.stop(1.0)
    (s_headers, s_body), (p_headers, p_body) = (
        next((h, b) for p, h, b in receiver.raw if p == path) for path in ("/signed", "/plain")
    )
    # Signed: an HMAC-SHA256 of the exact body bytes, which carry the delivery time and an id.
    assert s_headers["X_GAFFER_SIGNATURE"] == hmac_of(KEY, s_body)
    assert s_headers["X_GAFFER_SIGNATURE"] != hmac_of(b"another key", s_body)
    assert s_headers["X_GAFFER_SIGNATURE"] != hmac_of(KEY, s_body.replace(b'"x"', b'"y"'))
    assert s_headers["X_GAFFER_TIMESTAMP"] == "1700000000"
    body = json.loads(s_body)
    webhook_id = body.pop("webhook_id")
    assert len(webhook_id) == 32 and int(webhook_id, 16) >= 0
    assert body == {"event": "create", "name": "x", "webhook_timestamp": 1_700_000_000}
    # Unsigned: byte for byte what it was before signing existed, and no signing header.
    assert p_body == json.dumps({"event": "create", "name": "x"}).encode()
    assert not {"X_GAFFER_SIGNATURE", "X_GAFFER_TIMESTAMP"} & p_headers.keys()


def test_a_retry_is_signed_again_with_a_fresh_timestamp_and_the_same_id(bus, receiver):
    receiver.fail_first.add("/flaky")
    url = f"{receiver.url}/flaky"
    ticks = itertools.count(NOW, 7)
    dispatcher = WebhookDispatcher(
        bus, [("create", url)], secrets={url: Secret(KEY)}, backoff=0.01,
        clock=lambda: next(ticks),
    )  # fmt: skip
    dispatcher.start()
    try:
        bus.publish("create", name="x")
        wait_for(lambda: dispatcher.delivered == 1)
    finally:
        dispatcher.stop(1.0)
    first, second = [(h, b) for p, h, b in receiver.raw if p == "/flaky"]  # 503, then 200
    for headers, body in (first, second):
        assert headers["X_GAFFER_SIGNATURE"] == hmac_of(KEY, body)
    one, two = json.loads(first[1]), json.loads(second[1])
    assert (one["webhook_timestamp"], two["webhook_timestamp"]) == (1_700_000_000, 1_700_000_007)
    assert second[0]["X_GAFFER_TIMESTAMP"] == "1700000007"
    assert one["webhook_id"] == two["webhook_id"]


def test_each_event_gets_its_own_webhook_id(bus, receiver):
    url = f"{receiver.url}/s"
    dispatcher = WebhookDispatcher(bus, [(".", url)], secrets={url: Secret(KEY)})
    dispatcher.start()
    try:
        bus.publish("create", name="a")
        bus.publish("delete", name="a")
        wait_for(lambda: dispatcher.delivered == 2)
    finally:
        dispatcher.stop(1.0)
    ids = [json.loads(body)["webhook_id"] for _, _, body in receiver.raw]
    assert len(set(ids)) == 2
    assert all(abs(json.loads(b)["webhook_timestamp"] - time.time()) < 60 for *_, b in receiver.raw)


def test_the_secret_never_shows_in_logs_or_reprs(bus, receiver, dead_url, caplog):
    caplog.set_level(logging.DEBUG)
    refused = f"{receiver.url}/status/400"
    secret = Secret(KEY)
    hooks = [(".", dead_url), (".", refused)]
    dispatcher = WebhookDispatcher(
        bus, hooks, secrets={dead_url: secret, refused: secret}, retries=1, backoff=0.01,
        queue_size=1,
    )  # fmt: skip
    dispatcher.start()
    try:
        for n in range(3):  # overflows the queue too, which logs
            dispatcher.on_event("create", {"event": "create", "name": f"t{n}"})
        assert dispatcher.dropped == 4  # each URL kept only its newest event
        wait_for(lambda: dispatcher.failed == 2)
        shown = [repr(dispatcher), str(dispatcher), repr(secret), str(secret), f"{secret}"]
    finally:
        dispatcher.stop(1.0)
    logged = [r.getMessage() + (r.exc_text or "") for r in caplog.records]
    assert any(dead_url in line for line in logged)  # the failures were logged...
    assert any("queue full" in line for line in logged)
    for text in logged + shown:  # ...and nothing printed holds the secret, in any spelling
        assert KEY.decode() not in text and KEY.hex() not in text and repr(KEY) not in text
    assert "signed_urls=2" in repr(dispatcher)


def test_register_a_signed_hook_at_runtime_and_forget_its_secret(bus, receiver):
    url = f"{receiver.url}/r"
    dispatcher = WebhookDispatcher(bus, [])
    dispatcher.start()
    try:
        dispatcher.register("create", url, secret=Secret(KEY))
        dispatcher.register("delete", url)  # the URL's secret signs every event sent to it
        bus.publish("create", name="a")
        bus.publish("delete", name="a")
        wait_for(lambda: dispatcher.delivered == 2)
        assert [h["X_GAFFER_SIGNATURE"] == hmac_of(KEY, b) for _, h, b in receiver.raw] == [
            True, True,
        ]  # fmt: skip
        dispatcher.unregister("create", url)
        assert "signed_urls=1" in repr(dispatcher)  # still hooked to delete
        dispatcher.unregister("delete", url)
        assert "signed_urls=0" in repr(dispatcher)
    finally:
        dispatcher.stop(1.0)
