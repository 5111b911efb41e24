"""What ``--wait`` counts as done, from the events alone (the feed and timing are tested e2e)."""

from __future__ import annotations

from gaffer_gevent.cli.waits import Expect


def test_exits_of_the_named_pids_only():
    expect = Expect("web", exits=[1, 2])
    assert not expect.seen("exit", {"name": "web", "pid": 3})
    assert not expect.seen("exit", {"name": "db", "pid": 1})  # another template
    assert not expect.seen("proc.web.exit", {"name": "web", "pid": 1})  # the twin is not counted
    assert expect.describe() == "2 to exit"
    assert not expect.seen("exit", {"name": "web", "pid": 1})
    assert expect.seen("exit", {"name": "web", "pid": 2})
    assert expect.done and expect.failed is None and expect.describe() == "done"


def test_spawns_and_failures():
    expect = Expect("web", exits=[1], spawns=2)
    expect.seen("spawn", {"name": "web", "pid": 5})
    assert expect.describe() == "1 to exit, 1 to start"
    expect.seen("spawn", {"name": "web", "pid": 6})
    assert expect.seen("exit", {"name": "web", "pid": 1})
    broken = Expect("bad", spawns=1)
    assert broken.seen("spawn_error", {"name": "bad", "pid": 1, "error": "ENOENT"})
    assert broken.failed == "bad: spawn_error ENOENT"
    assert Expect("x").done  # nothing to wait for
    gone = Expect("x", exits=[1])
    assert gone.seen("delete", {"name": "x"}) and gone.failed == "x: delete"
