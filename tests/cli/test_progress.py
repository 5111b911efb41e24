"""``--wait``: commands return once gafferd did the work, with a spinner on a terminal only.

In a pseudo-terminal the spinner's text (what is waited for, seconds spent)
is drawn on stderr; through pipes, or with ``--json``, the output is exactly
what it is without ``--wait``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import psutil

from ..helpers import wait_for
from .conftest import TICKER, Daemon, run_script
from .terminal import Terminal

PY = sys.executable
IGNORE_TERM = str(Path(__file__).parent.parent / "children" / "ignore_term.py")


def stubborn(gafferd: Daemon, grace: float = 2) -> int:
    """Template ``slow``: one child that ignores SIGTERM (SIGKILL after ``grace``); its os pid."""
    with gafferd.client() as client:
        client.add_process(
            "slow", PY, args=["-u", IGNORE_TERM], graceful_timeout=grace, redirect_output=["stdout"]
        )
        info = wait_for(lambda: client.stats("slow")["stats"])
        with client.follow(client.pids("slow")[0], tail=1) as output:  # SIG_IGN is in place
            assert b"ready" in next(output)
    return int(info[0]["pid"])


def test_stop_wait_in_a_terminal_shows_what_it_waits_for(gafferd, terminals):
    os_pid = stubborn(gafferd)
    ctl = Terminal("gafferctl", "--connect", gafferd.url, "stop", "--wait", "slow", env={})
    terminals.append(ctl)
    ctl.wait_for(r"stopping slow: 1 to exit \(graceful 2 s\) \d+\.\d s")
    assert ctl.exit_code(timeout=20) == 0
    assert "ok" in ctl.text.splitlines()[-1]
    assert not psutil.pid_exists(os_pid) or psutil.Process(os_pid).status() == "zombie"
    with gafferd.client() as client:
        assert client.status("slow")["running"] == 0


def test_stop_wait_piped_prints_only_ok_and_returns_after_the_exit(gafferd):
    os_pid = stubborn(gafferd, grace=1)
    started = time.monotonic()
    result = run_script("gafferctl", "--connect", gafferd.url, "stop", "--wait", "slow")
    assert (result.code, result.out, result.err) == (0, "ok\n", "")
    assert time.monotonic() - started >= 0.9  # it waited for SIGKILL after the grace
    assert not psutil.pid_exists(os_pid) or psutil.Process(os_pid).status() == "zombie"


def test_json_in_a_terminal_prints_no_spinner(gafferd, terminals):
    stubborn(gafferd, grace=1)
    args = ("--connect", gafferd.url, "--json", "stop", "--wait", "slow")
    ctl = Terminal("gafferctl", *args, env={})
    terminals.append(ctl)
    assert ctl.exit_code(timeout=20) == 0
    ctl.read(0.2)
    assert ctl.text.strip() == json.dumps({"ok": True})


def test_add_sub_restart_wait_return_when_done(gafferd):
    with gafferd.client() as client:
        client.add_process("tick", PY, args=["-u", TICKER], graceful_timeout=2)
        wait_for(lambda: client.pids("tick"))

        def ctl(*args: str) -> str:
            result = run_script("gafferctl", "--connect", gafferd.url, *args)
            assert (result.code, result.err) == (0, ""), result
            return result.out

        assert ctl("add", "--wait", "tick", "2") == "3\n"
        assert len(client.pids("tick")) == 3  # no wait_for: they run already
        oldest = client.pids("tick")[0]
        assert ctl("sub", "--wait", "tick") == "2\n"
        assert len(client.pids("tick")) == 2 and oldest not in client.pids("tick")
        before = set(client.pids("tick"))
        assert ctl("restart", "--wait", "tick") == "ok\n"
        after = set(client.pids("tick"))
        assert len(after) == 2 and not after & before


def test_add_wait_reports_a_program_that_cannot_start(gafferd):
    with gafferd.client() as client:
        client.add_process("broken", "/nonexistent/program", start=True)
    result = run_script("gafferctl", "--connect", gafferd.url, "add", "--wait", "broken")
    assert result.code == 1
    assert result.err.startswith("gafferctl: broken: spawn_error"), result.err
    assert "Traceback" not in result.err


def test_gaffer_load_and_scale_wait_in_a_terminal_and_piped(gafferd, tmp_path, terminals):
    root = tmp_path / "shop"
    root.mkdir()
    (root / "Procfile").write_text(f"web: {PY} -u {TICKER} web\nworker: {PY} -u {TICKER}\n")
    load = Terminal("gaffer", "-c", "web=2", "load", "--wait", ".", gafferd.url, env={}, cwd=root)
    terminals.append(load)
    load.wait_for(r"(creating shop:\w+ \(\d/2\)|starting 3 processes of 2 templates) \d+\.\d s")
    assert load.exit_code(timeout=20) == 0
    assert f"'shop' has been loaded in {gafferd.url}" in load.text
    with gafferd.client() as client:
        assert len(client.pids("shop:web")) == 2 and len(client.pids("shop:worker")) == 1
        result = run_script(
            "gaffer", "--endpoint", gafferd.url, "scale", "--wait", "web+1", "worker=0", cwd=root
        )
        assert (result.code, result.err) == (0, ""), result
        assert result.out == (
            "Scaling web processes... done, now running 3\n"
            "Scaling worker processes... done, now running 0\n"
        )
        assert len(client.pids("shop:web")) == 3 and client.pids("shop:worker") == []
