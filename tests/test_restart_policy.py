"""restart = always|on-failure|never and the per-template backoff, with real children."""

from __future__ import annotations

import time
from typing import Any

import pytest

from gaffer_gevent.errors import BadValue, InvalidProcessInfo
from gaffer_gevent.manager import Manager
from gaffer_gevent.process import ProcessState
from gaffer_gevent.template import ProcessTemplate
from tests.helpers import holds, wait_for


def add(manager: Manager, name: str, **fields: Any) -> None:
    manager.add_template(ProcessTemplate.from_json({"name": name, **fields}))


def record(manager: Manager, pattern: str = ".") -> list[tuple[float, dict[str, Any]]]:
    events: list[tuple[float, dict[str, Any]]] = []
    manager.bus.subscribe(
        pattern, lambda event, payload: events.append((time.monotonic(), payload))
    )
    return events


def events_named(events: list[tuple[float, dict[str, Any]]], name: str) -> list[dict[str, Any]]:
    return [payload for _, payload in events if payload["event"] == name]


def test_never_completes_and_is_not_refilled(manager: Manager) -> None:
    events = record(manager)
    add(manager, "job", cmd="true", restart="never", numprocesses=2)
    wait_for(lambda: len(events_named(events, "proc.job.completed")) == 2)
    state = manager.state("job")
    assert [p.state for p in state.finished] == [ProcessState.COMPLETED] * 2
    assert manager.pids("job") == [1, 2]  # listed, as completed
    holds(lambda: len(events_named(events, "spawn")) == 2, 0.3)  # not refilled
    status = manager.status("job")
    assert status["state"] == "completed"
    assert (status["completed"], status["failed"], status["running"]) == (2, 0, 0)


def test_never_marks_a_failing_exit_failed(manager: Manager) -> None:
    events = record(manager, "proc.bad")
    add(manager, "bad", cmd="sh", args=["-c", "exit 3"], restart="never")
    wait_for(lambda: events_named(events, "proc.bad.failed"))
    (failed,) = events_named(events, "proc.bad.failed")
    assert (failed["pid"], failed["exit_status"]) == (1, 3)
    assert manager.status("bad")["state"] == "failed"
    holds(lambda: len(events_named(events, "proc.bad.spawn")) == 1, 0.3)


def test_on_failure_restarts_on_exit_1_but_not_on_exit_0(manager: Manager, tmp_path: Any) -> None:
    events = record(manager, "proc.flaky")
    marker = tmp_path / "second"
    # The first run exits 1, the second exits 0.
    script = f"if [ -e {marker} ]; then exit 0; else touch {marker}; exit 1; fi"
    add(manager, "flaky", cmd="sh", args=["-c", script], restart="on-failure", restart_jitter=0)
    wait_for(lambda: events_named(events, "proc.flaky.completed"))
    exits = [e["exit_status"] for e in events_named(events, "proc.flaky.exit")]
    assert exits == [1, 0]
    assert len(events_named(events, "proc.flaky.spawn")) == 2
    holds(lambda: len(events_named(events, "proc.flaky.spawn")) == 2, 0.3)
    # a start runs it again (the completed slot is cleared)
    manager.start_template("flaky")
    wait_for(lambda: len(events_named(events, "proc.flaky.completed")) == 2)


def test_restart_delay_is_applied(manager: Manager) -> None:
    events = record(manager, "proc.crash")
    add(manager, "crash", cmd="false", restart_delay=0.4, restart_jitter=0)
    wait_for(lambda: len(events_named(events, "proc.crash.spawn")) >= 2, timeout=5)
    times = [t for t, p in events if p["event"] == "proc.crash.spawn"]
    exit_at = next(t for t, p in events if p["event"] == "proc.crash.exit")
    assert times[1] - exit_at >= 0.35
    (backoff, *_) = events_named(events, "proc.crash.backoff")
    assert backoff["delay"] == 0.4
    manager.stop_template("crash")


def test_max_restart_delay_caps_the_backoff(manager: Manager) -> None:
    body = {"name": "capped", "cmd": "false", "restart_delay": 0.2, "max_restart_delay": 0.3}
    manager.add_template(ProcessTemplate.from_json(body), start=False)
    state = manager.state("capped")
    assert (state.backoff.config.first_delay, state.backoff.config.max_delay) == (0.2, 0.3)
    assert state.backoff.config.delay(5) == 0.3


def test_always_is_the_default(manager: Manager) -> None:
    add(manager, "loop", cmd="true", restart_jitter=0)
    wait_for(lambda: manager.state("loop").restarts >= 1)
    assert manager.state("loop").finished == []
    manager.stop_template("loop")


@pytest.mark.parametrize(
    ("fields", "error", "field"),
    [
        ({"restart": "sometimes"}, BadValue, "restart"),
        ({"restart": 1}, InvalidProcessInfo, "restart"),
        ({"restart_delay": float("nan")}, BadValue, "restart_delay"),
        ({"restart_delay": float("inf")}, BadValue, "restart_delay"),
        ({"restart_delay": 0}, BadValue, "restart_delay"),
        ({"restart_delay": 1e308}, BadValue, "restart_delay"),
        ({"restart_delay": 10**400}, BadValue, "restart_delay"),
        ({"restart_delay": "1"}, InvalidProcessInfo, "restart_delay"),
        ({"restart_delay": 5, "max_restart_delay": 1}, BadValue, "restart_delay"),
        ({"max_restart_delay": -1}, BadValue, "max_restart_delay"),
        ({"restart_jitter": 1}, BadValue, "restart_jitter"),
        ({"restart_jitter": True}, InvalidProcessInfo, "restart_jitter"),
    ],
)
def test_hostile_restart_settings_are_refused(
    fields: dict[str, Any], error: type[Exception], field: str
) -> None:
    with pytest.raises(error) as caught:
        ProcessTemplate.from_json({"name": "x", "cmd": "true", **fields})
    assert getattr(caught.value, "field", None) == field
