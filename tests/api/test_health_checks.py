"""Readiness and liveness checks over real HTTP, with real children (issue 15).

Each kind of check against a child built for it (tests/children/): an HTTP
server healthy after a delay, a script printing "ready" late, a child speaking
systemd's notify protocol. Every wait is on an event or a condition, bounded.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from gaffer_gevent.flapping import BackoffConfig
from gaffer_gevent.manager import Manager
from gaffer_gevent.process import Process
from tests.api.support import error
from tests.conftest import LiveServer, managed
from tests.helpers import child, free_port, holds, self_signed_cert, wait_for

FAST = {"period": 0.1, "timeout": 0.5}
#: Restarts after liveness failures follow the backoff: fast here, giving up at the 3rd.
BACKOFF = BackoffConfig(first_delay=0.02, max_delay=0.1, reset_after=0.5, give_up_after=3)


@pytest.fixture
def manager() -> Iterator[Manager]:
    yield from managed(backoff=BACKOFF)


def events_of(events: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in events if e.get("event") == name]


def record_events(server: LiveServer, name: str) -> list[dict[str, Any]]:
    """Every ``proc.<name>.*`` event, each payload with its event name."""
    found: list[dict[str, Any]] = []

    def listener(event: str, payload: dict[str, Any]) -> None:
        found.append({**payload, "event": event.rsplit(".", 1)[1]})

    server.manager.bus.subscribe(f"proc.{name}", listener)
    return found


def create(client: httpx.Client, name: str, fields: dict[str, Any]) -> None:
    r = client.post("/processes", json={"name": name, **fields})
    assert r.status_code == 200, r.text


def one_pid(client: httpx.Client, name: str) -> int:
    pids = wait_for(lambda: client.get(f"/processes/{name}/_pids").json()["pids"], timeout=10)
    assert len(pids) == 1, pids
    return int(pids[0])


def state_of(client: httpx.Client, pid: int) -> str:
    r = client.get(f"/processes/{pid}")
    assert r.status_code == 200, r.text
    return str(r.json()["state"])


def process_of(server: LiveServer, pid: int) -> Process:
    return server.manager.get_process(pid)


def http_server(port: int, *args: str) -> dict[str, Any]:
    return {**child("health_server", "$PORT", *args), "env": {"PORT": str(port)}}


def test_a_pid_without_readiness_check_is_ready_at_spawn(
    client: httpx.Client, server: LiveServer
) -> None:
    events = record_events(server, "plain")
    create(client, "plain", {"cmd": "sleep", "args": ["30"]})
    pid = one_pid(client, "plain")
    ready = wait_for(lambda: events_of(events, "ready"), timeout=10)
    assert ready[0]["pid"] == pid and ready[0]["reason"] == "no readiness check"
    assert [e["event"] for e in events].index("spawn") < [e["event"] for e in events].index("ready")
    assert state_of(client, pid) == "running"
    assert client.get("/processes/plain/_pids", params={"state": "ready"}).json()["pids"] == [pid]
    assert client.get("/status/plain").json()["ready"] == 1
    assert client.get("/ready").json() == {"ready": True}
    (entry,) = [s for s in client.get("/stats").json() if s["name"] == "plain"]
    assert entry["stats"][0]["state"] == "running"


def test_http_readiness_waits_for_the_server(
    client: httpx.Client, server: LiveServer, tmp_path: Path
) -> None:
    port = free_port()
    gate = tmp_path / "healthy"
    events = record_events(server, "web")
    readiness = {"http": "http://127.0.0.1:$PORT/health", **FAST}
    create(client, "web", {**http_server(port, str(gate)), "readiness": readiness})
    pid = one_pid(client, "web")
    checks = process_of(server, pid).checks
    assert checks is not None
    wait_for(lambda: checks.last.get("readiness", {}).get("detail") == "HTTP 503", timeout=10)
    assert state_of(client, pid) == "starting"
    r = client.get("/ready")
    assert r.status_code == 503, r.text
    assert r.json() == {"ready": False, "not_ready": [{"name": "web", "pid": pid,
                                                       "state": "starting"}]}  # fmt: skip
    assert client.get("/processes/web/_pids", params={"state": "ready"}).json()["pids"] == []
    assert client.get("/processes/web/_pids", params={"state": "starting"}).json()["pids"] == [pid]
    assert client.get("/status/web").json()["ready"] == 0
    last = client.get(f"/processes/{pid}").json()["checks"]
    assert last == {"readiness": {"passed": False, "detail": "HTTP 503"}}
    gate.touch()
    ready = wait_for(lambda: events_of(events, "ready"), timeout=10)
    assert ready[0] | {"pid": pid, "reason": "http", "detail": "HTTP 200"} == ready[0]
    assert state_of(client, pid) == "ready"
    assert client.get("/processes/web/_pids", params={"state": "ready"}).json()["pids"] == [pid]
    assert client.get("/status/web").json()["ready"] == 1
    assert client.get("/ready").json() == {"ready": True}


def test_tcp_readiness_passes_once_the_port_listens(
    client: httpx.Client, server: LiveServer
) -> None:
    port = free_port()
    events = record_events(server, "db")
    create(client, "db", {**http_server(port), "readiness": {"tcp": f"127.0.0.1:{port}", **FAST}})
    pid = one_pid(client, "db")
    wait_for(lambda: events_of(events, "ready"), timeout=10)
    assert state_of(client, pid) == "ready"


def test_log_readiness_waits_for_the_line(
    client: httpx.Client, server: LiveServer, tmp_path: Path
) -> None:
    gate = tmp_path / "go"
    events = record_events(server, "late")
    readiness = {"log": r"ready on port \d+", "label": "out"}
    create(client, "late", {**child("late_ready", str(gate)), "redirect_output": ["out", "err"],
                            "readiness": readiness})  # fmt: skip
    pid = one_pid(client, "late")
    stream = process_of(server, pid).streams["out"]
    wait_for(lambda: stream.last_seq >= 1, timeout=10)  # "starting": not the line it waits for
    assert state_of(client, pid) == "starting"
    gate.touch()
    ready = wait_for(lambda: events_of(events, "ready"), timeout=10)
    assert ready[0]["detail"] == "server ready on port 1234"
    assert state_of(client, pid) == "ready"


def notify_socket_of(os_pid: int) -> str:
    """The child's ``NOTIFY_SOCKET``, once it runs its program: between fork and exec,
    ``/proc/<pid>/environ`` is still its parent's, without one."""

    def value() -> bytes | None:
        environ = Path(f"/proc/{os_pid}/environ").read_bytes().split(b"\0")
        found = [v for v in environ if v.startswith(b"NOTIFY_SOCKET=")]
        return found[0] if found else None

    return str(wait_for(value, timeout=10).split(b"=", 1)[1].decode())


