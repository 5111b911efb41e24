"""The manager owns every greenlet it starts (``Manager.greenlets``): ``stop_all`` leaves
that group empty, whatever was pending (a spawner mid-way, a respawn in backoff, a
flapping retry, an ordered group stop) and whatever else was put in it."""

from __future__ import annotations

from typing import Any

import gevent

from gaffer_gevent.manager import SPAWN_BATCH, Manager
from gaffer_gevent.template import ProcessTemplate

from ..helpers import wait_for

TIMEOUT = 10.0


def add(manager: Manager, name: str, **fields: Any) -> None:
    manager.add_template(ProcessTemplate.from_json({"name": name, **fields}))


def test_stop_all_leaves_the_group_empty(manager: Manager) -> None:
    # A crash loop: its respawn waits 30 s in the group.
    add(manager, "crasher", cmd="false", restart_delay=30, max_restart_delay=30)
    # Flapping: gives up after two quick exits and retries 30 s later, from the group.
    add(manager, "flapper", cmd="false", flapping={"attempts": 2, "window": 10,
                                                   "retry_in": 30, "max_retry": 3})  # fmt: skip
    # More than one batch: the spawner greenlet is still at work when add_template returns.
    add(manager, "many", cmd="sleep 30", numprocesses=SPAWN_BATCH * 3)
    assert manager.states["many"].spawner in manager.greenlets
    wait_for(lambda: manager.status("crasher")["state"] == "backoff", timeout=TIMEOUT)
    wait_for(lambda: manager.states["flapper"].retry_timer is not None, timeout=TIMEOUT)
    # Something the manager's stop does not know by name: the group's kill ends it.
    stray = manager.greenlets.spawn(gevent.sleep, 60)
    assert len(manager.greenlets) >= 3

    assert manager.stop_all(TIMEOUT)
    assert not manager.greenlets, list(manager.greenlets)
    assert stray.dead
    assert not manager.running and not manager.stopping


def test_stop_all_from_a_greenlet_of_the_group_does_not_kill_its_caller(
    manager: Manager,
) -> None:
    add(manager, "sleeper", cmd="sleep 30")
    caller = manager.greenlets.spawn(manager.stop_all, TIMEOUT)
    assert caller.get(timeout=TIMEOUT) is True  # it returned: it was not killed midway
    assert not manager.greenlets
