"""The manager with real children: respawn, flapping, stop of whole trees, no leaks."""

from __future__ import annotations

import gc
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gevent
import psutil
import pytest

from gaffer_gevent.errors import BadValue, NotFound
from gaffer_gevent.flapping import BackoffConfig
from gaffer_gevent.limits import ProcessLimits
from gaffer_gevent.manager import SPAWN_BATCH, Manager
from gaffer_gevent.template import ProcessTemplate
from tests.conftest import managed
from tests.helpers import child, holds, wait_for


def add(manager: Manager, name: str, start: bool = True, **fields: Any) -> ProcessTemplate:
    template = ProcessTemplate.from_json({"name": name, **fields})
    manager.add_template(template, start=start)
    return template


def record(manager: Manager, pattern: str = ".") -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    manager.bus.subscribe(pattern, lambda event, payload: events.append(payload))
    return events


def arrivals(manager: Manager, pattern: str) -> list[float]:
    """When each event matching ``pattern`` arrived (monotonic seconds): rates are asserted
    from the gap between two events waited for, not from a count after a sleep."""
    times: list[float] = []
    manager.bus.subscribe(pattern, lambda event, payload: times.append(time.monotonic()))
    return times


def test_sigkilled_child_respawns_under_a_new_pid(manager: Manager) -> None:
    events = record(manager, "exit")
    add(manager, "sleeper", cmd="sleep 600")
    first = manager.running[1]
    os.kill(first.os_pid, signal.SIGKILL)
    wait_for(lambda: manager.pids("sleeper") == [2])
    wait_for(lambda: events)
    assert events[0] == {
        "event": "exit", "name": "sleeper", "pid": 1, "exit_status": 0,
        "term_signal": signal.SIGKILL, "os_pid": first.os_pid,
    }  # fmt: skip
    assert manager.running[2].os_pid != first.os_pid


def test_flapping_stops_retries_then_gives_up(manager: Manager) -> None:
    events = record(manager)
    flapping = {"attempts": 2, "window": 5, "retry_in": 0.2, "max_retry": 2}
    add(manager, "crash", cmd="false", flapping=flapping)
    wait_for(lambda: sum(e["event"] == "flap" for e in events) == 3, timeout=15)
    state = manager.states["crash"]
    wait_for(lambda: state.stopped and state.retry_timer is None and not manager.stopping)
    spawns = [e["pid"] for e in events if e["event"] == "spawn"]
    assert spawns == [1, 2, 3, 4]
    # retry_in is 0.2 s: a retry would fire within 0.5 s
    holds(lambda: [e["pid"] for e in events if e["event"] == "spawn"] == [1, 2, 3, 4], 0.5)


def test_stop_cancels_a_pending_flapping_retry(manager: Manager) -> None:
    events = record(manager, "spawn")
    add(manager, "crash", cmd="false", flapping={"attempts": 1, "window": 5, "retry_in": 0.3})
    wait_for(lambda: manager.states["crash"].retry_timer is not None)
    manager.stop_template("crash")
    assert manager.states["crash"].retry_timer is None
    holds(lambda: len(events) == 1, 0.6)  # the retry was due 0.3 s after the crash


def test_child_ignoring_sigterm_is_killed_after_graceful_timeout(manager: Manager) -> None:
    events = record(manager, "exit")
    add(manager, "stubborn", graceful_timeout=0.3, redirect_output=["out"], **child("ignore_term"))
    process = manager.running[1]
    sub = process.stream("out").subscribe(since=0)
    wait_for(lambda: sub.take())  # it has installed its handler
    manager.stop_template("stubborn")
    wait_for(lambda: events, timeout=5)
    assert events[0]["term_signal"] == signal.SIGKILL


@pytest.mark.parametrize("leader_exits", [False, True])
def test_grandchildren_do_not_outlive_the_process(manager: Manager, leader_exits: bool) -> None:
    args = ["exit"] if leader_exits else []
    fields = child("forker", *args)
    add(manager, "tree", redirect_output=["out"], start=False, **fields)
    manager.states["tree"].template.numprocesses = 1
    manager.start_template("tree")
    process = manager.running[1]
    sub = process.stream("out").subscribe(since=0)
    line = wait_for(lambda: b"".join(c.data for c in sub.take() if hasattr(c, "data")))
    grandchild = psutil.Process(int(line.split()[1]))
    if not leader_exits:
        manager.stop_template("tree")
    wait_for(lambda: not process.alive, timeout=10)
    wait_for(lambda: not _alive(grandchild), timeout=5)


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_missing_executable_neither_crashes_nor_busy_loops(manager: Manager) -> None:
    events = record(manager, "exit")
    times = arrivals(manager, "exit")
    add(manager, "ghost", cmd="/nonexistent/program")
    wait_for(lambda: len(times) >= 2, timeout=5)
    assert events[0]["exit_status"] == 127
    assert times[1] - times[0] >= 0.5  # about one attempt a second, not thousands
    manager.stop_template("ghost")
    # the manager still works
    add(manager, "fine", cmd="sleep 600")
    assert manager.status("fine")["running"] == 1


