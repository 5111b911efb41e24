"""Which processes a crashed manager left: ``/proc`` parsing and the matching rule, pure."""

from __future__ import annotations

from gaffer_gevent.leftovers import Group, ProcStat, match, parse_stat

ME = 999


def stat_line(pid: int, comm: str, state: str, pgid: int, sid: int, start: int) -> str:
    # pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
    # utime stime cutime cstime priority nice threads itrealvalue starttime vsize ...
    return (
        f"{pid} ({comm}) {state} 1 {pgid} {sid} 0 -1 4194304 0 0 0 0 0 0 0 0 20 0 1 0 "
        f"{start} 3133440 378 18446744073709551615"
    )


def test_parse_stat_reads_the_fields_after_the_last_parenthesis() -> None:
    line = stat_line(4242, "evil) R 1 1 1 (name", "S", 4240, 4240, 872926)
    assert parse_stat(line) == ProcStat(4242, "S", 4240, 4240, 872926, ppid=1)


def test_parse_stat_refuses_what_is_not_a_stat_line() -> None:
    assert parse_stat("") is None
    assert parse_stat("12 (x) S 1 2") is None
    assert parse_stat("x (cat) " + "1 " * 30) is None
    assert parse_stat(stat_line(5, "cat", "S", 5, 5, 1).replace(" 5 5 ", " a b ")) is None


def proc(pid: int, pgid: int, start: int, sid: int | None = None, state: str = "S") -> ProcStat:
    return ProcStat(pid, state, pgid, pgid if sid is None else sid, start)


def pids(groups: list[Group], table: list[ProcStat]) -> set[int]:
    return {p.pid for p in match(groups, table, exclude=ME)}


def test_a_group_whose_leader_started_at_the_recorded_time_is_taken_whole() -> None:
    table = [proc(100, 100, 5000), proc(101, 100, 5003), proc(102, 100, 5009), proc(7, 7, 10)]
    assert pids([Group(100, 5000)], table) == {100, 101, 102}


def test_a_reused_pid_is_never_hit() -> None:
    """The pid of the recorded leader now belongs to a process that started later."""
    table = [proc(100, 100, 9000), proc(101, 100, 9001)]
    assert pids([Group(100, 5000)], table) == set()


def test_without_its_leader_the_members_that_started_after_it_are_taken() -> None:
    table = [
        proc(101, 100, 5003),  # forked by the old leader: taken
        proc(102, 100, 4000, sid=100),  # started before the leader: cannot be its member
        proc(103, 100, 5004, sid=55),  # another session: not the old group
        proc(104, 100, 5005, state="Z"),  # already exited
        proc(ME, 100, 5006),  # ourselves, whatever the record says
    ]
    assert pids([Group(100, 5000)], table) == {101}


def test_pid_1_and_below_are_never_groups() -> None:
    table = [proc(1, 1, 0), proc(2, 0, 0), proc(300, 1, 10)]
    assert pids([Group(1, 0), Group(0, 0), Group(-1, 0)], table) == set()


def test_several_groups_and_a_group_listed_twice() -> None:
    table = [proc(100, 100, 50), proc(200, 200, 60), proc(201, 200, 61), proc(300, 300, 70)]
    groups = [Group(100, 50), Group(200, 60), Group(200, 60), Group(400, 80)]
    found = match(groups, table, exclude=ME)
    assert sorted(p.pid for p in found) == [100, 200, 201]
