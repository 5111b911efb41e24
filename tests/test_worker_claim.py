"""A gunicorn worker's claim to manage (``gaffer_gevent.worker``), in process with real children.

The gunicorn tests show it through real workers; timing there is gunicorn's. Here a
``Runtime`` held by the test stands for the managing worker, so the moment it lets go
(cleanly, or as if killed) is the test's to choose.
"""

from __future__ import annotations

import os
import posix
import signal
import subprocess
from pathlib import Path

from flask import Flask

from gaffer_gevent.api import Gaffer
from gaffer_gevent.leftovers import Group, read_stat
from gaffer_gevent.manager import Manager
from gaffer_gevent.runtime import STATE_FILE, Record, Runtime, write_record
from gaffer_gevent.template import ProcessTemplate
from gaffer_gevent.worker import ManagerClaim

from .helpers import wait_for

TIMEOUT = 10.0


def claim_over(directory: Path, manager: Manager) -> tuple[ManagerClaim, Flask]:
    app = Flask("host")
    Gaffer(manager, app)
    template = ProcessTemplate.from_json({"name": "sleeper", "cmd": "sleep 600"})
    claim = ManagerClaim(
        app, manager, claim=lambda: Runtime(str(directory)),
        start=lambda: manager.add_template(template),
    )  # fmt: skip
    return claim, app


def test_a_standby_answers_503_then_takes_over_when_the_lock_is_free(
    manager: Manager, tmp_path: Path
) -> None:
    directory = tmp_path / "run"
    holder = Runtime(str(directory))  # the managing worker
    claim, app = claim_over(directory, manager)
    claim.begin()
    client = app.test_client()
    reply = client.get("/processes")
    assert reply.status_code == 503 and reply.headers["Retry-After"] == "1"
    assert reply.json == {
        "error": "not_the_manager",
        "reason": f"pid {os.getpid()} manages the processes; gaffer needs exactly one worker",
    }
    assert not manager.states  # nothing started while standing by
    holder.close()
    wait_for(lambda: claim.active, timeout=TIMEOUT)
    assert client.get("/processes").json == ["sleeper"]
    assert claim.stop(TIMEOUT)
    assert client.get("/processes").json == {
        "error": "not_the_manager", "reason": "this worker is stopping"
    }  # fmt: skip
    assert not os.path.exists(directory / "lock")


def test_a_standby_told_to_stop_still_stops_what_a_dead_manager_left(
    manager: Manager, tmp_path: Path
) -> None:
    directory = tmp_path / "run"
    orphan = subprocess.Popen(["sleep", "600"], start_new_session=True)
    try:
        holder = Runtime(str(directory))
        stat = read_stat(orphan.pid)
        assert stat is not None
        write_record(str(directory / STATE_FILE), Record(4242, [Group(orphan.pid, stat.start)]))
        claim, _ = claim_over(directory, manager)
        claim.begin()
        assert not claim.active
        assert holder._fd is not None
        posix.close(holder._fd)  # the managing worker is SIGKILLed: lock gone, record kept
        assert claim.stop(TIMEOUT)  # before the stand-by's next try of the lock
        assert orphan.wait(TIMEOUT) == -signal.SIGTERM
        assert not manager.states  # it stopped what was left, and started nothing
        assert not os.path.exists(directory / STATE_FILE)
    finally:
        if orphan.poll() is None:
            orphan.kill()
            orphan.wait(TIMEOUT)
