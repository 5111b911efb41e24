"""supervisord 4.3, measured through its own control surface: XML-RPC on its inet_http_server.

Each measurement starts a fresh supervisord (`-n`, foreground, own session) from a config
written to a temp dir, with the HTTP server bound to 127.0.0.1 only, and stops it afterwards
by pid and process group. Programs are defined with `autostart=false`, so the clock starts at
the one XML-RPC call that starts them.
"""

from __future__ import annotations

import os
import signal
import time
import xmlrpc.client
from pathlib import Path
from types import TracebackType
from typing import Any

from common import (
    MB,
    ChildScripts,
    NewChildWatch,
    free_port,
    is_alive,
    launch,
    live_children,
    percentile,
    rss_mb,
    sample_rss,
    settle_delays,
    stop_tree,
    wait_for,
    workdir,
)
from http_stream import StalledReaders, measure_rate

NAME = "supervisord"
POLL = 0.02  # status poll interval, the same for every manager

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
        start = time.perf_counter()
        daemon.rpc.startProcessGroup("sleepers", False)
        pids = wait_for(
            lambda: (p := daemon.running_pids("sleepers")) and len(p) == count and p,
            timeout=timeout,
            interval=POLL,
        )
        up = time.perf_counter() - start
        time.sleep(1.0)
        rss = rss_mb(daemon.pid)
        start = time.perf_counter()
        daemon.rpc.stopProcessGroup("sleepers", False)
        wait_for(
            lambda: (
                not (set(pids) & live_children(daemon.pid)) and not daemon.running_pids("sleepers")
            ),
            timeout=timeout,
            interval=POLL,
        )
        down = time.perf_counter() - start
    return {"up_s": up, "down_s": down, "rss_100_mb": rss}


def measure_respawn(tools: Any, kills: int = 20) -> dict[str, Any]:
    """Milliseconds from SIGKILL of the one child to a new child pid under supervisord.

    The new pid is detected in the process table (a new child of the daemon), not through the
    API, so the figure is the manager's reaction time alone (polling the API would wake
    supervisord's 1 s select loop and flatter it). Between kills the bench waits until
    supervisord reports the new process RUNNING, then a random 0.1-1.1 s (`settle_delays`,
    one period of its select timeout) so the kill lands at a random phase of the daemon's
    loop, as a real crash would.
    """
    with workdir("supervisord") as tmp, Supervisord(tools.supervisord, tmp) as daemon:
        daemon.rpc.startProcess("one", True)
        pid = wait_for(lambda: daemon.running_pids("one"), timeout=10, interval=POLL)[0]
        time.sleep(1.0)
        rss_1 = rss_mb(daemon.pid)
        latencies = []
        for settle in settle_delays(kills):
            watch = NewChildWatch(daemon.pid)
            start = time.perf_counter()
            os.kill(pid, signal.SIGKILL)
            new_pid = wait_for(watch.poll, timeout=30, interval=0.0005)
            latencies.append((time.perf_counter() - start) * 1000)
            wait_for(lambda n=new_pid: daemon.running_pids("one") == [n], timeout=10, interval=POLL)
            pid = new_pid
            time.sleep(settle)
    return {
        "respawn_ms": latencies,
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
        "rss_1_mb": rss_1,
    }


def measure_output(tools: Any, duration: float = 5.0) -> dict[str, Any]:
    """Bytes/s one HTTP client gets from `/logtail/flood` while the child floods its log file."""
    with workdir("supervisord") as tmp, Supervisord(tools.supervisord, tmp) as daemon:
        daemon.rpc.startProcess("flood", True)
        wait_for(lambda: (tmp / "flood.log").exists(), timeout=10, interval=POLL)
        result = measure_rate(daemon.port, "/logtail/flood", duration)
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
