"""circusd 0.19, measured through its own control surface: the ZeroMQ command endpoint.

Each measurement starts a fresh circusd from an ini written to a temp dir (endpoint, pubsub and
stats all on tcp://127.0.0.1), with watchers defined `autostart = false`, so the clock starts
at the one `start` command. Commands go through `circus_bridge.py` (circus's own client,
running in the bench venv) kept open for the whole measurement.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from common import (
    MB,
    POLL,
    ChildScripts,
    free_port,
    is_alive,
    launch,
    live_children,
    respawn_latencies,
    respawn_summary,
    rss_mb,
    sample_rss,
    stop_tree,
    wait_for,
    workdir,
)

NAME = "circusd"
CHECK_DELAY = 5.0  # circus's default `check_delay` for an ini config: its respawn tick
BRIDGE = Path(__file__).resolve().parent / "circus_bridge.py"

CONFIG = """\
[circus]
endpoint = tcp://127.0.0.1:{endpoint}
pubsub_endpoint = tcp://127.0.0.1:{pubsub}
stats_endpoint = tcp://127.0.0.1:{stats}
statsd = false
check_delay = {check_delay:g}

[watcher:sleepers]
cmd = /bin/sleep 3600
numprocesses = 100
autostart = false

[watcher:one]
cmd = /bin/sleep 3600
numprocesses = 1
autostart = false
# circus's default flapping check (2 deaths within 1 s) would stop the watcher during the
# 20 kills; supervisord and gaffer-gevent have no such check enabled by default.
check_flapping = false

[watcher:flood]
cmd = {flood}
numprocesses = 1
autostart = false
stdout_stream.class = FileStream
stdout_stream.filename = {tmp}/flood.log
stdout_stream.max_bytes = 52428800
stdout_stream.backup_count = 10
"""


class Circusd:
    """One circusd with the bench's watchers and a command bridge; stops both on exit."""

    def __init__(self, tools: Any, tmp: Path) -> None:
        self.tmp = tmp
        self.scripts = ChildScripts(tmp)
        endpoint = f"tcp://127.0.0.1:{free_port()}"
        conf = tmp / "circus.ini"
        conf.write_text(
            CONFIG.format(
                endpoint=endpoint.rsplit(":", 1)[1],
                pubsub=free_port(),
                stats=free_port(),
                check_delay=CHECK_DELAY,
                tmp=tmp,
                flood=" ".join(self.scripts.flood),
            )
        )
        self.proc = launch(
            [tools.circusd, str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=open(tmp / "stdout.txt", "wb"),  # noqa: SIM115 - closed with the process
            stderr=subprocess.STDOUT,
        )
        self.pid = self.proc.pid
        self.bridge = launch(
            [tools.python, str(BRIDGE), endpoint],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        try:
            wait_for(self._ready, timeout=30, interval=0.1)
        except BaseException:
            self.close()
            raise

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"circusd exited: {(self.tmp / 'stdout.txt').read_text()}")
        try:
            return "watchers" in self.call("list")
        except RuntimeError:
            return False

    def call(self, command: str, **properties: Any) -> dict[str, Any]:
        """One circus command through the bridge; its reply dict, or RuntimeError."""
        assert self.bridge.stdin is not None and self.bridge.stdout is not None
        self.bridge.stdin.write(
            json.dumps({"command": command, "properties": properties}).encode() + b"\n"
        )
        self.bridge.stdin.flush()
        line = self.bridge.stdout.readline()
        if not line:
            raise RuntimeError("circus bridge exited")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(answer["error"])
        reply: dict[str, Any] = answer["reply"]
        if reply.get("status") == "error":
            raise RuntimeError(reply.get("reason", "circus error"))
        return reply

    def live_pids(self, watcher: str) -> list[int]:
        """OS pids circus lists for the watcher that are alive (not zombies)."""
        return [pid for pid in self.call("list", name=watcher)["pids"] if is_alive(pid)]

    def close(self) -> None:
        """Stop the bridge and circusd (and whatever circusd left behind)."""
        stop_tree(self.bridge, grace=2.0)
        # circusd 0.19 sometimes never exits on SIGTERM after a watcher was stopped by command
        # (seen: "sleepers stopped", then nothing); its children are gone by then, so a short
        # grace before SIGKILL costs nothing.
        stop_tree(self.proc, grace=3.0)

    def __enter__(self) -> Circusd:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def measure_spawn(tools: Any, count: int = 100, timeout: float = 60.0) -> dict[str, float]:
    """Seconds from one `start sleepers` command to `count` live processes, and back to none."""
    with workdir("circus") as tmp, Circusd(tools, tmp) as daemon:

        def all_up() -> list[int] | None:
            pids = daemon.live_pids("sleepers")
            return pids if len(pids) == count else None

        def all_down() -> bool:
            return (
                not (set(pids) & live_children(daemon.pid))
                and not daemon.call("list", name="sleepers")["pids"]
            )

        start = time.perf_counter()
        daemon.call("start", name="sleepers")
        pids = wait_for(all_up, timeout=timeout, interval=POLL)
        up = time.perf_counter() - start
        time.sleep(1.0)
        rss = rss_mb(daemon.pid)
        start = time.perf_counter()
        daemon.call("stop", name="sleepers")
        wait_for(all_down, timeout=timeout, interval=POLL)
        down = time.perf_counter() - start
    return {"up_s": up, "down_s": down, "rss_100_mb": rss}


def measure_respawn(tools: Any, kills: int = 20) -> dict[str, Any]:
    """Milliseconds from SIGKILL of the one child to a new child pid (`respawn_latencies`).

    circus respawns from its periodic check (`check_delay`, 5 s by default in an ini), so the
    kills land at random phases of 5 s, as a real crash would.
    """
    with workdir("circus") as tmp, Circusd(tools, tmp) as daemon:
        daemon.call("start", name="one")
        pid = wait_for(lambda: daemon.live_pids("one"), timeout=10, interval=POLL)[0]
        time.sleep(1.0)
        rss_1 = rss_mb(daemon.pid)
        latencies = respawn_latencies(
            daemon.pid, pid, lambda new: daemon.live_pids("one") == [new], kills, CHECK_DELAY
        )
    return respawn_summary(latencies, rss_1)


def measure_output(tools: Any, duration: float = 5.0) -> dict[str, Any]:
    """circus has no HTTP (or other network) feed of a process's output: nothing to measure."""
    return {"na": "n/a (no HTTP output feed)"}


def measure_flood(tools: Any, duration: float = 60.0) -> dict[str, Any]:
    """Daemon RSS each second while the child floods into a FileStream nobody reads.

    circus cannot serve output to a client, so there is no reader to stall: the child's
    stdout goes to circus's FileStream (50 MB x 10 rotation, like supervisord's defaults).
    """
    with workdir("circus") as tmp, Circusd(tools, tmp) as daemon:
        daemon.call("start", name="flood")
        wait_for(lambda: (tmp / "flood.log").exists(), timeout=10, interval=POLL)
        series = sample_rss(daemon.pid, duration)
        logged = sum(f.stat().st_size for f in tmp.glob("flood.log*")) / MB
    return {
        "rss_series_mb": series,
        "start_mb": series[0],
        "max_mb": max(series),
        "end_mb": series[-1],
        "log_mb_on_disk": logged,
        "how": "stdout_stream FileStream (50 MB x 10 rotation), no reader (circus has no feed)",
    }
