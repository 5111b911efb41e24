"""depends_on with real children: start order from the event times, waiting, stop order.

A dependency is held back by a real readiness check (``late_ready``: a log line
printed late, or never when its gate file never appears).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from gaffer_gevent.manager import Manager
from tests.api.support import SLEEPER, error, late_ready
from tests.conftest import LiveServer
from tests.helpers import holds, wait_for

Events = list[tuple[float, dict[str, Any]]]


def record(manager: Manager) -> Events:
    events: Events = []
    manager.bus.subscribe(".", lambda event, payload: events.append((time.monotonic(), payload)))
    return events


def first(events: Events, name: str, **where: Any) -> float:
    """When the first event ``name`` (with the given fields) arrived."""
    for at, payload in events:
        if payload["event"] == name and all(payload.get(k) == v for k, v in where.items()):
            return at
    raise AssertionError(f"no {name} {where} in {[p['event'] for _, p in events]}")


def has(events: Events, name: str) -> bool:
    return any(payload["event"] == name for _, payload in events)


def test_chain_starts_in_order(client: httpx.Client, server: LiveServer) -> None:
    manager = server.manager
    events = record(manager)
    migrate = ["-c", "sleep 0.3; exit 0"]
    for body in (
        {"name": "db", **late_ready("0.3")},
        {"name": "migrate", "cmd": "sh", "args": migrate, "restart": "never",
         "depends_on": {"db": "ready"}},
        {"name": "web", **SLEEPER, "depends_on": {"migrate": "completed", "db": "ready"}},
    ):  # fmt: skip
        r = client.post("/processes", json=body)
        assert r.status_code == 200, r.text
    status = client.get("/status/web").json()
    assert status["state"] == "waiting"
    assert status["waiting_for"] == {"migrate": "completed", "db": "ready"}
    assert client.get("/processes/web/_pids").json()["pids"] == []
    wait_for(lambda: has(events, "proc.web.spawn"), timeout=10)
    db_ready = first(events, "proc.db.ready")
    migrate_spawn = first(events, "proc.migrate.spawn")
    migrate_exit = first(events, "proc.migrate.exit", exit_status=0)
    web_spawn = first(events, "proc.web.spawn")
    assert db_ready < migrate_spawn < migrate_exit < first(events, "proc.migrate.completed")
    assert web_spawn > migrate_exit and web_spawn > db_ready
    waiting = [p for _, p in events if p["event"] == "proc.web.waiting"]
    assert waiting[0]["waiting_for"] == {"migrate": "completed", "db": "ready"}
    assert client.get("/status/web").json()["state"] == "running"
    assert client.get("/status/migrate").json()["state"] == "completed"


def test_a_dependency_never_ready_leaves_dependents_waiting(
    manager: Manager, tmp_path: Path
) -> None:
    from gaffer_gevent.template import ProcessTemplate

    events = record(manager)
    never = late_ready(str(tmp_path / "never-created"))
    manager.add_template(ProcessTemplate.from_json({"name": "db", **never}))
    web = {"name": "web", **SLEEPER, "depends_on": {"db": "ready"}}
    manager.add_template(ProcessTemplate.from_json(web))
    wait_for(lambda: has(events, "proc.web.waiting"))
    # Not spinning: one waiting event while db's events come and go, no spawn.
    manager.signal_template("db", "HUP")  # db dies of it and respawns: events come and go
    holds(lambda: not has(events, "proc.web.spawn"), 0.5)
    assert sum(p["event"] == "proc.web.waiting" for _, p in events) == 1
    assert manager.status("web")["state"] == "waiting"


def test_a_cycle_or_an_unknown_name_is_refused_at_post(
    client: httpx.Client, server: LiveServer
) -> None:
    r = client.post("/processes", json={"name": "web", **SLEEPER, "depends_on": {"db": "ready"}})
    error(r, 400, "unknown_dependency")
    assert "db" in r.json()["reason"]
    r = client.post("/processes", json={"name": "web", **SLEEPER, "depends_on": {"web": "ready"}})
    error(r, 400, "dependency_cycle")
    assert r.json()["reason"] == "web -> web"
    assert client.get("/processes").json() == []
    assert client.post("/processes", json={"name": "db", **SLEEPER}).status_code == 200
    body = {"name": "migrate", **SLEEPER, "depends_on": {"db": "started"}}
    assert client.post("/processes", json=body).status_code == 200
    # A PUT that would close the loop is refused too, and db keeps running.
    r = client.put("/processes/db", json={**SLEEPER, "depends_on": {"migrate": "started"}})
    error(r, 400, "dependency_cycle")
    assert r.json()["reason"] == "db -> migrate -> db"
    assert client.get("/status/db").json()["running"] == 1


def test_hostile_depends_on_over_http(client: httpx.Client, server: LiveServer) -> None:
    many = {f"t{i}": "ready" for i in range(10_000)}
    for value, code in (
        ([], "invalid_process_info"),
        (many, "bad_value"),
        ({"a\nb": "ready"}, "bad_value"),
        ({"db": "sometimes"}, "bad_value"),
    ):
        r = client.post("/processes", json={"name": "web", **SLEEPER, "depends_on": value})
        error(r, 400, code)
    r = client.post("/processes", json={"name": "web", **SLEEPER, "restart": "sometimes"})
    error(r, 400, "bad_value")
    r = client.post(
        "/processes",
        content=b'{"name": "web", "cmd": "true", "restart_delay": NaN}',
        headers={"Content-Type": "application/json"},
    )
    error(r, 400, "invalid_json")


def test_stop_all_goes_in_reverse_dependency_order(manager: Manager) -> None:
    from gaffer_gevent.template import ProcessTemplate

    events = record(manager)
    for body in (
        {"name": "db", **SLEEPER},
        {"name": "app", **SLEEPER, "depends_on": {"db": "started"}},
        {"name": "web", **SLEEPER, "depends_on": {"app": "started"}},
    ):
        manager.add_template(ProcessTemplate.from_json(body))
    wait_for(lambda: len(manager.running) == 3)
    assert manager.stop_all(timeout=10)
    manager.bus.flush()
    assert first(events, "proc.web.exit") < first(events, "proc.app.stop")
    assert first(events, "proc.app.exit") < first(events, "proc.db.stop")


def test_group_stop_goes_in_reverse_dependency_order(
    client: httpx.Client, server: LiveServer
) -> None:
    manager = server.manager
    events = record(manager)
    assert client.post("/processes", json={"name": "g:db", **SLEEPER}).status_code == 200
    body = {"name": "g:web", **SLEEPER, "depends_on": {"g:db": "started"}}
    assert client.post("/processes", json=body).status_code == 200
    wait_for(lambda: len(manager.running) == 2)
    assert client.post("/groups/g/_stop").status_code == 200
    wait_for(lambda: has(events, "proc.g:db.exit"))
    assert first(events, "proc.g:web.exit") < first(events, "proc.g:db.stop")


def test_a_deleted_dependency_leaves_its_dependents_waiting_and_others_unaffected(
    client: httpx.Client, server: LiveServer
) -> None:
    assert (
        client.post("/processes", json={"name": "db", **SLEEPER, "start": False}).status_code == 200
    )
    body = {"name": "web", **SLEEPER, "depends_on": {"db": "ready"}}
    assert client.post("/processes", json=body).status_code == 200
    assert client.get("/status/web").json()["state"] == "waiting"
    assert client.delete("/processes/db").status_code == 200
    # another template can still be created: web's unknown dependency is web's own business
    assert client.post("/processes", json={"name": "cache", **SLEEPER}).status_code == 200
    assert client.get("/status/web").json()["state"] == "waiting"
