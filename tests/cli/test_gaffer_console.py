"""``gaffer start``'s console: prefixes, numbering, partial lines and failure detection."""

import io
import re

from gaffer_gevent.cli.foreground import Foreground


def console(colour: bool = False) -> tuple[Foreground, io.StringIO, list[bool]]:
    out = io.StringIO()
    stops: list[bool] = []
    fg = Foreground(
        ["web", "worker"],
        {"web": 2},
        colour=colour,
        request_stop=lambda: stops.append(True),
        out=out,
    )
    return fg, out, stops


def lines(out: io.StringIO) -> list[str]:
    """Output lines without their timestamps."""
    text = out.getvalue()
    assert all(re.match(r"\d\d:\d\d:\d\d ", line) for line in text.splitlines())
    return [line[9:] for line in text.splitlines()]


def test_lines_are_prefixed_and_padded_to_the_longest_name():
    fg, out, _ = console()
    fg.on_event("spawn", {"event": "spawn", "name": "web", "pid": 1, "os_pid": 100})
    fg.on_output("web", 1, "out", b"hello\nwor")
    fg.on_output("web", 1, "out", b"ld\n")
    fg.on_output("worker", 2, "err", b"oops\r\n")
    assert lines(out) == [
        "web.1    | started with pid 100",
        "web.1    | hello",
        "web.1    | world",
        "worker.1 | oops",
    ]


def test_numbers_are_per_type_and_reused_after_exit():
    fg, out, stops = console()
    for pid in (1, 2):
        fg.on_event("spawn", {"name": "web", "pid": pid, "os_pid": 100 + pid})
    fg.on_event("exit", {"name": "web", "pid": 1, "exit_status": 0, "term_signal": 15})
    fg.on_event("spawn", {"name": "web", "pid": 3, "os_pid": 103})
    fg.on_event("exit", {"name": "web", "pid": 2, "exit_status": 3, "term_signal": 0})
    assert lines(out) == [
        "web.1    | started with pid 101",
        "web.2    | started with pid 102",
        "web.1    | killed by signal 15",
        "web.1    | started with pid 103",
        "web.2    | exited with code 3",
    ]
    assert fg.failure is None and stops == []


def test_partial_line_is_flushed_at_exit():
    fg, out, _ = console()
    fg.on_event("spawn", {"name": "web", "pid": 1, "os_pid": 9})
    fg.on_output("web", 1, "out", b"no newline")
    assert lines(out) == ["web.1    | started with pid 9"]
    fg.on_event("exit", {"name": "web", "pid": 1, "exit_status": 0, "term_signal": 0})
    assert lines(out)[1:] == ["web.1    | no newline", "web.1    | exited with code 0"]


def test_exit_without_spawn_is_a_failure_to_start_and_stops_the_app():
    fg, out, stops = console()
    fg.on_event("exit", {"name": "worker", "pid": 1, "exit_status": 127, "term_signal": 0})
    assert lines(out) == ["worker.1 | failed to start (exit status 127)"]
    assert fg.failure == "worker.1 failed to start (exit status 127)"
    assert stops == [True]


def test_colour_wraps_the_prefix_only():
    fg, out, _ = console(colour=True)
    fg.on_output("web", 1, "out", b"hi\n")
    assert re.fullmatch(r"\x1b\[\d+m\d\d:\d\d:\d\d web\.1    \|\x1b\[0m hi\n", out.getvalue())
