"""gafferctl restart --rolling: the replacements come a few at a time, and --wait says how it
ended (0 once every pid was replaced, 1 with the reason when the roll aborted)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gaffer_gevent.client import Client
from tests.api.support import late_ready

from ..helpers import wait_for
from .conftest import Result


def ready_web(client: Client, gate: Path, count: int = 3) -> list[int]:
    """``web``: ``count`` pids, each ready (a readiness check) once ``gate`` exists."""
    gate.touch()
    client.create_process({"name": "web", **late_ready(str(gate)), "numprocesses": count})
    return wait_for(  # type: ignore[no-any-return]
        lambda: (
            (pids := client.pids("web")) and client.status("web").get("ready") == count and pids
        ),
        timeout=15,
    )


def test_rolling_restart_with_wait_returns_once_every_pid_was_replaced(
    ctl: Callable[..., Result], client: Client, tmp_path: Path
) -> None:
    old = ready_web(client, tmp_path / "gate")
    result = ctl("restart", "web", "--rolling", "--max-unavailable", "2", "--wait")
    assert (result.code, result.out) == (0, "ok\n"), result.err
    new = client.pids("web")
    assert len(new) == 3 and not set(new) & set(old)
    assert client.status("web")["ready"] == 3


def test_a_roll_whose_replacement_never_gets_ready_exits_1_and_keeps_the_old_pids(
    ctl: Callable[..., Result], client: Client, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    old = ready_web(client, gate)
    gate.unlink()  # the new version never gets ready
    result = ctl("restart", "web", "--rolling", "--ready-timeout", "0.5", "--wait")
    assert result.code == 1
    assert "rolling restart aborted" in result.err and "not ready within 0.5 s" in result.err
    wait_for(lambda: client.pids("web") == old, timeout=10)


def test_bad_roll_options_are_refused_by_gafferd(
    ctl: Callable[..., Result], client: Client, tmp_path: Path
) -> None:
    ready_web(client, tmp_path / "gate", count=1)
    for option, value in (("--max-unavailable", "0"), ("--ready-timeout", "nan")):
        result = ctl("restart", "web", "--rolling", option, value)
        assert result.code == 1, (option, result.out, result.err)
        assert "bad_value" in result.err or "must" in result.err, result.err