def test_start_stop_cycles_leak_no_zombies_fds_or_greenlets(manager: Manager) -> None:
    me = psutil.Process()
    for i in range(50):
        add(manager, f"t{i}", start=False, cmd="sleep 600", numprocesses=2,
            redirect_output=["out", "err"], redirect_input=True)  # fmt: skip

    def cycle() -> None:
        for i in range(50):
            manager.start_template(f"t{i}")
        assert len(manager.running) == 100
        for i in range(50):
            manager.stop_template(f"t{i}")
        wait_for(lambda: not manager.stopping, timeout=20)

    cycle()  # warm up caches and pools
    gevent.sleep(0.1)
    fds, greenlets = me.num_fds(), _greenlet_count()
    for _ in range(9):
        cycle()
    # killed readers and finished exit handlers are gone after a loop turn or two
    wait_for(lambda: _greenlet_count() <= greenlets + 5, timeout=5)
    assert me.num_fds() <= fds
    zombies = [c for c in me.children() if c.status() == psutil.STATUS_ZOMBIE]
    assert zombies == []


def _greenlet_count() -> int:
    from greenlet import greenlet

    return sum(1 for o in gc.get_objects() if isinstance(o, greenlet) and not o.dead)


def test_flood_with_a_subscriber_that_never_reads_keeps_memory_bounded(manager: Manager) -> None:
    """What bounds memory is the ring and the idle cursor's lag (RSS: bench/flood_rss.py)."""
    add(manager, "flood", redirect_output=["out"], **child("flood"))
    stream = manager.running[1].stream("out")
    idle = stream.subscribe()
    wait_for(lambda: stream.total_bytes > 20 * 1024 * 1024, timeout=30)
    target = stream.total_bytes + 100 * 1024 * 1024
    wait_for(lambda: stream.total_bytes > target, timeout=60)
    assert stream.held_bytes <= stream.buffer_size + 65536
    assert stream.subscriptions == {idle}
    assert idle.stats()["lag_bytes"] <= stream.buffer_size + 65536
    assert idle.take()[0].chunks > 0  # type: ignore[union-attr]  # it is told what it missed
    manager.stop_template("flood")


def test_template_events_follow_spec_order(manager: Manager) -> None:
    events = record(manager)
    add(manager, "ord", cmd="sleep 600", numprocesses=2)
    manager.scale("ord", -1)
    manager.stop_template("ord")
    wait_for(lambda: sum(e["event"] == "exit" for e in events) == 2)
    names = [e["event"] for e in events if not e["event"].endswith("exit")]
    assert names == [
        "create", "start", "proc.ord.start", "spawn", "proc.ord.spawn", "ready",
        "proc.ord.ready", "spawn", "proc.ord.spawn", "ready", "proc.ord.ready", "update", "reap",
        "proc.ord.reap", "stop", "proc.ord.stop", "stop_pid", "proc.ord.stop_pid",
    ]  # fmt: skip


def test_restart_gives_fresh_pids_and_update_replaces_settings(manager: Manager) -> None:
    add(manager, "r", cmd="sleep 600", numprocesses=2)
    manager.restart_template("r")
    assert manager.pids("r") == [3, 4]
    manager.update_template(ProcessTemplate.from_json({"name": "r", "cmd": "sleep 500"}))
    assert manager.pids("r") == [5]
    assert manager.get_template("r").to_json() == {"name": "r", "cmd": "sleep 500"}


# -- bounds and spawn storms (issue 12) ---------------------------------------------------------