def test_notify_ready_and_status(client: httpx.Client, server: LiveServer) -> None:
    events = record_events(server, "svc")
    create(client, "svc", {**child("notifier", "0.3"), "readiness": {"notify": True}})
    pid = one_pid(client, "svc")
    address = notify_socket_of(process_of(server, pid).os_pid)
    assert address.startswith("@gaffer-gevent/")
    wait_for(lambda: events_of(events, "ready"), timeout=10)
    body = client.get(f"/processes/{pid}").json()
    assert body["state"] == "ready"
    assert body["status_text"] == "serving"


def test_notify_from_another_process_group_is_ignored(
    client: httpx.Client, server: LiveServer
) -> None:
    create(client, "svc", {**child("notifier", "60"), "readiness": {"notify": True}})
    pid = one_pid(client, "svc")
    process = process_of(server, pid)
    address = "\0" + notify_socket_of(process.os_pid)[1:]
    assert process.checks is not None and process.checks.notify is not None
    notify = process.checks.notify
    wait_for(lambda: notify.status_text == "starting", timeout=10)  # the child's own is heard
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"READY=1\nSTATUS=forged", address)  # from the test's process group
    wait_for(lambda: notify.ignored == 1, timeout=10)
    assert state_of(client, pid) == "starting"
    assert client.get(f"/processes/{pid}").json()["status_text"] == "starting"


def test_notify_watchdog_silence_restarts_the_pid(client: httpx.Client, server: LiveServer) -> None:
    events = record_events(server, "dog")
    liveness = {"notify": True, "period": 0.2, "failure_threshold": 2}
    create(client, "dog", {**child("notifier", "0", "3"), "liveness": liveness})
    pid = one_pid(client, "dog")
    assert f"WATCHDOG_USEC={200000}".encode() in Path(
        f"/proc/{process_of(server, pid).os_pid}/environ"
    ).read_bytes().split(b"\0")
    unhealthy = wait_for(lambda: events_of(events, "unhealthy"), timeout=10)
    assert unhealthy[0]["pid"] == pid and unhealthy[0]["reason"] == "liveness"
    respawned = wait_for(lambda: [e for e in events_of(events, "spawn") if e["pid"] != pid], 10)
    assert respawned
    assert client.get("/status/dog").json()["restarts"] >= 1


