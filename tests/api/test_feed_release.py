"""Every feed releases its subscription exactly once, however its client leaves.

Process streams, /watch and /stats hold their subscription through one
``Lease``; a client that disconnects, a process that ends and a revoked token
each leave the stream or the bus with no subscriber left, and the release ran
once although several parties asked for it (the disconnect watcher, the body's
end, the response's close).
"""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import httpx
import pytest

from gaffer_gevent.api import replace_credentials
from gaffer_gevent.auth import Credentials
from gaffer_gevent.feeds import Lease, open_leases
from gaffer_gevent.manager import Manager
from tests.api.secure import SecureServer, secure_server, spec
from tests.api.support import ECHO, create_one
from tests.conftest import LiveServer
from tests.helpers import holds, wait_for


@pytest.fixture
def releases(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How many times each kind of feed really ran its release (by the lease's ``what``)."""
    calls: Counter[str] = Counter()
    take = Lease.__init__

    def counting(
        self: Lease[Any], resource: Any, release: Callable[[], None], what: str = ""
    ) -> None:
        def counted() -> None:
            calls[what] += 1
            release()

        take(self, resource, counted, what)

    monkeypatch.setattr(Lease, "__init__", counting)
    return calls


def stream_subscribers(manager: Manager, pid: int) -> int:
    return len(manager.running[pid].streams["out"].subscriptions)


def raw_get(server: LiveServer, path: str) -> socket.socket:
    """A client that sends one request and reads nothing: it can only leave."""
    sock = socket.create_connection((server.host, server.port), timeout=10)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    return sock


def feeds(server: LiveServer, pid: int) -> Iterator[tuple[str, str, Callable[[], bool]]]:
    """(lease kind, path, "its subscription is held") of each feed of a running process."""
    manager = server.manager
    baseline = manager.bus.subscriber_count
    for kind in ("longpoll", "continuous", "eventsource"):
        yield (
            "stream",
            f"/streams/{pid}/out?feed={kind}",
            lambda: stream_subscribers(manager, pid) == 1,
        )
    for kind in ("continuous", "eventsource"):
        yield "watch", f"/watch?feed={kind}", lambda: manager.bus.subscriber_count == baseline + 1
        yield "stats", f"/stats/echo/{pid}?feed={kind}", lambda: bool(open_leases("stats"))


def test_a_client_leaving_any_feed_releases_it_once(
    client: httpx.Client, server: LiveServer, releases: Counter[str]
) -> None:
    pid = create_one(client, "echo", ECHO)
    manager = server.manager
    baseline = manager.bus.subscriber_count
    for what, path, held in feeds(server, pid):
        before = releases[what]
        sock = raw_get(server, path)
        wait_for(held)
        assert open_leases(what), path
        sock.close()
        wait_for(lambda what=what: not open_leases(what))
        assert stream_subscribers(manager, pid) == 0, path
        assert manager.bus.subscriber_count == baseline, path
        holds(lambda what=what, before=before: releases[what] == before + 1, 0.2)


@pytest.mark.parametrize("feed", ["longpoll", "continuous", "eventsource"])
def test_a_stream_that_ends_releases_its_feed_once(
    client: httpx.Client, server: LiveServer, releases: Counter[str], feed: str
) -> None:
    pid = create_one(client, "echo", ECHO)
    stream = server.manager.running[pid].streams["out"]
    reading = gevent.spawn(client.get, f"/streams/{pid}/out", params={"feed": feed})
    wait_for(lambda: stream.subscriptions)
    assert client.post("/processes/echo/_stop").status_code == 200
    assert reading.get(timeout=10).status_code == 200  # the body ended with the stream
    wait_for(lambda: not open_leases("stream"))
    assert stream.subscriptions == set()
    holds(lambda: releases["stream"] == 1, 0.2)


@pytest.fixture
def secure(manager: Manager) -> Iterator[SecureServer]:
    with secure_server(manager) as live:
        yield live


def test_a_revoked_token_releases_every_feed_it_holds_once(
    secure: SecureServer, releases: Counter[str]
) -> None:
    baseline = secure.manager.bus.subscriber_count
    _, pid = secure.pid(inside=True)
    stream = secure.manager.running[pid].streams["out"]
    with secure.client(secure.tokens["read"]) as c:
        watch = c.stream("GET", "/watch", params={"feed": "continuous"})
        out = c.stream("GET", f"/streams/{pid}/out", params={"feed": "eventsource"})
        with watch as w, out as o:
            wait_for(
                lambda: stream.subscriptions and secure.manager.bus.subscriber_count > baseline
            )
            kept = [spec("admin", "admin", secure.tokens["admin"])]
            assert replace_credentials(secure.app, Credentials(kept)) == 2
            w.read(), o.read()  # both feeds end at once
    assert not open_leases("watch") and not open_leases("stream")
    assert stream.subscriptions == set()
    assert secure.manager.bus.subscriber_count == baseline
    holds(lambda: (releases["watch"], releases["stream"]) == (1, 1), 0.2)
