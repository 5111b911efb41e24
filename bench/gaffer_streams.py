"""gaffer-gevent alone: SSE fan-out, thousands of idle SSE clients, websocket round trip.

Neither peer has a live output feed to compare with, so these are measured against the targets
of the HTTP API issue. The clients that need many sockets run in a gevent subprocess
(`sse_clients.py`); the driver keeps measuring gafferd (RSS, `/ping`) meanwhile.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import websocket
from common import launch, percentile, raise_fd_limit, rss_mb, stop_tree, wait_for, workdir
from gaffer import REPO, Gafferd

CLIENTS = Path(__file__).resolve().parent / "sse_clients.py"
PROJECT_PYTHON = REPO / ".venv" / "bin" / "python"


def measure_fanout(
    tools: Any, clients: int = 100, rate: float = 1000.0, seconds: float = 10.0
) -> dict[str, Any]:
    """`clients` eventsource subscribers of one child printing `rate` timestamped lines/s,
    on a fresh gafferd (see `fanout_on`)."""
    with workdir("gaffer") as tmp, Gafferd(tmp) as daemon:
        return fanout_on(daemon, clients, rate, seconds)


def fanout_on(
    daemon: Gafferd,
    clients: int = 100,
    rate: float = 1000.0,
    seconds: float = 10.0,
    headers: Sequence[str] = (),
    name: str = "ticker",
) -> dict[str, Any]:
    """The fan-out on a running gafferd: creates the ticker template `name`, runs the clients.

    The child waits for a go-file that the client process creates once every client has its
    response headers, so each client should see every printed line: delivered is compared
    with printed exactly, and latency is the client's receipt time minus the child's print
    time (same clock). `headers` (`Name: value`) go with every subscription.
    """
    lines = int(rate * seconds)
    go_file = daemon.tmp / f"go-{name}"
    ticker = daemon.scripts.ticker(go_file, lines, rate)
    daemon.create(name, ticker[0], ticker[1:], redirect_output=["stdout"])
    pid = wait_for(lambda: daemon.pids(name), timeout=10, interval=0.02)[0]
    client = launch(
        [
            str(PROJECT_PYTHON),
            str(CLIENTS),
            "fanout",
            f"--port={daemon.port}",
            f"--path=/streams/{pid}/stdout?feed=eventsource",
            f"--clients={clients}",
            f"--lines={lines}",
            f"--rate={rate}",
            f"--go-file={go_file}",
            *(f"--header={header}" for header in headers),
        ],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    try:
        out, _ = client.communicate(timeout=seconds + 60)
    finally:
        stop_tree(client, grace=2.0)
    if client.returncode != 0:
        raise RuntimeError(f"fan-out client failed with exit status {client.returncode}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    result["rate_lines_per_s"] = rate
    result["seconds"] = seconds
    return result


def ping_latencies(daemon: Gafferd, count: int, spacing: float = 0.005) -> list[float]:
    """`GET /ping` round trips in ms on one keep-alive connection, `spacing` s apart."""
    latencies = []
    for _ in range(count):
        start = time.perf_counter()
        if daemon.call("GET", "/ping") != "OK":
            raise RuntimeError("/ping did not answer OK")
        latencies.append((time.perf_counter() - start) * 1000)
        time.sleep(spacing)
    return latencies


def measure_idle(tools: Any, clients: int = 1000, pings: int = 200) -> dict[str, Any]:
    """RSS per idle eventsource client and `/ping` latency while `clients` of them are held.

    The clients subscribe to the stdout of a child that prints nothing. RSS per client is the
    growth of gafferd's RSS from before they connect to 2 s after the last one did.
    """
    raise_fd_limit()  # gafferd and the client process inherit it
    with workdir("gaffer") as tmp, Gafferd(tmp) as daemon:
        daemon.create("quiet", "sleep", ["3600"], redirect_output=["stdout"])
        pid = wait_for(lambda: daemon.pids("quiet"), timeout=10, interval=0.02)[0]
        ping_latencies(daemon, 20)
        time.sleep(1.0)
        base = rss_mb(daemon.pid)
        base_pings = ping_latencies(daemon, pings)
        holder = launch(
            [
                str(PROJECT_PYTHON),
                str(CLIENTS),
                "idle",
                f"--port={daemon.port}",
                f"--path=/streams/{pid}/stdout?feed=eventsource",
                f"--clients={clients}",
                "--hold=300",
            ],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        try:
            assert holder.stdout is not None
            line = holder.stdout.readline()
            if not line:
                raise RuntimeError("idle client process exited before connecting")
            report: dict[str, Any] = json.loads(line)
            time.sleep(2.0)
            loaded = rss_mb(daemon.pid)
            pings_held = ping_latencies(daemon, pings)
        finally:
            stop_tree(holder, grace=2.0)
    connected = max(1, int(report["connected"]))
    return {
        "clients": clients,
        **report,
        "rss_before_mb": base,
        "rss_held_mb": loaded,
        "kib_per_client": (loaded - base) * 1024 / connected,
        "ping_p50_ms": percentile(pings_held, 50),
        "ping_p99_ms": percentile(pings_held, 99),
        "ping_idle_p50_ms": percentile(base_pings, 50),
        "ping_idle_p99_ms": percentile(base_pings, 99),
    }


def measure_websocket(tools: Any, round_trips: int = 1000) -> dict[str, Any]:
    """Round trip of a message through `ws://…/wstreams/<pid>` -> stdin -> `cat` -> stdout."""
    with workdir("gaffer") as tmp, Gafferd(tmp) as daemon:
        daemon.create("echo", "/bin/cat", [], redirect_input=True, redirect_output=["stdout"])
        pid = wait_for(lambda: daemon.pids("echo"), timeout=10, interval=0.02)[0]
        ws = websocket.create_connection(f"ws://127.0.0.1:{daemon.port}/wstreams/{pid}", timeout=10)
        try:
            latencies = []
            for index in range(-20, round_trips):  # 20 warm-up round trips
                message = f"round trip {index}\n"
                start = time.perf_counter()
                ws.send(message)
                received = ""
                while message not in received:
                    frame = ws.recv()
                    received += frame.decode() if isinstance(frame, bytes) else frame
                    if received.startswith('{"error"'):
                        raise RuntimeError(f"websocket refused: {received}")
                if index >= 0:
                    latencies.append((time.perf_counter() - start) * 1000)
        finally:
            with contextlib.suppress(Exception):
                ws.close()
    return {
        "round_trips": round_trips,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "max_ms": max(latencies),
    }