def test_limits_refuse_templates_and_scaling_beyond_them() -> None:
    manager = Manager(limits=ProcessLimits(max_processes=3, max_total_processes=4))
    try:
        add(manager, "a", start=False, cmd="sleep 600", numprocesses=3)
        with pytest.raises(BadValue, match="max_processes"):
            manager.scale("a", 1)
        assert manager.get_template("a").numprocesses == 3
        with pytest.raises(BadValue, match="max_total_processes"):
            add(manager, "b", start=False, cmd="sleep 600", numprocesses=2)
        assert manager.template_names() == ["a"]
        with pytest.raises(BadValue, match="max_processes"):
            manager.update_template(ProcessTemplate.from_json(
                {"name": "a", "cmd": "sleep 600", "numprocesses": 4}))  # fmt: skip
        assert manager.get_template("a").numprocesses == 3
        manager.scale("a", -2)
        add(manager, "b", start=False, cmd="sleep 600", numprocesses=3)
        with pytest.raises(BadValue, match="buffer_size"):
            add(manager, "c", start=False, cmd="x", numprocesses=0, buffer_size=65 * 1024 * 1024)
    finally:
        manager.stop_all(timeout=10)
        manager.bus.close()


def test_lookups_of_impossible_names_are_bad_values(manager: Manager) -> None:
    with pytest.raises(NotFound):
        manager.state("²")
    for name in ("42", "a\nb", "^", "n" * 129):
        with pytest.raises(BadValue):
            manager.state(name)


def test_many_processes_start_in_batches_and_a_stop_ends_the_storm(manager: Manager) -> None:
    add(manager, "storm", cmd="sleep 600", numprocesses=200)
    assert len(manager.running) == SPAWN_BATCH  # the rest after the call returned
    state = manager.states["storm"]
    assert state.spawner is not None
    wait_for(lambda: len(manager.running) > SPAWN_BATCH)
    manager.stop_template("storm")
    assert state.spawner is None
    spawned = manager._last_pid
    assert spawned < 200
    wait_for(lambda: not manager.stopping, timeout=20)
    assert manager._last_pid == spawned  # nothing spawned after the stop


def test_restart_of_a_large_template_replaces_every_process(manager: Manager) -> None:
    add(manager, "big", cmd="sleep 600", numprocesses=80)
    wait_for(lambda: manager.pids("big") == list(range(1, 81)), timeout=20)
    old = list(manager.running.values())
    manager.restart_template("big")
    wait_for(lambda: manager.pids("big") == list(range(81, 161)), timeout=20)
    wait_for(lambda: not any(p.alive for p in old), timeout=20)
    assert not manager.states["big"].outgoing


def test_a_large_template_that_cannot_start_tries_once_a_second(manager: Manager) -> None:
    events = record(manager, "spawn_error")
    times = arrivals(manager, "spawn_error")
    add(manager, "ghost", cmd="/nonexistent/program", numprocesses=300)
    wait_for(lambda: len(times) >= 2, timeout=5)
    assert "No such file" in events[0]["error"]
    assert times[1] - times[0] >= 0.5  # not 300 a second, and no spawner spinning on it
    wait_for(lambda: manager.states["ghost"].spawner is None, timeout=1)
    assert manager.states["ghost"].spawner is None
    manager.stop_template("ghost")


def test_emfile_makes_spawns_fail_with_an_event_not_a_loop(manager: Manager) -> None:
    events = record(manager, "spawn_error")
    times = arrivals(manager, "spawn_error")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    open_fds = len(os.listdir("/proc/self/fd"))
    resource.setrlimit(resource.RLIMIT_NOFILE, (open_fds + 24, hard))
    try:
        add(manager, "many", cmd="sleep 600", numprocesses=30, redirect_output=["out", "err"])
        wait_for(lambda: events)
        assert "Too many open files" in events[0]["error"]
        assert events[0]["name"] == "many" and events[0]["pid"] > 0
        wait_for(lambda: len(times) >= 2, timeout=5)
        assert times[1] - times[0] >= 0.5  # one attempt about once a second, not a loop
        assert len(manager.running) < 30
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    manager.stop_template("many")
    wait_for(lambda: not manager.stopping, timeout=20)


# -- crash loops (issue 13) ---------------------------------------------------------------------

FAST = BackoffConfig(first_delay=0.02, max_delay=0.1, reset_after=0.3, give_up_after=5)


@pytest.fixture
def fast() -> Iterator[Manager]:
    """A manager whose backoff runs a whole crash loop in about a second."""
    yield from managed(backoff=FAST)


