"""Every greenlet of ours has an owner that ends it: after a stop, none is left.

A whole gafferd is built in this process the way the daemon builds it (bootstrap:
manager, app, log files, webhooks, server), then given work of every kind: children
writing to log files, a continuous stream feed, a /watch SSE feed, a websocket, a
webhook delivery; and the manager's own greenlets: health checks on a short
period, a template waiting on a dependency that never gets ready, a crash loop
with its respawn pending in backoff, a rolling restart in progress, and ``-vv``'s
console. Stopping it the way the daemon does must leave no greenlet running code
of ``gaffer_gevent`` (found by walking ``gc.get_objects()``).
"""

from __future__ import annotations

import contextlib
import gc
import json
from pathlib import Path
from typing import Any

import gevent
import httpx
import websocket
from greenlet import greenlet

from gaffer_gevent import bootstrap
from gaffer_gevent.config import Address, EndpointConfig
from gaffer_gevent.console import Console, EchoLayout
from gaffer_gevent.server import make_servers

from .helpers import CHILDREN, PYTHON, Receiver, wait_for

TIMEOUT = 10.0


def code_of(g: greenlet) -> str:
    """The module of the code a greenlet runs (its target or, for a gevent.Greenlet, ``_run``)."""
    target = getattr(g, "_run", None) or getattr(g, "run", None)
    target = getattr(target, "__func__", target)
    if isinstance(target, gevent.Greenlet):
        return ""
    module = getattr(target, "__module__", "") or ""
    # A partial or a callable object: look one level in.
    inner = getattr(target, "func", None)
    if not module.startswith("gaffer_gevent") and inner is not None:
        module = getattr(inner, "__module__", "") or ""
    return module


def ours_alive() -> list[str]:
    gc.collect()
    left = []
    for obj in gc.get_objects():
        if isinstance(obj, greenlet) and not obj.dead and code_of(obj).startswith("gaffer_gevent"):
            left.append(repr(obj))
    return left


def build(tmp_path: Path, hook_url: str, echoed: list[bytes]) -> tuple[Any, ...]:
    ini = tmp_path / "gaffer.ini"
    ini.write_text(
        f"[gaffer]\nlog_dir = {tmp_path / 'logs'}\n\n"
        f"[webhooks]\nproc.ticker.spawn = {hook_url}/spawn\n\n"
        f"[process:ticker]\ncmd = {PYTHON}\nargs = -u {CHILDREN / 'counter.py'} 0 0.05\n"
        "redirect_output = stdout\nstdout_logfile = ticker.log\n\n"
        "[process:echo]\ncmd = cat\nredirect_output = stdout\nredirect_input = true\n\n"
        # Checks on a short period: an http readiness that never passes (nothing listens on
        # port 1) and an exec liveness that always does.
        "[process:checked]\ncmd = sleep\nargs = 30\n"
        'readiness = {"http": "http://127.0.0.1:1/", "period": 0.05, "timeout": 0.5}\n'
        'liveness = {"exec": ["true"], "period": 0.05}\n\n'
        # Waits for ever on its dependency.
        "[process:waiter]\ncmd = sleep\nargs = 30\ndepends_on = checked ready\n\n"
        # Crashes at once: its respawn waits 30 s in backoff.
        "[process:crasher]\ncmd = false\nrestart_delay = 30\nmax_restart_delay = 30\n\n"
        # Rolled: its replacements never get ready, so the rollout keeps waiting.
        "[process:rolled]\ncmd = sleep\nargs = 30\nnumprocesses = 2\n"
        'readiness = {"exec": ["false"], "period": 0.05}\n'
    )
    (tmp_path / "logs").mkdir()
    config = bootstrap.load(str(ini))
    manager = bootstrap.build_manager(config)
    app = bootstrap.build_app(manager, config)
    extras = bootstrap.start_extras(app, manager, config)
    console = Console(manager, EchoLayout(), echoed.append)  # gafferd -vv
    endpoint = EndpointConfig("test", [Address("tcp", "127.0.0.1", 0, "")])
    ((server, url),) = make_servers(app, [endpoint], limits=config.connections)
    server.start()
    bootstrap.apply_templates(manager, config)
    return manager, extras, console, server, url


def test_no_greenlet_of_ours_outlives_a_stop(tmp_path: Path, receiver: Receiver) -> None:
    before = set(ours_alive())
    echoed: list[bytes] = []
    manager, extras, console, server, url = build(tmp_path, receiver.url, echoed)
    lines: list[bytes] = []
    events: list[bytes] = []

    def follow(path: str, into: list[bytes]) -> None:
        # The server ends the feed mid-body.
        with contextlib.suppress(httpx.HTTPError), httpx.stream("GET", url + path) as r:
            for chunk in r.iter_bytes():
                into.append(chunk)

    followers = [
        gevent.spawn(follow, "/streams/ticker/stdout?feed=continuous", lines),
        gevent.spawn(follow, "/watch?feed=eventsource", events),
    ]
    try:
        (echo,) = wait_for(lambda: manager.pids("echo"), timeout=TIMEOUT)
        ws = websocket.create_connection(url.replace("http", "ws") + f"/wstreams/{echo}")
        ws.send(json.dumps({"event": "WRITE", "data": "hello\n"}))
        wait_for(lambda: "hello" in ws.recv(), timeout=TIMEOUT)
        wait_for(lambda: receiver.events("/spawn"), timeout=TIMEOUT)
        wait_for(lambda: lines and events, timeout=TIMEOUT)
        log = tmp_path / "logs" / "ticker.log"
        wait_for(lambda: log.exists() and log.stat().st_size > 0, timeout=TIMEOUT)
        wait_for(lambda: manager.status("crasher")["state"] == "backoff", timeout=TIMEOUT)
        assert manager.status("waiter")["state"] == "waiting"
        checks = manager.get_process(manager.pids("checked")[0]).checks
        wait_for(lambda: checks is not None and checks.last, timeout=TIMEOUT)
        r = httpx.post(url + "/processes/rolled/_restart?rolling=1&ready_timeout=60")
        assert r.status_code == 200, r.text
        state = manager.states["rolled"]
        assert state.rollout is not None and not state.rollout.dead
        wait_for(lambda: b"ticker" in b"".join(echoed), timeout=TIMEOUT)
        running = ours_alive()
        assert len(running) > len(before), running  # the walk does see our greenlets

        # The daemon's shutdown, step by step (daemon.py ``_shutdown``).
        manager.stop_all(10)
        assert not manager.greenlets, list(manager.greenlets)
        extras.close()
        console.close()
        server.stop(timeout=1)
        server.connections.close()
        manager.bus.close()
        ws.close()
        gevent.joinall(followers, timeout=TIMEOUT)
        assert all(f.dead for f in followers)  # the server ended their feeds
        wait_for(lambda: set(ours_alive()) <= before, timeout=TIMEOUT)
    finally:
        gevent.killall(followers)
