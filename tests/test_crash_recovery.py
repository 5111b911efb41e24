"""No orphans after a crash, one manager per state (issue 13, points 2 and 3).

gafferd runs as a subprocess in its own session with ``XDG_RUNTIME_DIR`` in the
test's directory, so its default runtime dir is private to the test. A SIGKILLed
gafferd leaves its children running (each leads its own session); the next
gafferd over the same config stops them, grandchildren included, before it
starts its own. A second gafferd over the same config or runtime dir refuses to
start and names the first one's pid. The same parts run in process, with real
children, for the record file and the sweep.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from flask import Flask

from gaffer_gevent.api import Gaffer
from gaffer_gevent.errors import NotTheManager
from gaffer_gevent.leftovers import Group, read_stat, scan
from gaffer_gevent.manager import Manager
from gaffer_gevent.runtime import STATE_FILE, Record, Runtime, read_record, write_record
from gaffer_gevent.template import ProcessTemplate

from .gafferd import GAFFERD, Gafferd
from .helpers import CHILDREN, PYTHON, alive, wait_for

TIMEOUT = 15.0
FORKERS = 3
#: Three forkers with a grandchild each, and a sleep: seven processes in four groups.
INI = f"""\
[process:forker]
cmd = {PYTHON}
args = {CHILDREN / "forker.py"}
numprocesses = {FORKERS}

[process:sleeper]
cmd = sleep 600
"""
EXPECTED = FORKERS * 2 + 1


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    xdg = tmp_path / "xdg"
    xdg.mkdir(mode=0o700)
    return dict(os.environ, XDG_RUNTIME_DIR=str(xdg), PYTHONUNBUFFERED="1")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "gaffer.ini"
    path.write_text(INI)
    return path


@pytest.fixture
def started(tmp_path: Path, env: dict[str, str]) -> Iterator[list[Gafferd]]:
    """Every gafferd a test starts; each, and every child it was seen with, is killed after."""
    daemons: list[Gafferd] = []
    yield daemons
    for daemon in daemons:
        daemon.cleanup()


def start(started: list[Gafferd], config: Path, env: dict[str, str], *flags: str) -> Gafferd:
    daemon = Gafferd(config, "-v", *flags, env=env, cwd=config.parent, timeout=TIMEOUT)
    started.append(daemon)
    return daemon


def running_all(daemon: Gafferd) -> list[psutil.Process]:
    """Wait until gafferd runs the 7 processes (grandchildren included); return them."""
    return wait_for(lambda: len(daemon.children()) == EXPECTED and daemon.children(),
                    timeout=TIMEOUT)  # fmt: skip


def in_groups(pgids: set[int]) -> list[int]:
    """Every live process on the machine in one of these process groups."""
    return [p.pid for p in scan() if p.pgid in pgids and p.alive]


def test_after_kill_9_the_next_gafferd_stops_what_was_left(
    started: list[Gafferd], config: Path, env: dict[str, str]
) -> None:
    first = start(started, config, env)
    old = running_all(first)
    old_pids = {p.pid for p in old}
    old_groups = {os.getpgid(p.pid) for p in old}
    assert len(old_groups) == FORKERS + 1
    wait_for(lambda: (read_record(runtime_state(first)) or Record(0)).groups, timeout=TIMEOUT)

    os.kill(first.proc.pid, signal.SIGKILL)
    first.proc.wait(TIMEOUT)

    second = start(started, config, env)
    log = second.log_text()
    assert (
        f"gafferd: the previous manager (pid {first.proc.pid}) did not stop cleanly: "
        f"stopped {EXPECTED} processes it left running ({FORKERS + 1} process groups)\n"
    ) in log, log
    wait_for(lambda: f"orphans  count={EXPECTED} groups={FORKERS + 1} "
             f"manager_pid={first.proc.pid}" in second.log_text(), timeout=TIMEOUT)  # fmt: skip
    assert not alive(old_pids)
    assert not in_groups(old_groups)
    new = running_all(second)
    assert not {p.pid for p in new} & old_pids
    assert second.stop(TIMEOUT) == 0
    wait_for(lambda: not alive({p.pid for p in new}), timeout=TIMEOUT)


def runtime_state(daemon: Gafferd) -> str:
    """The record file of the gafferd's default runtime dir (the only dir under $XDG/gaffer)."""
    (directory,) = (daemon.log.path.parent / "xdg" / "gaffer").iterdir()
    return str(directory / STATE_FILE)