def test_liveness_failure_restarts_the_pid(
    client: httpx.Client, server: LiveServer, tmp_path: Path
) -> None:
    port = free_port()
    fail = tmp_path / "fail"
    events = record_events(server, "live")
    # initial_delay: Python takes a while to listen; a check before that would fail.
    liveness = {"http": f"http://127.0.0.1:{port}/health", "failure_threshold": 2,
                "initial_delay": 1.0, **FAST}  # fmt: skip
    create(client, "live", {**http_server(port, "0", str(fail)), "liveness": liveness})
    pid = one_pid(client, "live")
    checks = process_of(server, pid).checks
    assert checks is not None
    wait_for(lambda: checks.last.get("liveness", {}).get("passed"), timeout=10)
    holds(lambda: not events_of(events, "unhealthy"), 0.3)  # healthy: the checks pass
    fail.touch()
    unhealthy = wait_for(lambda: events_of(events, "unhealthy"), timeout=10)
    assert unhealthy[0]["pid"] == pid
    assert unhealthy[0]["reason"] == "liveness" and unhealthy[0]["detail"] == "HTTP 500"
    exits = wait_for(lambda: [e for e in events_of(events, "exit") if e["pid"] == pid], 10)
    assert exits
    fail.unlink()
    new = wait_for(lambda: [e["pid"] for e in events_of(events, "spawn") if e["pid"] != pid], 10)
    assert client.get("/status/live").json()["restarts"] == 1
    wait_for(lambda: client.get("/processes/live/_pids").json()["pids"] == new[:1], timeout=10)


def test_readiness_failure_after_ready_is_not_ready_without_restart(
    client: httpx.Client, server: LiveServer, tmp_path: Path
) -> None:
    port = free_port()
    fail = tmp_path / "fail"
    events = record_events(server, "web")
    readiness = {"http": f"http://127.0.0.1:{port}/health", "failure_threshold": 2, **FAST}
    create(client, "web", {**http_server(port, "0", str(fail)), "readiness": readiness})
    pid = one_pid(client, "web")
    wait_for(lambda: events_of(events, "ready"), timeout=10)
    fail.touch()
    lost = wait_for(lambda: events_of(events, "unhealthy"), timeout=10)
    assert lost[0]["pid"] == pid and lost[0]["reason"] == "readiness"
    assert state_of(client, pid) == "starting"
    assert client.get("/ready").status_code == 503
    fail.unlink()
    wait_for(lambda: len(events_of(events, "ready")) == 2, timeout=10)
    assert state_of(client, pid) == "ready"
    assert client.get("/processes/web/_pids").json()["pids"] == [pid]  # never restarted
    assert not events_of(events, "exit")


