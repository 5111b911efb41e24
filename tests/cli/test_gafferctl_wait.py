"""gafferctl wait: 0 once true, 1 at its timeout, woken by the event feed."""

from __future__ import annotations

import sys
from collections.abc import Callable

from gaffer_gevent.client import Client

from ..helpers import wait_for
from .conftest import TICKER, Daemon, Result, spawn_script

TICKING = {"cmd": sys.executable, "args": [TICKER]}


def test_wait_ready_returns_at_once_for_a_running_template(
    ctl: Callable[..., Result], client: Client
) -> None:
    client.create_process({"name": "web", **TICKING, "start": True})
    result = ctl("wait", "web", "--ready", "--timeout", "10")
    assert (result.code, result.out) == (0, "ok\n"), result.err


def test_wait_times_out_with_exit_1(ctl: Callable[..., Result], client: Client) -> None:
    client.create_process({"name": "web", **TICKING, "start": False})
    result = ctl("wait", "web", "--timeout", "0.5")
    assert result.code == 1, result.err
    assert result.out == "timeout: web not ready (stopped)\n"


def test_wait_is_woken_when_the_template_starts(gafferd: Daemon, client: Client) -> None:
    client.create_process({"name": "web", **TICKING, "start": False})
    proc = spawn_script("gafferctl", "--connect", gafferd.url, "wait", "web", "--timeout", "20")
    try:
        assert proc.poll() is None  # web is stopped: it cannot be done yet
        client.start_process("web")
        wait_for(lambda: proc.poll() is not None, timeout=15)
        assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_wait_exited_returns_once_a_job_completed(
    ctl: Callable[..., Result], client: Client
) -> None:
    client.create_process(
        {"name": "job", "cmd": "sleep", "args": ["0.5"], "restart": "never", "start": True}
    )
    result = ctl("wait", "job", "--exited", "--timeout", "10")
    assert result.code == 0, result.err
    assert client.status("job")["state"] == "completed"


def test_wait_usage_errors(ctl: Callable[..., Result], client: Client) -> None:
    client.create_process({"name": "web", **TICKING, "start": False})
    assert ctl("wait", "web", "--ready", "--exited").code == 2
    assert ctl("wait", "web", "--timeout", "nan").code == 2
    assert ctl("wait", "nosuch", "--timeout", "1").code == 1
