"""supervisord 4.3, measured through its own control surface: XML-RPC on its inet_http_server.

Each measurement starts a fresh supervisord (`-n`, foreground, own session) from a config
written to a temp dir, with the HTTP server bound to 127.0.0.1 only, and stops it afterwards
by pid and process group. Programs are defined with `autostart=false`, so the clock starts at
the one XML-RPC call that starts them.
"""

from __future__ import annotations

import os
import time
import xmlrpc.client
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
from http_stream import StalledReaders, measure_rate

NAME = "supervisord"

CONFIG = """\
[inet_http_server]
port = 127.0.0.1:{port}

[supervisord]
nodaemon = true
logfile = {tmp}/supervisord.log
pidfile = {tmp}/supervisord.pid
childlogdir = {tmp}

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[program:sleepers]
command = /bin/sleep 3600
numprocs = 100
process_name = %(program_name)s_%(process_num)02d
autostart = false
startsecs = 0

[program:one]
command = /bin/sleep 3600
autostart = false
startsecs = 0

[program:flood]
command = {flood}
autostart = false
startsecs = 0
stdout_logfile = {tmp}/flood.log
"""


class Supervisord:
    """One supervisord instance with the bench's programs; a context manager that stops it."""

    def __init__(self, supervisord: str, tmp: Path) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.scripts = ChildScripts(tmp)
        conf = tmp / "supervisord.conf"
        conf.write_text(CONFIG.format(port=self.port, tmp=tmp, flood=" ".join(self.scripts.flood)))
        self.proc = launch(
            [supervisord, "-n", "-c", str(conf)],
            stdin=open(os.devnull, "rb"),  # noqa: SIM115 - closed with the process
            stdout=open(tmp / "stdout.txt", "wb"),  # noqa: SIM115
            stderr=open(tmp / "stderr.txt", "wb"),  # noqa: SIM115
        )
        self.pid = self.proc.pid
        self.rpc: Any = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{self.port}/RPC2").supervisor
        wait_for(self._ready, timeout=20, interval=0.05)

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"supervisord exited: {(self.tmp / 'stderr.txt').read_text()}")
        try:
            return bool(self.rpc.getState()["statename"] == "RUNNING")
        except OSError:
            return False

    def running_pids(self, group: str) -> list[int]:
        """OS pids of the group's processes that supervisord reports RUNNING and that live."""
        infos = self.rpc.getAllProcessInfo()
        return [
            info["pid"]
            for info in infos
            if info["group"] == group and info["statename"] == "RUNNING" and is_alive(info["pid"])
        ]

    def __enter__(self) -> Supervisord:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        stop_tree(self.proc, grace=15.0)


def measure_spawn(tools: Any, count: int = 100, timeout: float = 60.0) -> dict[str, float]:
    """Seconds from one `startProcessGroup` call to `count` live RUNNING processes, and back.

    Also the daemon's RSS with the `count` children up (after a 1 s settle).
    """
    with workdir("supervisord") as tmp, Supervisord(tools.supervisord, tmp) as daemon:

        def all_up() -> list[int] | None:
            pids = daemon.running_pids("sleepers")
            return pids if len(pids) == count else None

        def all_down() -> bool:
            return not (set(pids) & live_children(daemon.pid)) and not daemon.running_pids(
                "sleepers"
            )

        start = time.perf_counter()
        daemon.rpc.startProcessGroup("sleepers", False)
        pids = wait_for(all_up, timeout=timeout, interval=POLL)
        up = time.perf_counter() - start
        time.sleep(1.0)
        rss = rss_mb(daemon.pid)
        start = time.perf_counter()
        daemon.rpc.stopProcessGroup("sleepers", False)
        wait_for(all_down, timeout=timeout, interval=POLL)
        down = time.perf_counter() - start
    return {"up_s": up, "down_s": down, "rss_100_mb": rss}


def measure_respawn(tools: Any, kills: int = 20) -> dict[str, Any]:
    """Milliseconds from SIGKILL of the one child to a new child pid (`respawn_latencies`).

    The kills land at random phases of one second, the period of supervisord's select loop.
    """
    with workdir("supervisord") as tmp, Supervisord(tools.supervisord, tmp) as daemon:
        daemon.rpc.startProcess("one", True)
        pid = wait_for(lambda: daemon.running_pids("one"), timeout=10, interval=POLL)[0]
        time.sleep(1.0)
        rss_1 = rss_mb(daemon.pid)
        latencies = respawn_latencies(
            daemon.pid, pid, lambda new: daemon.running_pids("one") == [new], kills, period=1.0
        )
    return respawn_summary(latencies, rss_1)


def measure_output(tools: Any, duration: float = 5.0) -> dict[str, Any]:
    """Bytes/s one HTTP client gets from `/logtail/flood` while the child floods its log file."""
    with workdir("supervisord") as tmp, Supervisord(tools.supervisord, tmp) as daemon:
        daemon.rpc.startProcess("flood", True)
        wait_for(lambda: (tmp / "flood.log").exists(), timeout=10, interval=POLL)
        result: dict[str, Any] = measure_rate(daemon.port, "/logtail/flood", duration)
    result["how"] = "GET /logtail/flood on the inet_http_server (stdout_logfile set)"
    return result


def measure_flood(tools: Any, duration: float = 60.0) -> dict[str, Any]:
    """Daemon RSS each second while the child floods and one /logtail reader never reads."""
    with workdir("supervisord") as tmp, Supervisord(tools.supervisord, tmp) as daemon:
        daemon.rpc.startProcess("flood", True)
        wait_for(lambda: (tmp / "flood.log").exists(), timeout=10, interval=POLL)
        readers = StalledReaders(daemon.port, "/logtail/flood", stalled=1)
        try:
            series = sample_rss(daemon.pid, duration)
        finally:
            readers.close()
        logged = sum(f.stat().st_size for f in tmp.glob("flood.log*")) / MB
    return {
        "rss_series_mb": series,
        "start_mb": series[0],
        "max_mb": max(series),
        "end_mb": series[-1],
        "log_mb_on_disk": logged,
        "how": "stdout_logfile (50 MB x 10 rotation, the defaults) + one /logtail reader that "
        "connects and never reads",
    }
