"""``gaffer start``'s console layout: prefixes, numbering, partial lines and failure detection.

The processes are real ``Process`` objects of a real manager's kind, made without
spawning; what a console does with real children is in tests/unit/test_console.py.
"""

import re

from gaffer_gevent.cli.foreground import Foreground
from gaffer_gevent.process import Process
from gaffer_gevent.spawn import ExitStatus
from gaffer_gevent.template import ProcessTemplate


def console(colour: bool = False) -> tuple[Foreground, list[bool]]:
    stops: list[bool] = []
    fg = Foreground(
        ["web", "worker"], {"web": 2}, colour=colour, request_stop=lambda: stops.append(True)
    )
    return fg, stops


def process(name: str, pid: int, os_pid: int = 0) -> Process:
    template = ProcessTemplate.from_json({"name": name, "cmd": "true"})
    proc = Process(pid, template, on_exit=lambda _: None)
    proc.os_pid = os_pid
    return proc


def exited(proc: Process, code: int, signum: int = 0) -> Process:
    proc.exit_status = ExitStatus(code, signum)
    proc.exited.set()
    return proc


def bare(lines: list[str]) -> list[str]:
    """Lines without their timestamps."""
    assert all(re.match(r"\d\d:\d\d:\d\d ", line) for line in lines)
    return [line[9:] for line in lines]


def test_lines_are_prefixed_and_padded_to_the_longest_name():
    fg, _ = console()
    web, worker = process("web", 1, 100), process("worker", 2)
    lines = [fg.started(web), fg.line(web, "out", "hello"), fg.line(worker, "err", "oops")]
    assert bare(lines) == ["web.1    | started with pid 100", "web.1    | hello", "worker.1 | oops"]


def test_numbers_are_per_type_and_reused_after_exit():
    fg, stops = console()
    first, second = process("web", 1, 101), process("web", 2, 102)
    lines = [fg.started(first), fg.started(second)]
    lines.append(fg.ended(exited(first, 0, 15)))
    third = process("web", 3, 103)
    lines.append(fg.started(third))
    lines.append(fg.ended(exited(second, 3)))
    assert bare(lines) == [
        "web.1    | started with pid 101",
        "web.2    | started with pid 102",
        "web.1    | killed by signal 15",
        "web.1    | started with pid 103",
        "web.2    | exited with code 3",
    ]
    assert fg.failure is None and stops == []


def test_a_number_is_free_once_its_process_exited_even_before_its_end_line():
    """A respawn happens as the old process exits, before the console wrote its last lines."""
    fg, _ = console()
    old = process("web", 1, 101)
    assert bare([fg.started(old)]) == ["web.1    | started with pid 101"]
    exited(old, 1)
    assert bare([fg.started(process("web", 2, 102))]) == ["web.1    | started with pid 102"]
    assert bare([fg.ended(old)]) == ["web.1    | exited with code 1"]


def test_exit_of_a_spawned_process_is_said_by_the_console_not_the_bus():
    fg, stops = console()
    fg.spawned(process("web", 1))
    assert fg.on_exit("exit", {"name": "web", "pid": 1, "exit_status": 0}) is None
    assert fg.failure is None and stops == []


def test_exit_without_spawn_is_a_failure_to_start_and_stops_the_app():
    fg, stops = console()
    line = fg.on_exit("exit", {"name": "worker", "pid": 1, "exit_status": 127, "term_signal": 0})
    assert line is not None
    assert bare([line]) == ["worker.1 | failed to start (exit status 127)"]
    assert fg.failure == "worker.1 failed to start (exit status 127)"
    assert stops == [True]


def test_colour_wraps_the_prefix_only():
    fg, _ = console(colour=True)
    line = fg.line(process("web", 1), "out", "hi")
    assert re.fullmatch(r"\x1b\[\d+m\d\d:\d\d:\d\d web\.1    \|\x1b\[0m hi", line)
