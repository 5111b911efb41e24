"""The console with a real manager and real children: order of lines, partial lines, and a
terminal (a real pipe) that stops reading costs lines, never the children's progress."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import gevent
import gevent.os
import pytest

from gaffer_gevent.console import Console, EchoLayout, Terminal
from gaffer_gevent.manager import Manager
from gaffer_gevent.process import Process
from gaffer_gevent.template import ProcessTemplate

from ..helpers import CHILDREN, PYTHON, progress, wait_for


class Marked(EchoLayout):
    """gafferd's layout plus start and end lines, to see where the console puts them."""

    def started(self, process: Process) -> str:
        return f"{self.who(process)} started"

    def ended(self, process: Process) -> str:
        assert process.exit_status is not None
        return f"{self.who(process)} ended {process.exit_status.exit_status}"


@pytest.fixture
def written() -> list[bytes]:
    return []


@pytest.fixture
def console(manager: Manager, written: list[bytes]) -> Iterator[Console]:
    console = Console(manager, Marked(), written.append)
    yield console
    console.close()


def template(name: str, *args: str, **fields: object) -> ProcessTemplate:
    body = {"name": name, "cmd": PYTHON, "args": list(args), **fields}
    return ProcessTemplate.from_json(body)


def lines(written: list[bytes]) -> list[str]:
    return b"".join(written).decode().splitlines()


def test_start_output_and_end_in_order_with_the_partial_line_flushed_at_exit(
    manager: Manager, console: Console, written: list[bytes]
) -> None:
    code = "import sys; print('one'); print('two'); sys.stdout.write('no newline'); sys.exit(3)"
    manager.add_template(template("t", "-c", code, redirect_output=["out", "err"]))
    wait_for(lambda: "t[1] ended 3" in lines(written))
    assert lines(written)[:5] == [
        "t[1] started",
        "t[1] out | one",
        "t[1] out | two",
        "t[1] out | no newline",
        "t[1] ended 3",
    ]


def test_say_comes_after_the_output_taken_before_it(
    manager: Manager, console: Console, written: list[bytes]
) -> None:
    manager.add_template(template("t", "-c", "print('hello')", redirect_output=["out"]))
    wait_for(lambda: "t[1] ended 0" in lines(written))
    console.say("system | done")
    wait_for(lambda: lines(written)[-1:] == ["system | done"])
    assert lines(written).index("t[1] out | hello") < lines(written).index("system | done")


def test_a_terminal_that_stops_reading_costs_lines_not_progress(
    manager: Manager, tmp_path: Path
) -> None:
    counter = tmp_path / "progress"
    read_end, write_end = os.pipe()
    terminal = Terminal(write_end)
    console = Console(manager, EchoLayout(), terminal.write)
    try:
        args = [str(CHILDREN / "progress.py"), str(counter)]
        manager.add_template(template("flood", *args, redirect_output=["stdout"]))
        # The pipe holds 64 KiB, the ring 1 MiB: 200 blocks of 64 KiB are far past both.
        wait_for(lambda: progress(counter) >= 200, timeout=30)
        assert terminal.busy  # the console waits on the pipe; the child does not
        assert gevent.spawn(lambda: 42).get(timeout=5) == 42  # nor does the hub
        seen = b""
        notice = re.compile(
            rb"^flood\[1\] stdout \| \[gaffer: \d+ bytes of flood\[1\] stdout dropped\]$", re.M
        )
        os.set_blocking(read_end, False)
        with gevent.Timeout(30, AssertionError("no gap notice")):
            while not notice.search(seen):
                seen = seen[-200_000:] + gevent.os.nb_read(read_end, 1 << 20)
    finally:
        manager.stop_all(timeout=10)
        console.close(timeout=1)
        terminal.close()
        os.close(read_end)  # a write still waiting fails (EPIPE) and its thread ends
        os.close(write_end)