def test_the_first_child_of_a_process_exiting_at_once_is_seen(tmp_path: Path) -> None:
    """A child that exits before the parent ever listened for SIGCHLD still reports its exit."""
    script = tmp_path / "first.py"
    script.write_text(
        "import os, sys, time\n"
        "import gevent\n"
        "from gaffer_gevent.spawn import fork_exec, watch_exit\n"
        "devnull = os.open(os.devnull, os.O_RDWR)\n"
        "pid = fork_exec(['true'], env=dict(os.environ), stdin=devnull, stdout=devnull,\n"
        "                stderr=devnull)\n"
        "time.sleep(0.2)  # not patched: the exit and its SIGCHLD happen now\n"
        "seen = []\n"
        "watch_exit(pid, seen.append)\n"
        "deadline = time.monotonic() + 5\n"
        "while not seen and time.monotonic() < deadline:\n"
        "    gevent.sleep(0.01)\n"
        "sys.exit(0 if seen else 1)\n"
    )
    done = subprocess.run([sys.executable, str(script)], timeout=30, check=False)
    assert done.returncode == 0


def test_a_crash_loop_backs_off_then_fails_until_started(fast: Manager) -> None:
    events = record(fast)
    add(fast, "crash", cmd="false")
    wait_for(lambda: fast.states["crash"].failed, timeout=10)
    kinds = [e["event"] for e in events if not e["event"].startswith("proc.")]
    assert kinds.count("spawn") == 5 and kinds.count("backoff") == 4
    assert kinds[-2:] == ["stop", "failed"]
    delays = [e["delay"] for e in events if e["event"] == "backoff"]
    assert delays == sorted(delays) and 0.018 <= delays[0] <= 0.02 and delays[-1] <= 0.1
    failed = [e for e in events if e["event"] in ("failed", "proc.crash.failed")]
    assert [e["restarts"] for e in failed] == [4, 4] and failed[0]["failures"] == 5
    assert fast.status("crash")["state"] == "failed"
    fast.start_template("crash")
    assert fast.status("crash")["state"] != "failed"
    wait_for(lambda: fast.states["crash"].failed, timeout=10)  # and it fails again
    assert fast.status("crash")["restarts"] == 8


def test_a_scale_during_the_backoff_waits_for_it(fast: Manager) -> None:
    events = record(fast, "spawn")
    add(fast, "crash", cmd="false")
    wait_for(lambda: fast.states["crash"].respawn_pending)
    spawned = len(events)
    fast.scale("crash", 2)  # three wanted now, but the round is still waiting
    assert len(events) == spawned and fast.status("crash")["state"] == "backoff"
    wait_for(lambda: len(events) >= spawned + 3)  # the due round spawns all three
    fast.stop_template("crash")


def test_copies_of_a_template_crashing_together_are_one_round(fast: Manager) -> None:
    events = record(fast)
    add(fast, "crash", cmd="false", numprocesses=3)
    wait_for(lambda: fast.states["crash"].failed, timeout=10)
    assert [e["event"] for e in events].count("spawn") == 15  # 5 rounds of 3, not 5 spawns
    assert fast.status("crash")["failures"] == 5


def test_per_pid_restart_counts_follow_the_slot(fast: Manager) -> None:
    add(fast, "svc", cmd="sleep 600", numprocesses=2)
    first = fast.running[2]
    os.kill(first.os_pid, signal.SIGKILL)
    wait_for(lambda: fast.pids("svc") == [1, 3])
    os.kill(fast.running[3].os_pid, signal.SIGKILL)
    wait_for(lambda: fast.pids("svc") == [1, 4])
    assert [fast.running[pid].restarts for pid in (1, 4)] == [0, 2]
    assert fast.status("svc")["restarts"] == 2
    fast.restart_template("svc")  # a fresh set: fresh slots
    assert [fast.running[pid].restarts for pid in fast.pids("svc")] == [0, 0]
    assert fast.status("svc")["restarts"] == 2  # the template's count is kept
    fast.update_template(ProcessTemplate.from_json({"name": "svc", "cmd": "sleep 500"}))
    assert fast.status("svc")["restarts"] == 0  # a new definition counts afresh


def test_flapping_gives_up_as_failed(manager: Manager) -> None:
    events = record(manager)
    flapping = {"attempts": 1, "window": 5, "retry_in": 0.1, "max_retry": 1}
    add(manager, "crash", cmd="false", flapping=flapping)
    wait_for(lambda: manager.states["crash"].failed, timeout=10)
    kinds = [e["event"] for e in events if not e["event"].startswith("proc.")]
    assert kinds.count("spawn") == 2 and kinds.count("flap") == 2 and kinds[-1] == "failed"
    failed = next(e for e in events if e["event"] == "failed")
    assert failed["reason"] == "flapping gave up"
