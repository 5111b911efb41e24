"""What a previous manager left running: found by process group and start time, then stopped.

Each child leads its own session (``setsid`` at spawn), so its pid is also its
process group id and its session id, and whatever it forks stays in that group
unless it leaves on purpose. A manager killed with SIGKILL leaves these groups
running under PID 1; the next manager over the same runtime dir reads their
ids from the record (``runtime.py``) and stops them before starting anything.

A pid is only a number the kernel hands out again, so each recorded group
carries its leader's start time: ``starttime`` from ``/proc/PID/stat``, in clock
ticks after boot. That is an exact integer, unlike psutil's ``create_time``,
which adds a boot time the kernel recomputes from the wall clock and which can
move by a second between two runs. The rule (``match``):

* a process whose pid is the recorded group id exists: the group is the old one
  only if that process started at the recorded time; otherwise the number was
  reused and the group is left alone;
* no such process, but members of the group remain (the leader died, what it
  forked did not): a group id is never handed out while a process still carries
  it, so these are the old group's members. They are taken if they are also in
  its session and started no earlier than the recorded leader.

Signals go through a pidfd opened first and then checked against the start time,
so a process that exits between the scan and the signal is never mistaken for
the next owner of its pid.
"""

from __future__ import annotations

import contextlib
import os
import posix
import signal
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import gevent

PROC = "/proc"
#: How often a stop checks whether the processes are gone (they are not our children:
#: no exit status reaches us, so we look).
POLL_INTERVAL = 0.05
#: Seconds after SIGKILL to see the processes gone before giving up on them.
KILL_WAIT = 2.0


@dataclass(frozen=True)
class ProcStat:
    """The fields of ``/proc/PID/stat`` that identify a process and its group."""

    pid: int
    state: str
    pgid: int
    sid: int
    start: int  # clock ticks after boot
    ppid: int = 0

    @property
    def alive(self) -> bool:
        return self.state not in ("Z", "X", "x")  # a zombie has already exited


@dataclass(frozen=True)
class Group:
    """A process group a manager started: its id (the leader's pid) and the leader's start."""

    pgid: int
    start: int
    name: str = ""


def parse_stat(text: str) -> ProcStat | None:
    """Parse one ``/proc/PID/stat`` line; None if it is not one.

    The command name sits in parentheses and may hold spaces or parentheses itself,
    so the fields are counted from its last ``)``.
    """
    head, paren, tail = text.rpartition(")")
    pid_text = head.partition(" (")[0]
    fields = tail.split()
    if not paren or not pid_text.isdigit() or len(fields) < 20:
        return None
    try:  # fields[0] is field 3 (state) of proc(5): ppid 4, pgrp 5, session 6, starttime 22
        numbers = int(fields[2]), int(fields[3]), int(fields[19]), int(fields[1])
        return ProcStat(int(pid_text), fields[0], *numbers)
    except ValueError:
        return None


def read_stat(pid: int) -> ProcStat | None:
    """The process ``pid`` as it is now; None once it is gone (or reaped).

    Raw ``posix`` calls: this runs once per spawn, and they take a third of ``open()``'s time.
    """
    try:
        fd = posix.open(f"{PROC}/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return parse_stat(posix.read(fd, 4096).decode(errors="replace"))
    except OSError:
        return None
    finally:
        posix.close(fd)


def scan() -> list[ProcStat]:
    """Every process the kernel shows us."""
    try:
        names = os.listdir(PROC)
    except OSError:
        return []
    table = []
    for name in names:
        if name.isdigit():
            stat = read_stat(int(name))
            if stat is not None:
                table.append(stat)
    return table


def match(groups: Iterable[Group], table: Iterable[ProcStat], *, exclude: int) -> list[ProcStat]:
    """The live processes of ``table`` that belong to the recorded ``groups`` (module rule).

    ``exclude`` (our own pid) is never taken, whatever the record says.
    """
    by_pid: dict[int, ProcStat] = {}
    members: defaultdict[int, list[ProcStat]] = defaultdict(list)
    for proc in table:
        by_pid[proc.pid] = proc
        members[proc.pgid].append(proc)
    found: dict[int, ProcStat] = {}
    for group in groups:
        if group.pgid <= 1:
            continue
        leader = by_pid.get(group.pgid)
        if leader is not None and leader.start != group.start:
            continue  # the number now belongs to another process
        for proc in members.get(group.pgid, ()):
            if (
                proc.alive and proc.pid != exclude and proc.sid == group.pgid
                and proc.start >= group.start
            ):  # fmt: skip
                found[proc.pid] = proc
    return list(found.values())


def send(proc: ProcStat, sig: int) -> bool:
    """Signal ``proc`` if the process with its pid is still the one that started at its time."""
    fd: int | None = None
    with contextlib.suppress(AttributeError, OSError):
        fd = os.pidfd_open(proc.pid)
    try:
        now = read_stat(proc.pid)
        if now is None or now.start != proc.start or not now.alive:
            return False
        if fd is not None:
            signal.pidfd_send_signal(fd, sig)
        else:  # no pidfd (Linux before 5.3): the check above is all we have
            os.kill(proc.pid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False
    finally:
        if fd is not None:
            posix.close(fd)  # not os.close: gevent may defer that one


def still_running(procs: Iterable[ProcStat]) -> list[ProcStat]:
    alive = []
    for proc in procs:
        now = read_stat(proc.pid)
        if now is not None and now.start == proc.start and now.alive:
            alive.append(proc)
    return alive


@dataclass
class Outcome:
    """What ``stop`` did: how many processes it found, and which outlived even SIGKILL."""

    found: list[ProcStat]
    survivors: list[ProcStat]


def stop(
    groups: list[Group],
    *,
    grace: float,
    table: Callable[[], list[ProcStat]] = scan,
    sleep: Callable[[float], object] = gevent.sleep,
) -> Outcome:
    """SIGTERM every process of ``groups``, SIGKILL what is left after ``grace`` seconds.

    The SIGKILL round looks again, so a member forked during the grace dies too.
    """
    me = os.getpid()
    found = match(groups, table(), exclude=me)
    for proc in found:
        send(proc, signal.SIGTERM)
    _wait_gone(found, grace, sleep)
    rest = match(groups, table(), exclude=me)
    for proc in rest:
        send(proc, signal.SIGKILL)
    return Outcome(found, _wait_gone(rest, KILL_WAIT, sleep))


def _wait_gone(
    procs: list[ProcStat], timeout: float, sleep: Callable[[float], object]
) -> list[ProcStat]:
    deadline = time.monotonic() + timeout
    alive = still_running(procs)
    while alive and time.monotonic() < deadline:
        sleep(POLL_INTERVAL)
        alive = still_running(alive)
    return alive