def sleepers(marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.cmdline()[-1:] == [marker] or marker in " ".join(proc.cmdline()[2:]):
                found.append(proc)
        except psutil.Error:
            pass
    return found


def test_an_exec_check_that_hangs_is_killed_with_its_group(
    client: httpx.Client, server: LiveServer
) -> None:
    # The check starts a grandchild too: the whole group must go at the timeout.
    # One run (a long period): its group must be gone at its timeout, the pid still running.
    readiness = {"exec": ["sh", "-c", "sleep 31.5 & exec sleep 31.5"], "timeout": 0.3,
                 "period": 60}  # fmt: skip
    create(client, "hang", {"cmd": "sleep", "args": ["30"], "readiness": readiness})
    pid = one_pid(client, "hang")
    checks = process_of(server, pid).checks
    assert checks is not None
    wait_for(lambda: sleepers("31.5"), timeout=10)  # a run started
    wait_for(lambda: checks.last.get("readiness", {}).get("detail") == "timed out after 0.3 s",
             timeout=10)  # fmt: skip
    wait_for(lambda: not sleepers("31.5"), timeout=10)  # none left, each reaped
    assert state_of(client, pid) == "starting"


def test_an_exec_check_passes_on_exit_zero(client: httpx.Client, server: LiveServer) -> None:
    events = record_events(server, "ok")
    readiness = {"exec": ["sh", "-c", 'test -n "$TOKEN"'], **FAST}
    create(client, "ok", {"cmd": "sleep", "args": ["30"], "env": {"TOKEN": "x"},
                          "readiness": readiness})  # fmt: skip
    ready = wait_for(lambda: events_of(events, "ready"), timeout=10)
    assert ready[0]["detail"] == "exit status 0"


HOSTILE = [
    ({"readiness": {"tcp": "127.0.0.1:1", "failure_threshold": 10**30}}, "bad_value",
     "readiness.failure_threshold"),
    ({"readiness": {"tcp": "127.0.0.1:1", "period": 1e308}}, "bad_value", "readiness.period"),
    ({"readiness": {"tcp": "127.0.0.1:1", "period": 0}}, "bad_value", "readiness.period"),
    ({"readiness": {"tcp": "127.0.0.1:1", "timeout": -1}}, "bad_value", "readiness.timeout"),
    ({"readiness": {"tcp": "127.0.0.1:1", "initial_delay": True}}, "invalid_process_info",
     "readiness.initial_delay"),
    ({"readiness": {"log": "(unclosed"}, "redirect_output": ["stdout"]}, "bad_value",
     "readiness.log"),
    ({"readiness": {"log": "x", "label": "../x"}, "redirect_output": ["stdout"]}, "bad_value",
     "readiness.label"),
    ({"readiness": {"log": "x", "label": "err"}, "redirect_output": ["out"]}, "bad_value",
     "readiness.label"),
    ({"liveness": {"log": "x"}, "redirect_output": ["stdout"]}, "bad_value", "liveness.log"),
    ({"readiness": {"http": "http://127.0.0.1/\r\nX-Evil: 1"}}, "bad_value", "readiness.http"),
    ({"readiness": {"http": "ftp://127.0.0.1/"}}, "bad_value", "readiness.http"),
    ({"readiness": {"http": "http://user:pw@127.0.0.1/"}}, "bad_value", "readiness.http"),
    ({"readiness": {"http": "http://127.0.0.1:99999/"}}, "bad_value", "readiness.http"),
    ({"readiness": {"http": "http://[::1/"}}, "bad_value", "readiness.http"),
    ({"readiness": {"http": "http://127.0.0.1/$"}}, "bad_value", "readiness.http"),
    ({"readiness": {"tcp": "../etc:80"}}, "bad_value", "readiness.tcp"),
    ({"readiness": {"tcp": "127.0.0.1:80\n"}}, "bad_value", "readiness.tcp"),
    ({"readiness": {"tcp": "127.0.0.1:+80"}}, "bad_value", "readiness.tcp"),
    ({"readiness": {"tcp": "127.0.0.1"}}, "bad_value", "readiness.tcp"),
    ({"readiness": {"exec": "pg_isready -q"}}, "invalid_process_info", "readiness.exec"),
    ({"readiness": {"exec": []}}, "bad_value", "readiness.exec"),
    ({"readiness": {"exec": ["a"] * 1000}}, "bad_value", "readiness.exec"),
    ({"readiness": {"exec": ["true", "x\0y"]}}, "bad_value", "readiness.exec"),
    ({"readiness": {"notify": "yes"}}, "bad_value", "readiness.notify"),
    ({"readiness": {"tcp": "127.0.0.1:1", "http": "http://127.0.0.1/"}},
     "invalid_process_info", "readiness"),
    ({"readiness": {}}, "invalid_process_info", "readiness"),
    ({"readiness": ["tcp"]}, "invalid_process_info", "readiness"),
    ({"readiness": {"tcp": "127.0.0.1:1", "evil\nkey": 1}}, "invalid_process_info",
     "unknown key 'evil\\\\nkey'"),
    ({"liveness": {"tcp": "127.0.0.1:1", "success_threshold": 2}}, "bad_value",
     "liveness.success_threshold"),
]  # fmt: skip


@pytest.mark.parametrize(("fields", "code", "field"), HOSTILE)
def test_hostile_checks_are_refused_naming_the_field(
    client: httpx.Client, fields: dict[str, Any], code: str, field: str | None
) -> None:
    r = client.post("/processes", json={"name": "bad", "cmd": "sleep", "args": ["30"], **fields})
    error(r, 400, code)
    if field is not None:
        assert field in r.json()["reason"], r.json()
    assert "\n" not in r.json()["reason"]  # escaped: no fake log or terminal lines
    assert client.get("/processes").json() == []


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_nan_and_infinity_are_refused(client: httpx.Client, number: str) -> None:
    check = f'{{"tcp": "127.0.0.1:1", "period": {number}}}'
    body = f'{{"name": "bad", "cmd": "sleep", "readiness": {check}}}'
    r = client.post("/processes", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["error"] in ("invalid_json", "bad_value")


def test_a_bad_state_filter_is_refused(client: httpx.Client) -> None:
    create(client, "plain", {"cmd": "sleep", "args": ["30"], "start": False})
    error(client.get("/processes/plain/_pids", params={"state": "bogus\n"}), 400, "bad_value")


def test_checks_are_echoed_and_kept_by_put(client: httpx.Client, server: LiveServer) -> None:
    readiness = {"tcp": "127.0.0.1:$PORT", "period": 2}
    create(client, "echo", {"cmd": "sleep", "args": ["30"], "readiness": readiness,
                            "start": False})  # fmt: skip
    assert client.get("/processes/echo").json()["readiness"] == readiness


@pytest.mark.parametrize(
    ("env", "detail"),
    [
        ({}, "cannot substitute $PORT"),
        ({"PORT": "80/ HTTP/1.1\r\nX-Evil: 1\r\n"},
         "the URL has spaces or control characters after substitution"),
    ],
)  # fmt: skip
def test_a_substitution_that_fails_is_a_failed_check(
    client: httpx.Client, server: LiveServer, env: dict[str, str], detail: str
) -> None:
    readiness = {"http": "http://127.0.0.1:$PORT/health", **FAST}
    create(client, "sub", {"cmd": "sleep", "args": ["30"], "os_env": False, "env": env,
                           "readiness": readiness})  # fmt: skip
    pid = one_pid(client, "sub")
    checks = process_of(server, pid).checks
    assert checks is not None
    wait_for(lambda: checks.last.get("readiness", {}).get("detail") == detail, timeout=10)
    assert state_of(client, pid) == "starting"


def test_an_exec_check_running_when_its_pid_exits_is_killed(
    client: httpx.Client, server: LiveServer
) -> None:
    readiness = {"exec": ["sleep", "31.7"], "timeout": 30}
    create(client, "busy", {"cmd": "sleep", "args": ["30"], "readiness": readiness})
    one_pid(client, "busy")
    wait_for(lambda: sleepers("31.7"), timeout=10)
    assert client.post("/processes/busy/_stop").status_code == 200
    wait_for(lambda: not sleepers("31.7"), timeout=10)


def test_the_notify_socket_is_gone_with_its_pid(client: httpx.Client, server: LiveServer) -> None:
    events = record_events(server, "svc")
    create(client, "svc", {**child("notifier", "0"), "readiness": {"notify": True}})
    pid = one_pid(client, "svc")
    address = "\0" + notify_socket_of(process_of(server, pid).os_pid)[1:]
    wait_for(lambda: events_of(events, "ready"), timeout=10)
    assert client.post("/processes/svc/_stop").status_code == 200
    wait_for(lambda: events_of(events, "exit"), timeout=10)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock, pytest.raises(OSError):
        sock.sendto(b"READY=1", address)


def test_https_readiness_does_not_verify_the_certificate(
    client: httpx.Client, server: LiveServer, tmp_path: Path
) -> None:
    cert, key = self_signed_cert(tmp_path)
    port = free_port()
    events = record_events(server, "tls")
    fields = http_server(port)
    fields["env"].update(HEALTH_CERT=str(cert), HEALTH_KEY=str(key))
    readiness = {"http": f"https://127.0.0.1:{port}/health", **FAST}
    create(client, "tls", {**fields, "readiness": readiness})
    ready = wait_for(lambda: events_of(events, "ready"), timeout=10)
    assert ready[0]["detail"] == "HTTP 200"


def test_liveness_failures_count_as_crashes_until_the_template_fails(
    client: httpx.Client, server: LiveServer
) -> None:
    events = record_events(server, "dead")
    liveness = {"tcp": f"127.0.0.1:{free_port()}", "period": 0.05, "failure_threshold": 1}
    create(client, "dead", {"cmd": "sleep", "args": ["30"], "liveness": liveness})
    wait_for(lambda: events_of(events, "failed"), timeout=10)
    assert len(events_of(events, "unhealthy")) == 3
    status = client.get("/status/dead").json()
    assert (status["state"], status["restarts"], status["failures"]) == ("failed", 2, 3)