def test_a_clean_stop_leaves_nothing_to_find(
    started: list[Gafferd], config: Path, env: dict[str, str]
) -> None:
    first = start(started, config, env)
    running_all(first)
    assert first.stop(TIMEOUT) == 0
    assert list((config.parent / "xdg" / "gaffer").iterdir()) == []  # dir, lock, record gone
    second = start(started, config, env)
    running_all(second)
    assert "did not stop cleanly" not in second.log_text()
    assert second.stop(TIMEOUT) == 0


def test_a_second_gafferd_over_the_same_config_refuses(
    started: list[Gafferd], config: Path, env: dict[str, str]
) -> None:
    first = start(started, config, env)
    before = {p.pid for p in running_all(first)}
    second = subprocess.run([*GAFFERD, "--bind", "127.0.0.1:0", str(config)],
                            env=env, capture_output=True, text=True, timeout=TIMEOUT)  # fmt: skip
    assert second.returncode == 1
    (line,) = second.stderr.splitlines()
    assert line.startswith(f"gafferd: already running with pid {first.proc.pid}, which holds ")
    assert line.endswith(": stop it first, or give this one its own [gaffer] runtime_dir")
    assert {p.pid for p in first.children()} == before
    assert first.stop(TIMEOUT) == 0


def test_one_runtime_dir_one_manager_two_configs_side_by_side(
    started: list[Gafferd], tmp_path: Path, env: dict[str, str]
) -> None:
    sleeper = "[process:sleeper]\ncmd = sleep 600\n"
    configs = {}
    for name, extra in (("a", ""), ("b", ""), ("c", "[gaffer]\nruntime_dir = ../a/run\n")):
        (tmp_path / name).mkdir()
        configs[name] = tmp_path / name / "gaffer.ini"
        configs[name].write_text(extra + sleeper)
    configs["a"].write_text("[gaffer]\nruntime_dir = run\n" + sleeper)
    a, b = start(started, configs["a"], env), start(started, configs["b"], env)  # both run
    wait_for(lambda: len(a.children()) == 1 and len(b.children()) == 1, timeout=TIMEOUT)
    c = subprocess.run([*GAFFERD, "--bind", "127.0.0.1:0", str(configs["c"])],
                       env=env, capture_output=True, text=True, timeout=TIMEOUT)  # fmt: skip
    assert c.returncode == 1
    assert f"already running with pid {a.proc.pid}, which holds {tmp_path}/a/run/lock" in c.stderr
    assert a.stop(TIMEOUT) == 0 and b.stop(TIMEOUT) == 0


def test_an_unsafe_runtime_dir_is_a_config_error(tmp_path: Path, env: dict[str, str]) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    config = tmp_path / "gaffer.ini"
    config.write_text(f"[gaffer]\nruntime_dir = {shared}\n")
    result = subprocess.run([*GAFFERD, "--bind", "127.0.0.1:0", str(config)],
                            env=env, capture_output=True, text=True, timeout=TIMEOUT)  # fmt: skip
    assert result.returncode == 2
    assert result.stderr == (
        f"gafferd: {config}: [gaffer] runtime_dir: cannot use {str(shared)!r}: "
        "others may write to it (mode 0777)\n"
    )


# -- in process: the record and the sweep with real children ----------------


