"""/groups over real HTTP: templates named ``group:name`` listed, started, stopped, removed."""

from __future__ import annotations

import httpx

from tests.api.support import create, error
from tests.conftest import LiveServer
from tests.helpers import wait_for


def running(client: httpx.Client, name: str) -> int:
    count: int = client.get(f"/status/{name}").json()["running"]
    return count


def test_groups_and_members_in_creation_order(client: httpx.Client) -> None:
    assert client.get("/groups").json() == []
    for name in ("gb:x", "ga:b", "plain", "ga:a", "gb:y"):
        create(client, name, start=False)
    r = client.get("/groups")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == ["gb", "ga"]
    assert client.get("/groups/ga").json() == ["ga:b", "ga:a"]
    assert client.get("/groups/gb").json() == ["gb:x", "gb:y"]
    error(client.get("/groups/plain"), 404, "not_found")
    error(client.get("/groups/nope"), 404, "not_found")


def test_group_is_the_text_before_the_first_colon(client: httpx.Client) -> None:
    create(client, "web:api:v2", start=False)
    assert client.get("/groups").json() == ["web"]
    assert client.get("/groups/web").json() == ["web:api:v2"]


def test_start_stop_restart_apply_to_every_member(client: httpx.Client, server: LiveServer) -> None:
    create(client, "g:a", start=False)
    create(client, "g:b", start=False, numprocesses=2)
    create(client, "other", start=False)
    r = client.post("/groups/g/_start")
    assert (r.status_code, r.json()) == (200, {"ok": True})
    assert (running(client, "g:a"), running(client, "g:b"), running(client, "other")) == (1, 2, 0)
    assert client.get("/processes", params={"running": "1"}).json() == [1, 2, 3]

    r = client.post("/groups/g/_restart")
    assert (r.status_code, r.json()) == (200, {"ok": True})
    assert client.get("/processes/g:a/_pids").json()["pids"] == [4]
    assert client.get("/processes/g:b/_pids").json()["pids"] == [5, 6]

    r = client.post("/groups/g/_stop")
    assert (r.status_code, r.json()) == (200, {"ok": True})
    assert (running(client, "g:a"), running(client, "g:b")) == (0, 0)
    assert client.get("/processes", params={"running": "1"}).json() == []
    wait_for(lambda: not server.manager.stopping)


def test_restart_of_a_stopped_group_starts_it(client: httpx.Client) -> None:
    create(client, "g:a")
    client.post("/groups/g/_stop")
    assert client.post("/groups/g/_restart").status_code == 200
    assert client.get("/processes/g:a/_pids").json()["pids"] == [2]


def test_bad_action_is_checked_before_the_group(client: httpx.Client) -> None:
    error(client.post("/groups/nope/_bogus"), 404, "resource_not_found")
    error(client.post("/groups/nope/start"), 404, "resource_not_found")
    error(client.post("/groups/nope/_start"), 404, "not_found")
    error(client.post("/groups/nope/_stop"), 404, "not_found")
    error(client.post("/groups/nope/_restart"), 404, "not_found")
    create(client, "g:a", start=False)
    error(client.post("/groups/g/_delete"), 404, "resource_not_found")
    assert running(client, "g:a") == 0


def test_delete_group_removes_every_template(client: httpx.Client, server: LiveServer) -> None:
    # Several members: gaffer 0.4 skipped every second one while deleting.
    for name in ("g:a", "g:b", "g:c", "g:d"):
        create(client, name)
    create(client, "h:keep", start=False)
    processes = list(server.manager.running.values())
    r = client.delete("/groups/g")
    assert (r.status_code, r.json()) == (200, {"ok": True})
    assert client.get("/processes").json() == ["h:keep"]
    assert client.get("/groups").json() == ["h"]
    error(client.get("/groups/g"), 404, "not_found")
    error(client.delete("/groups/g"), 404, "not_found")
    assert client.get("/processes", params={"running": "1"}).json() == []
    wait_for(lambda: not any(p.alive for p in processes))


def test_removing_the_last_member_keeps_an_empty_group(client: httpx.Client) -> None:
    create(client, "g:only", start=False)
    assert client.delete("/processes/g%3Aonly").status_code == 200
    assert client.get("/groups").json() == ["g"]
    assert client.get("/groups/g").json() == []
    assert client.delete("/groups/g").json() == {"ok": True}
    assert client.get("/groups").json() == []


def test_group_routes_refuse_other_methods(client: httpx.Client) -> None:
    create(client, "g:a", start=False)
    assert client.post("/groups").status_code == 405
    assert client.put("/groups/g").status_code == 405
    assert client.get("/groups/g/_start").status_code == 405
