"""Rolling restarts with real children: always enough ready pids, and a clean abort.

Readiness is a real check (``late_ready``: a log line printed once a gate file
exists): the replacements get ready when the gate is there, and never when it
was removed, for the abort.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gevent
import httpx
import pytest

from gaffer_gevent.dependency_gate import is_ready
from gaffer_gevent.manager import Manager
from tests.api.support import SLEEPER, error, late_ready
from tests.conftest import LiveServer
from tests.helpers import wait_for

POLL = 0.02


def ready_count(manager: Manager, name: str) -> int:
    return sum(1 for p in manager.state(name).queue if p.alive and is_ready(p))


def record(manager: Manager) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    manager.bus.subscribe("proc", lambda event, payload: events.append(payload))
    return events


def start_four(client: httpx.Client, manager: Manager, gate: Path) -> list[int]:
    """Four pids of ``web``, each ready once ``gate`` exists (it is created here)."""
    gate.touch()
    body = {"name": "web", **late_ready(str(gate)), "numprocesses": 4}
    r = client.post("/processes", json=body)
    assert r.status_code == 200, r.text
    wait_for(lambda: ready_count(manager, "web") == 4)
    return manager.pids("web")


def test_rolling_restart_keeps_three_ready_at_every_moment(
    client: httpx.Client, server: LiveServer, tmp_path: Path
) -> None:
    manager = server.manager
    events = record(manager)
    old = start_four(client, manager, tmp_path / "gate")
    lowest = [4]

    def poll() -> None:
        while True:
            lowest[0] = min(lowest[0], ready_count(manager, "web"))
            gevent.sleep(POLL)

    poller = gevent.spawn(poll)
    try:
        r = client.post("/processes/web/_restart", params={"rolling": 1, "max_unavailable": 1,
                                                           "ready_timeout": 5})  # fmt: skip
        assert r.status_code == 200, r.text
        # a second roll while this one runs is refused
        error(client.post("/processes/web/_restart?rolling=1"), 409, "conflict")
        wait_for(lambda: any(e["event"] == "proc.web.rollout_done" for e in events), timeout=10)
    finally:
        poller.kill()
    assert lowest[0] >= 3
    new = manager.pids("web")
    assert len(new) == 4 and not set(new) & set(old)
    wait_for(lambda: ready_count(manager, "web") == 4)
    # each old pid was reaped only after a replacement was ready
    order = [(e["event"], e.get("pid")) for e in events]
    for index, pid in enumerate(old):
        ready_at = order.index(("proc.web.ready", new[index]))
        assert order.index(("proc.web.reap", pid)) > ready_at


def test_a_replacement_never_ready_aborts_the_roll(
    client: httpx.Client, server: LiveServer, tmp_path: Path
) -> None:
    manager = server.manager
    events = record(manager)
    gate = tmp_path / "gate"
    old = start_four(client, manager, gate)
    gate.unlink()  # the new version never gets ready
    r = client.post("/processes/web/_restart?rolling=1&max_unavailable=2&ready_timeout=0.3")
    assert r.status_code == 200, r.text
    aborted = wait_for(lambda: [e for e in events if e["event"] == "proc.web.rollout_aborted"])
    assert aborted[0]["kept"] == old
    assert aborted[0]["replaced"] == 0
    assert "not ready within 0.3 s" in aborted[0]["reason"]
    failed = aborted[0]["failed"]
    assert len(failed) == 2
    wait_for(lambda: all(manager.find_process(pid) is None for pid in failed))
    assert manager.pids("web") == old
    assert manager.state("web").rollout is None
    assert ready_count(manager, "web") == 4
    assert client.get("/status/web").json()["running"] == 4


@pytest.mark.parametrize(
    "query",
    [
        "rolling=maybe",
        "rolling=1&max_unavailable=0",
        "rolling=1&max_unavailable=-1",
        "rolling=1&max_unavailable=99999999999999999999999",
        "rolling=1&max_unavailable=%C2%B2",
        "rolling=1&ready_timeout=nan",
        "rolling=1&ready_timeout=inf",
        "rolling=1&ready_timeout=1e309",
        "rolling=1&ready_timeout=0",
        "rolling=1&ready_timeout=-1",
        "rolling=1&ready_timeout=1_0",
        "rolling=1&ready_timeout=" + "9" * 400,
    ],
)
def test_bad_roll_parameters_are_refused(
    client: httpx.Client, server: LiveServer, query: str
) -> None:
    r = client.post("/processes", json={"name": "web", **SLEEPER})
    assert r.status_code == 200
    error(client.post(f"/processes/web/_restart?{query}"), 400, "bad_value")
    assert server.manager.pids("web") == [1]
