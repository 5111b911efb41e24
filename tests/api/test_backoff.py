"""Crash loops over real HTTP (issue 13): backoff, the failed state and restart counts.

The module's manager backs off fast (20 ms doubling, failed at the 5th quick
failure, healthy after 0.5 s) so a whole crash loop fits in a second; the
defaults are tested in test_processes.py and, on a fake clock, in
tests/unit/test_flapping.py.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import Any

import gevent
import httpx
import pytest

from gaffer_gevent.flapping import BackoffConfig
from gaffer_gevent.manager import Manager
from tests.api.support import create, error
from tests.api.test_watch import watching
from tests.conftest import LiveServer, managed
from tests.helpers import holds, wait_for

FAST = BackoffConfig(first_delay=0.02, max_delay=0.1, reset_after=0.5, give_up_after=5)


@pytest.fixture
def manager() -> Iterator[Manager]:
    yield from managed(backoff=FAST)


def record(server: LiveServer, pattern: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    server.manager.bus.subscribe(pattern, lambda event, payload: events.append(payload))
    return events


def status(client: httpx.Client, name: str) -> dict[str, Any]:
    r = client.get(f"/status/{name}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_a_crash_loop_ends_failed_until_started_again(
    client: httpx.Client, server: LiveServer
) -> None:
    events = record(server, ".")
    baseline = server.manager.bus.subscriber_count
    waiting = gevent.spawn(client.get, "/watch/proc/crash/failed")  # a longpoll for the event
    wait_for(lambda: watching(server.manager, baseline))
    assert client.post("/processes", json={"name": "crash", "cmd": "false"}).status_code == 200
    r = waiting.get(timeout=10)
    assert r.json() == {
        "event": "proc.crash.failed", "name": "crash",
        "reason": "5 quick failures in a row", "failures": 5, "restarts": 4,
    }  # fmt: skip
    wait_for(lambda: any(e["event"] == "failed" for e in events))  # the manager-level twin
    names = [e["event"] for e in events if not e["event"].startswith(("proc.", "api."))]
    assert names.count("spawn") == 5 and names.count("backoff") == 4
    delays = [e["delay"] for e in events if e["event"] == "backoff"]
    assert delays == sorted(delays) and delays[-1] <= 0.1  # growing, capped at max_delay
    assert [e["failures"] for e in events if e["event"] == "backoff"] == [1, 2, 3, 4]
    assert names.index("failed") > names.index("stop")  # failed means stopped
    assert status(client, "crash") == {
        "active": False, "running": 0, "max_processes": 1, "state": "failed",
        "restarts": 4, "failures": 5, "retry_in": None, "ready": 0,
    }  # fmt: skip
    spawns = names.count("spawn")
    # three max delays: nothing is spawned any more
    holds(lambda: [e["event"] for e in events].count("spawn") == spawns, 0.3)
    # A stop and a scale leave it failed; a start clears it and tries again from the start.
    assert client.post("/processes/crash/_stop").status_code == 200
    assert client.post("/processes/crash/_add").status_code == 200
    assert status(client, "crash")["state"] == "failed"
    assert client.post("/processes/crash/_sub").status_code == 200
    assert client.post("/processes/crash/_start").status_code == 200
    after = status(client, "crash")
    assert after["state"] in ("running", "backoff") and after["failures"] <= 1
    wait_for(lambda: status(client, "crash")["state"] == "failed", timeout=10)
    assert status(client, "crash")["restarts"] == 8  # counted since creation
    assert client.post("/processes/crash/_restart").status_code == 200
    assert status(client, "crash")["state"] != "failed"
    wait_for(lambda: status(client, "crash")["state"] == "failed", timeout=10)
    assert client.put("/processes/crash", json={"cmd": "sleep 600"}).status_code == 200
    assert status(client, "crash") == {
        "active": True, "running": 1, "max_processes": 1, "state": "running",
        "restarts": 0, "failures": 0, "retry_in": None, "ready": 1,
    }  # fmt: skip


def test_restart_counts_per_pid_in_stats_and_per_template_in_status(
    client: httpx.Client, server: LiveServer
) -> None:
    create(client, "svc", numprocesses=2)

    def entries() -> list[dict[str, Any]]:
        return list(client.get("/stats/svc").json()["stats"])

    assert [e["restarts"] for e in entries()] == [0, 0]
    for expected_pid, count in ((3, 1), (4, 2)):
        newest = entries()[-1]
        os.kill(newest["pid"], signal.SIGKILL)  # "pid" in stats is the OS pid
        wait_for(lambda pid=expected_pid: [e["id"] for e in entries()] == [1, pid], timeout=5)
        assert [e["restarts"] for e in entries()] == [0, count]
    body = status(client, "svc")
    assert (body["restarts"], body["state"], body["running"]) == (2, "running", 2)


def test_a_healthy_run_restarts_at_once_without_backoff(
    client: httpx.Client, server: LiveServer
) -> None:
    events = record(server, "backoff")
    create(client, "svc")
    process = server.manager.running[1]
    wait_for(lambda: server.manager.clock() - process.spawned_at >= FAST.reset_after, timeout=5)
    os.kill(process.os_pid, signal.SIGKILL)
    wait_for(lambda: client.get("/processes/svc/_pids").json()["pids"] == [2], timeout=5)
    assert events == []  # respawned in the exit handler, no backoff round
    os.kill(server.manager.running[2].os_pid, signal.SIGKILL)  # now a quick failure
    wait_for(lambda: events, timeout=5)
    assert events[0]["name"] == "svc" and events[0]["failures"] == 1
    wait_for(lambda: client.get("/processes/svc/_pids").json()["pids"] == [3], timeout=5)


def test_status_of_an_unknown_or_impossible_name(client: httpx.Client) -> None:
    error(client.get("/status/nope"), 404, "not_found")
    error(client.get("/status/a%0Ab"), 400, "bad_value")
