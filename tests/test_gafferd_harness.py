"""tests/gafferd.py's ``Gafferd`` itself: what every test that starts gafferd relies on.

Its output goes to a file nobody has to read, a gafferd that cannot start fails the test
at once with its log, ``stop`` is bounded, and ``cleanup`` leaves no child behind even
when gafferd itself was killed first.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from .gafferd import Gafferd
from .helpers import CHILDREN, PYTHON, alive, wait_for, write_config

LINES = 20_000


def test_a_chatty_gafferd_nobody_reads_does_not_stall(tmp_path: Path) -> None:
    """-vv echoes every line a child prints: far more than a pipe holds (64 KiB), and the
    test reads none of it until the end."""
    config = write_config(
        tmp_path / "gaffer.ini",
        f"[process:talker]\ncmd = {PYTHON}\n"
        f"args = {CHILDREN / 'counter.py'} {LINES} 0 stdout wait\nredirect_output = stdout\n",
    )
    with Gafferd(config, "-vv") as gafferd:
        line = gafferd.log_line(rf"\| line {LINES}\n", timeout=60)
        assert line.startswith("talker[1] stdout")
        assert gafferd.log.path.stat().st_size > 256 * 1024
        assert gafferd.http.get("/ping").text == "OK"
        assert gafferd.stop() == 0


def test_a_gafferd_that_cannot_start_fails_at_once_with_its_log(tmp_path: Path) -> None:
    config = write_config(tmp_path / "gaffer.ini", "[process:a]\ncmd = x\nnumprocesses = many\n")
    started = time.monotonic()
    with pytest.raises(AssertionError) as failure:
        Gafferd(config)
    assert time.monotonic() - started < 10  # not the 30 s start timeout
    assert "gafferd exited" in str(failure.value)
    assert "[process:a] numprocesses" in str(failure.value)  # its own words, from the log
    assert not [g for g in Gafferd.started if g.config == config]


def test_log_line_reads_past_a_mark_and_fails_once_gafferd_has_exited(tmp_path: Path) -> None:
    gafferd = Gafferd(write_config(tmp_path / "gaffer.ini", ""))
    try:
        assert gafferd.stderr_lines == [f"gafferd: listening on {gafferd.url}\n"]
        assert gafferd.log_line("listening on") == gafferd.stderr_lines[0]
        seen = len(gafferd.log.lines)
        assert gafferd.stop() == 0
        assert gafferd.log_line(".", after=seen).startswith("gafferd: stop")  # the next line
        assert gafferd.log.lines[-1] == "gafferd: stopped\n"
        started = time.monotonic()
        with pytest.raises(AssertionError, match="exited without 'never written'"):
            gafferd.log_line("never written", timeout=30)
        assert time.monotonic() - started < 10
    finally:
        gafferd.cleanup()


def test_stop_is_bounded_and_kills_the_group_of_a_gafferd_that_does_not_go(
    tmp_path: Path,
) -> None:
    gafferd = Gafferd(write_config(tmp_path / "gaffer.ini", ""))
    try:
        os.kill(gafferd.proc.pid, signal.SIGSTOP)  # SIGTERM stays pending: it never exits
        with pytest.raises(AssertionError, match="did not stop within 1"):
            gafferd.stop(timeout=1)
        assert gafferd.proc.returncode == -signal.SIGKILL
    finally:
        gafferd.cleanup()


def test_cleanup_kills_the_children_of_a_gafferd_killed_first(tmp_path: Path) -> None:
    """Children lead their own sessions: the SIGKILL of gafferd's group misses them, and
    once gafferd is gone they are no longer anybody's descendants."""
    config = write_config(
        tmp_path / "gaffer.ini", "[process:s]\ncmd = sleep 600\nnumprocesses = 2\n"
    )
    gafferd = Gafferd(config)
    try:
        wait_for(lambda: len(gafferd.children()) == 2)
        pids = set(gafferd.child_pids)
        os.kill(gafferd.proc.pid, signal.SIGKILL)
        gafferd.proc.wait(10)
        assert len(alive(pids)) == 2  # orphans now
    finally:
        gafferd.cleanup()
    wait_for(lambda: not alive(pids), timeout=10)
    assert gafferd not in Gafferd.started
