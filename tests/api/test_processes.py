"""/processes and /status over real HTTP: templates by name, processes by pid, actions, errors."""

from __future__ import annotations

import itertools
import json
import signal
import time
from typing import Any

import httpx
import pytest

from gaffer_gevent.events import EventQueue
from tests.api.support import SLEEPER
from tests.conftest import LiveServer
from tests.helpers import child, wait_for


def create(client: httpx.Client, name: str, **fields: Any) -> None:
    body = {"name": name, **SLEEPER, **fields}
    r = client.post("/processes", json=body)
    assert r.status_code == 200, r.text
    assert r.json() == {"ok": True}


def pids(client: httpx.Client, name: str) -> list[int]:
    r = client.get(f"/processes/{name}/_pids")
    assert r.status_code == 200
    body = r.json()
    assert body["ok"] is True
    return list(body["pids"])


def error(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["error"] == code


def create_term_ignorer(client: httpx.Client, server: LiveServer, name: str) -> None:
    """A process that outlives SIGTERM for 2 s, once it has said it ignores SIGTERM."""
    fields = {**child("ignore_term"), "redirect_output": ["out"], "graceful_timeout": 2}
    create(client, name, **fields)
    (pid,) = pids(client, name)
    wait_for(lambda: server.manager.running[pid].streams["out"].last_seq > 0)


def next_event(queue: EventQueue) -> dict[str, Any]:
    item = queue.get(10)
    assert item is not None, "no event within 10 s"
    return item[1]


# -- the collection -------------------------------------------------------------


def test_list_is_empty_then_names_in_creation_order(client: httpx.Client) -> None:
    assert client.get("/processes").json() == []
    assert client.get("/processes", params={"running": "true"}).json() == []
    create(client, "b", start=False)
    create(client, "a", start=False)
    r = client.get("/processes")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == ["b", "a"]


def test_running_lists_internal_pids_in_spawn_order(client: httpx.Client) -> None:
    create(client, "one", numprocesses=2)
    create(client, "idle", start=False)
    create(client, "two")
    for value in ("true", "1", "True"):
        assert client.get("/processes", params={"running": value}).json() == [1, 2, 3]
    assert client.get("/processes", params={"running": "no"}).json() == ["one", "idle", "two"]


def test_create_spawns_before_replying(client: httpx.Client, server: LiveServer) -> None:
    create(client, "web", numprocesses=2)
    # No waiting: POST /processes returns after its processes spawned (spec 4.4).
    assert pids(client, "web") == [1, 2]
    assert all(p.os_pid > 0 and p.alive for p in server.manager.running.values())


def test_create_with_start_false_spawns_nothing(client: httpx.Client) -> None:
    create(client, "lazy", start=False)
    assert pids(client, "lazy") == []
    assert client.get("/status/lazy").json() == {
        "active": False,
        "running": 0,
        "max_processes": 1,
        "state": "stopped",
        "restarts": 0,
        "failures": 0,
        "retry_in": None,
        "ready": 0,
    }


def test_create_conflict_changes_nothing(client: httpx.Client) -> None:
    create(client, "dup", start=False)
    r = client.post("/processes", json={"name": "dup", "cmd": "other", "numprocesses": 3})
    error(r, 409, "conflict")
    info = client.get("/processes/dup").json()
    assert info["cmd"] == SLEEPER["cmd"]
    assert "numprocesses" not in info
    assert client.get("/processes").json() == ["dup"]


@pytest.mark.parametrize("body", [b"", b"not json", b'{"name": "x",', b"\xff\xfe"])
def test_create_invalid_json(client: httpx.Client, body: bytes) -> None:
    r = client.post("/processes", content=body, headers={"Content-Type": "application/json"})
    error(r, 400, "invalid_json")


@pytest.mark.parametrize(
    "body",
    [
        {"cmd": "sleep 1"},  # no name
        {"name": "x"},  # no cmd
        {"name": "", "cmd": "sleep 1"},
        {"name": 5, "cmd": "sleep 1"},
        [{"name": "x", "cmd": "sleep 1"}],  # not an object
        "x",
        None,
        {"name": "x", "cmd": 12},
        {"name": "x", "cmd": "sleep", "args": 5},
        {"name": "x", "cmd": "sleep", "args": ["1", 2]},
        {"name": "x", "cmd": "sleep 1", "numprocesses": "2"},
        {"name": "x", "cmd": "sleep 1", "numprocesses": True},
        {"name": "x", "cmd": "sleep 1", "env": ["A=1"]},
        {"name": "x", "cmd": "sleep 1", "redirect_output": "stdout"},
        {"name": "x", "cmd": "sleep 1", "redirect_input": "yes"},
        {"name": "x", "cmd": "sleep 1", "graceful_timeout": "soon"},
        {"name": "x", "cmd": "sleep 1", "os_env": 1},
    ],
)
def test_create_invalid_process_info(client: httpx.Client, body: Any) -> None:
    r = client.post("/processes", content=json.dumps(body))
    error(r, 400, "invalid_process_info")
    assert client.get("/processes").json() == []


# -- /processes/<name> ------------------------------------------------------------


def test_head_by_name(client: httpx.Client) -> None:
    create(client, "here", start=False)
    r = client.head("/processes/here")
    assert (r.status_code, r.content) == (200, b"")
    r = client.head("/processes/nowhere")
    assert (r.status_code, r.content) == (404, b"")


def test_get_by_name_echoes_exactly_the_stored_keys(client: httpx.Client) -> None:
    body = {"name": "dummy", "cmd": "python", "args": ["-u", "d.py"], "cwd": "/tmp"}
    r = client.post("/processes", json={**body, "start": False})
    assert r.status_code == 200
    assert client.get("/processes/dummy").json() == body
    error(client.get("/processes/nothing"), 404, "not_found")


def test_get_by_name_of_a_group_member_shows_the_group(client: httpx.Client) -> None:
    create(client, "ga:a", start=False, env={"A": "1"})
    info = client.get("/processes/ga%3Aa").json()  # URL-decoded before use (spec 2.4)
    assert info["name"] == "ga:a"
    assert info["group"] == "ga"
    assert info["env"] == {"A": "1"}  # exactly as submitted, not merged with the OS env


def test_put_replaces_settings_and_starts_fresh_pids(
    client: httpx.Client, server: LiveServer
) -> None:
    create(client, "svc")
    assert pids(client, "svc") == [1]
    old = server.manager.running[1]
    r = client.put("/processes/svc", json={"name": "ignored", **SLEEPER, "numprocesses": 2})
    assert r.status_code == 200
    assert r.json() == {"ok": True}
    assert pids(client, "svc") == [2, 3]
    info = client.get("/processes/svc").json()
    assert info["name"] == "svc"
    assert info["numprocesses"] == 2
    assert client.get("/processes").json() == ["svc"]
    wait_for(lambda: not old.alive)


def test_put_with_start_false_leaves_it_stopped(client: httpx.Client) -> None:
    create(client, "svc")
    r = client.put("/processes/svc", json={**SLEEPER, "start": False})
    assert r.status_code == 200
    assert pids(client, "svc") == []
    assert "start" not in client.get("/processes/svc").json()


def test_put_errors_check_the_body_before_the_name(client: httpx.Client) -> None:
    error(client.put("/processes/nope", content=b"{"), 400, "invalid_json")
    error(client.put("/processes/nope", json={"args": []}), 400, "invalid_process_info")
    error(client.put("/processes/nope", json=["x"]), 400, "invalid_process_info")
    error(client.put("/processes/nope", json={"cmd": "sleep 1"}), 404, "not_found")
    create(client, "svc", start=False)
    error(client.put("/processes/svc", json={"cmd": "x", "numprocesses": "2"}), 400,
          "invalid_process_info")  # fmt: skip


def test_delete_by_name_stops_and_removes(client: httpx.Client, server: LiveServer) -> None:
    create(client, "gone", numprocesses=2)
    processes = list(server.manager.running.values())
    r = client.delete("/processes/gone")
    assert r.status_code == 200
    assert r.json() == {"ok": True}
    assert client.get("/processes").json() == []
    assert client.get("/processes", params={"running": "1"}).json() == []
    error(client.get("/processes/gone"), 404, "not_found")
    error(client.delete("/processes/gone"), 404, "not_found")
    wait_for(lambda: not any(p.alive for p in processes))


# -- /processes/<pid> -------------------------------------------------------------


def test_head_get_by_pid(client: httpx.Client) -> None:
    create(client, "owner", numprocesses=2, env={"X": "y"})
    r = client.head("/processes/2")
    assert (r.status_code, r.content) == (200, b"")
    r = client.head("/processes/3")
    assert (r.status_code, r.content) == (404, b"")
    by_pid = client.get("/processes/2").json()
    assert by_pid == {**client.get("/processes/owner").json(), "state": "running",
                      "status_text": None}  # fmt: skip
    error(client.get("/processes/3"), 404, "not_found")


def test_delete_pid_is_replaced_by_a_new_pid(client: httpx.Client, server: LiveServer) -> None:
    # graceful_timeout keeps the old process around long enough to see the empty step.
    create_term_ignorer(client, server, "one")
    assert pids(client, "one") == [1]
    r = client.delete("/processes/1")
    assert r.status_code == 200
    assert r.json() == {"ok": True}
    assert pids(client, "one") == []
    assert client.head("/processes/1").status_code == 404
    wait_for(lambda: pids(client, "one") == [2])
    error(client.delete("/processes/1"), 404, "not_found")


def test_digit_segments_are_pids_and_caret_is_a_bad_value(client: httpx.Client) -> None:
    create(client, "x", start=False)
    error(client.get("/processes/42"), 404, "not_found")
    error(client.delete("/processes/42"), 404, "not_found")
    for segment in ("%5E", "1%5E2"):
        error(client.get(f"/processes/{segment}"), 400, "bad_value")
        error(client.delete(f"/processes/{segment}"), 400, "bad_value")
        error(client.post(f"/processes/{segment}/_stop"), 400, "bad_value")
        assert client.head(f"/processes/{segment}").status_code == 404
    error(client.put("/processes/1", json=SLEEPER), 405, "method_not_allowed")
    # Outside /processes digits are not pids, and no template name is all digits.
    error(client.get("/status/42"), 400, "bad_value")


# -- template actions ---------------------------------------------------------------


def test_stop_then_start_spawns_again(client: httpx.Client) -> None:
    create(client, "svc")
    r = client.post("/processes/svc/_stop")
    assert (r.status_code, r.json()) == (200, {"ok": True})
    assert client.get("/status/svc").json() == {
        "active": False,
        "running": 0,
        "max_processes": 1,
        "state": "stopped",
        "restarts": 0,
        "failures": 0,
        "retry_in": None,
        "ready": 0,
    }
    assert pids(client, "svc") == []
    # Stopping twice is a no-op.
    assert client.post("/processes/svc/_stop").status_code == 200
    r = client.post("/processes/svc/_start")
    assert (r.status_code, r.json()) == (200, {"ok": True})
    assert pids(client, "svc") == [2]
    # Start on a running template spawns nothing more.
    assert client.post("/processes/svc/_start").status_code == 200
    assert pids(client, "svc") == [2]


def test_restart_gives_a_fresh_set_of_pids(client: httpx.Client) -> None:
    create(client, "svc", numprocesses=2)
    assert pids(client, "svc") == [1, 2]
    r = client.post("/processes/svc/_restart")
    assert (r.status_code, r.json()) == (200, {"ok": True})
    assert pids(client, "svc") == [3, 4]
    client.post("/processes/svc/_stop")
    client.post("/processes/svc/_restart")  # a stopped template restarts too
    assert pids(client, "svc") == [5, 6]


def test_add_and_sub_scale_and_clamp_at_zero(client: httpx.Client) -> None:
    create(client, "svc")
    r = client.post("/processes/svc/_add")
    assert (r.status_code, r.json()) == (200, {"ok": True, "numprocesses": 2})
    assert pids(client, "svc") == [1, 2]
    assert client.post("/processes/svc/_add/3").json() == {"ok": True, "numprocesses": 5}
    assert pids(client, "svc") == [1, 2, 3, 4, 5]
    assert client.post("/processes/svc/_sub").json() == {"ok": True, "numprocesses": 4}
    assert pids(client, "svc") == [2, 3, 4, 5]  # the oldest goes first
    assert client.post("/processes/svc/_sub/2").json() == {"ok": True, "numprocesses": 2}
    assert pids(client, "svc") == [4, 5]
    assert client.post("/processes/svc/_sub/10").json() == {"ok": True, "numprocesses": 0}
    assert pids(client, "svc") == []
    assert client.get("/status/svc").json() == {
        "active": False,
        "running": 0,
        "max_processes": 0,
        "state": "stopped",
        "restarts": 0,
        "failures": 0,
        "retry_in": None,
        "ready": 0,
    }
    assert client.post("/processes/svc/_add/1").json() == {"ok": True, "numprocesses": 1}
    assert pids(client, "svc") == [6]


def test_add_on_a_stopped_template_only_counts(client: httpx.Client) -> None:
    create(client, "svc", start=False)
    client.post("/processes/svc/_stop")
    assert client.post("/processes/svc/_add/2").json() == {"ok": True, "numprocesses": 3}
    assert pids(client, "svc") == []


@pytest.mark.parametrize("sig", ["15", "TERM", "SIGTERM", "sigterm"])
def test_signal_a_template_by_number_or_name(
    client: httpx.Client, server: LiveServer, sig: str
) -> None:
    create(client, "svc")
    exits = server.manager.bus.queue("exit")
    r = client.post(f"/processes/svc/_signal/{sig}")
    assert (r.status_code, r.json()) == (200, {"ok": True})
    event = next_event(exits)
    assert (event["pid"], event["exit_status"], event["term_signal"]) == (1, 0, signal.SIGTERM)
    wait_for(lambda: pids(client, "svc") == [2])  # not stopped: replaced
    exits.close()


def test_signal_reaches_every_process_of_the_template(
    client: httpx.Client, server: LiveServer
) -> None:
    create(client, "svc", numprocesses=2)
    exits = server.manager.bus.queue("exit")
    assert client.post("/processes/svc/_signal/HUP").status_code == 200
    got = {next_event(exits)["pid"]: None, next_event(exits)["pid"]: None}
    assert set(got) == {1, 2}
    exits.close()


def test_get_pids_and_unknown_actions(client: httpx.Client) -> None:
    create(client, "svc", numprocesses=2)
    r = client.get("/processes/svc/_pids")
    assert (r.status_code, r.json()) == (200, {"ok": True, "pids": [1, 2]})
    assert client.get("/processes/svc/_pids/ignored").json() == {"ok": True, "pids": [1, 2]}
    error(client.get("/processes/svc/_start"), 404, "resource_not_found")
    error(client.post("/processes/svc/_bogus"), 404, "resource_not_found")
    error(client.post("/processes/svc/_pids"), 404, "resource_not_found")
    error(client.post("/processes/svc/restart"), 404, "resource_not_found")


def test_template_action_errors(client: httpx.Client) -> None:
    # The name is checked before the action.
    error(client.post("/processes/nope/_bogus"), 404, "not_found")
    error(client.get("/processes/nope/_pids"), 404, "not_found")
    error(client.post("/processes/nope/_start"), 404, "not_found")
    create(client, "svc")
    error(client.post("/processes/svc/_signal"), 400, "no_signal_number")
    error(client.post("/processes/svc/_signal/NOPE"), 400, "bad_value")
    error(client.post("/processes/svc/_signal/999"), 400, "bad_value")
    error(client.post("/processes/svc/_add/x"), 400, "bad_value")
    error(client.post("/processes/svc/_sub/1.5"), 400, "bad_value")
    assert pids(client, "svc") == [1]
    assert client.get("/status/svc").json()["max_processes"] == 1


# -- pid actions ----------------------------------------------------------------------


def test_pid_stop_is_like_delete(client: httpx.Client, server: LiveServer) -> None:
    create_term_ignorer(client, server, "svc")
    r = client.post("/processes/1/_stop")
    assert (r.status_code, r.json()) == (200, {"ok": True})
    assert pids(client, "svc") == []
    wait_for(lambda: pids(client, "svc") == [2])


@pytest.mark.parametrize("sig", ["15", "TERM", "SIGTERM"])
def test_pid_signal(client: httpx.Client, server: LiveServer, sig: str) -> None:
    create(client, "svc", numprocesses=2)
    exits = server.manager.bus.queue("exit")
    r = client.post(f"/processes/2/_signal/{sig}")
    assert (r.status_code, r.json()) == (200, {"ok": True})
    event = next_event(exits)
    assert (event["pid"], event["term_signal"]) == (2, signal.SIGTERM)
    wait_for(lambda: pids(client, "svc") == [1, 3])
    exits.close()


def test_pid_action_errors(client: httpx.Client) -> None:
    create(client, "svc")
    error(client.post("/processes/9/_stop"), 404, "not_found")
    error(client.post("/processes/9/_signal/15"), 404, "not_found")
    error(client.post("/processes/1/_signal"), 400, "no_signal_number")
    error(client.post("/processes/1/_signal/abc"), 400, "bad_value")
    error(client.post("/processes/1/_bogus"), 404, "resource_not_found")
    error(client.post("/processes/1/_restart"), 404, "resource_not_found")
    for path in ("/processes/1/_stop", "/processes/1/_signal/15", "/processes/9/_pids"):
        error(client.get(path), 405, "method_not_allowed")
    assert pids(client, "svc") == [1]


# -- /status ----------------------------------------------------------------------------


def test_status(client: httpx.Client) -> None:
    create(client, "svc", numprocesses=3)
    r = client.get("/status/svc")
    assert r.status_code == 200
    assert r.json() == {
        "active": True,
        "running": 3,
        "max_processes": 3,
        "state": "running",
        "restarts": 0,
        "failures": 0,
        "retry_in": None,
        "ready": 3,
    }
    error(client.get("/status/none"), 404, "not_found")


def test_a_crashing_false_backs_off_by_default(client: httpx.Client, server: LiveServer) -> None:
    """Issue 13: `false` without flapping made 1,793 spawns in 2 s; now its delays double."""
    spawned: list[float] = []
    server.manager.bus.subscribe("proc.crash.spawn", lambda e, p: spawned.append(time.monotonic()))
    r = client.post("/processes", json={"name": "crash", "cmd": "false"})
    assert r.status_code == 200
    wait_for(lambda: len(spawned) >= 6, timeout=8)  # about 0, 0.1, 0.3, 0.7, 1.5 and 3.1 s
    gaps = [b - a for a, b in itertools.pairwise(spawned[:6])]
    assert gaps[0] >= 0.09  # 0.1 s less up to 10 % jitter
    assert all(later > 1.5 * earlier for earlier, later in itertools.pairwise(gaps)), gaps
    assert spawned[5] - spawned[0] > 2.5  # six spawns in 2.5 s or more, not thousands
    status = wait_for(
        lambda: (s := client.get("/status/crash").json())["state"] == "backoff" and s, timeout=5
    )
    assert status["active"] is False and status["running"] == 0
    assert status["restarts"] >= 6 and status["failures"] >= 6
    assert 0 < status["retry_in"] <= 6.4
    client.post("/processes/crash/_stop")
    assert client.get("/status/crash").json()["state"] == "stopped"