def test_the_record_follows_spawns_and_exits_in_few_writes(
    manager: Manager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gaffer_gevent import runtime as runtime_module

    writes: list[Record] = []

    def counting(path: str, record: Record) -> None:
        writes.append(record)
        write_record(path, record)

    monkeypatch.setattr(runtime_module, "write_record", counting)
    runtime = Runtime(str(tmp_path / "run"))
    runtime.attach(manager)
    manager.add_template(ProcessTemplate.from_json({"name": "s", "cmd": "sleep 600",
                                                    "numprocesses": 50}))  # fmt: skip
    state = str(tmp_path / "run" / STATE_FILE)

    def recorded() -> list[Group]:
        return (read_record(state) or Record(0)).groups

    wait_for(lambda: len(recorded()) == 50, timeout=TIMEOUT)
    # 50 spawns go out in a few 5 ms slices; the record is written at most every 50 ms,
    # so a handful of writes, never one per spawn.
    assert len(writes) <= 5
    processes = list(manager.running.values())
    assert {(g.pgid, g.name) for g in recorded()} == {(p.os_pid, "s") for p in processes}
    for group in recorded():
        stat = read_stat(group.pgid)
        assert stat is not None and stat.start == group.start
    manager.stop_template("s")
    wait_for(lambda: not os.path.exists(state), timeout=TIMEOUT)  # nothing running: no record
    runtime.close()
    assert not os.path.exists(tmp_path / "run" / "lock")


def test_the_sweep_spares_a_reused_pid_and_finds_members_without_their_leader(
    manager: Manager, tmp_path: Path
) -> None:
    sleeper = subprocess.Popen(["sleep", "600"], start_new_session=True)
    bystander = subprocess.Popen(["sleep", "600"], start_new_session=True)
    forker = subprocess.Popen([PYTHON, str(CHILDREN / "forker.py")], start_new_session=True,
                              stdout=subprocess.PIPE)  # fmt: skip
    try:
        assert forker.stdout is not None
        grandchild = int(forker.stdout.readline().split()[1])
        stats = {p.pid: read_stat(p.pid) for p in (sleeper, bystander, forker)}
        start = {pid: stat.start for pid, stat in stats.items() if stat is not None}
        forker.kill()  # the leader dies; its grandchild stays in the group
        forker.wait(TIMEOUT)
        record = Record(4242, [
            Group(sleeper.pid, start[sleeper.pid], "sleeper"),
            Group(bystander.pid, start[bystander.pid] - 1, "reused"),  # another start: not ours
            Group(forker.pid, start[forker.pid], "forker"),
        ])  # fmt: skip
        directory = tmp_path / "run"
        directory.mkdir(mode=0o700)
        write_record(str(directory / STATE_FILE), record)
        events = manager.bus.queue("orphans")
        said: list[str] = []
        runtime = Runtime(str(directory))
        runtime.attach(manager, say=said.append)
        assert said == [
            "the previous manager (pid 4242) did not stop cleanly: stopped 2 processes it "
            "left running (2 process groups)"
        ]
        assert events.get(TIMEOUT) == (
            "orphans",
            {"event": "orphans", "count": 2, "groups": 2, "manager_pid": 4242},
        )
        assert sleeper.wait(TIMEOUT) == -signal.SIGTERM
        wait_for(lambda: not alive({grandchild}), timeout=TIMEOUT)
        assert bystander.poll() is None
        assert not os.path.exists(directory / STATE_FILE)
        runtime.close()
    finally:
        for proc in (sleeper, bystander, forker):
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(TIMEOUT)
        with contextlib.suppress(ProcessLookupError, NameError):
            os.kill(grandchild, signal.SIGKILL)


def test_embedding_takes_the_lock_only_with_a_runtime_dir(tmp_path: Path) -> None:
    directory = str(tmp_path / "run")
    first = Gaffer(Manager(), Flask("a"), runtime_dir=directory)
    assert first.runtime is not None
    with pytest.raises(NotTheManager):
        Gaffer(Manager(), Flask("b"), runtime_dir=directory)
    assert Gaffer(Manager(), Flask("c")).runtime is None
    first.manager.stop_all(TIMEOUT)
    first.runtime.close()
    second = Gaffer(Manager(), Flask("d"), runtime_dir=directory)
    assert second.runtime is not None
    second.runtime.close()


def test_an_exec_check_running_when_gafferd_is_killed_is_stopped_by_the_next(
    started: list[Gafferd], tmp_path: Path, env: dict[str, str]
) -> None:
    """An exec check's command leads its own process group: the record lists it while it
    runs, so a gafferd SIGKILLed mid-check leaves nothing the next one does not stop."""
    marker = "600.4321"  # a command line no other test uses
    config = tmp_path / "checked.ini"
    config.write_text(
        "[process:checked]\ncmd = sleep 600\n"
        f'readiness = {{"exec": ["sleep", "{marker}"], "timeout": 3600, "period": 3600}}\n'
    )
    first = start(started, config, env)

    def check_command() -> list[psutil.Process]:
        found = []
        for process in first.children():
            with contextlib.suppress(psutil.Error):
                if process.cmdline() == ["sleep", marker]:
                    found.append(process)
        return found

    (check,) = wait_for(check_command, timeout=TIMEOUT)

    def recorded() -> list[str]:
        record = read_record(runtime_state(first)) or Record(0)
        return [g.name for g in record.groups if g.pgid == check.pid]

    assert wait_for(recorded, timeout=TIMEOUT) == ["checked (check)"]

    os.kill(first.proc.pid, signal.SIGKILL)
    first.proc.wait(TIMEOUT)
    assert alive({check.pid})  # its own session: SIGKILL of gafferd leaves it running

    second = start(started, config, env)
    wait_for(lambda: "did not stop cleanly" in second.log_text(), timeout=TIMEOUT)
    wait_for(lambda: not alive({check.pid}), timeout=TIMEOUT)
    assert second.stop(TIMEOUT) == 0
