"""Spawn storm (issue 12): does gafferd keep answering while one request starts 1,000 processes?

    .venv/bin/python bench/spawn_storm.py [--processes 1000] [--runs 3] [--write]

Each run starts a fresh gafferd (as bench/gaffer.py does) and a thread that sends `GET /ping`
on its own keep-alive connection every 2 ms, then measures three things:

1. storm: `POST /processes` with `numprocesses` = N (`sleep`); the pings sent from the POST
   until all N run give p50/p99/max, next to the time until all N run;
2. SIGTERM: a second storm of N; once a quarter of it runs, SIGTERM; the time until gafferd
   has exited, and until every one of its children is gone;
3. EMFILE: a gafferd limited to 256 descriptors asked for 300 processes with two pipes
   each, so most spawns fail with EMFILE: the `spawn_error` events seen on `/watch` in 3 s,
   `/ping` p99 meanwhile, and gafferd's CPU (a busy loop would show as ~100 %).

`--write` puts the figures in their own section of bench/RESULTS.md (between markers, so a
rerun replaces them). BENCH_GAFFERD=<path to another gafferd> measures another build.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import resource
import signal
import sys
import threading
import time
from typing import Any

import psutil
from common import (
    POLL,
    live_children,
    percentile,
    summarize,
    wait_for,
    workdir,
    write_section,
)
from gaffer import Gafferd

BEGIN, END = "<!-- spawn_storm: begin -->", "<!-- spawn_storm: end -->"
SLEEP = ["/bin/sleep", "3600.25"]  # a command line of the bench's own, to find leftovers
PING_INTERVAL = 0.002


class Pinger(threading.Thread):
    """`GET /ping` on one keep-alive connection in a loop: (time sent, seconds) per ping."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.samples: list[tuple[float, float]] = []
        self.errors = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            sent = time.monotonic()
            try:
                self.conn.request("GET", "/ping")
                assert self.conn.getresponse().read() == b"OK"
                self.samples.append((sent, time.monotonic() - sent))
            except (OSError, http.client.HTTPException, AssertionError):
                self.errors += 1
                self.conn.close()
            time.sleep(PING_INTERVAL)
        self.conn.close()

    def between(self, start: float, end: float) -> list[float]:
        """Latencies in ms of the pings sent between two instants."""
        return [latency * 1000 for sent, latency in self.samples if start <= sent <= end]


def ping_figures(latencies: list[float]) -> dict[str, float]:
    return {
        "pings": float(len(latencies)),
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "max_ms": max(latencies),
    }


def ours() -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if process.info["cmdline"] == SLEEP:
            found.append(process)
    return found


def storm(count: int) -> dict[str, float]:
    """Phases 1 and 2 on one gafferd."""
    with workdir("storm") as tmp, Gafferd(tmp) as daemon:
        pinger = Pinger(daemon.port)
        pinger.start()
        wait_for(lambda: len(pinger.samples) > 50, timeout=10)
        idle = ping_figures(pinger.between(0, time.monotonic()))
        start = time.monotonic()
        daemon.create("storm", SLEEP[0], SLEEP[1:], numprocesses=count)
        replied = time.monotonic() - start
        wait_for(lambda: daemon.running("storm") == count, timeout=120, interval=POLL)
        up = time.monotonic() - start
        during = ping_figures(pinger.between(start, start + up))
        daemon.call("DELETE", "/processes/storm")
        wait_for(lambda: not live_children(daemon.pid), timeout=60, interval=POLL)

        daemon.create("storm2", SLEEP[0], SLEEP[1:], numprocesses=count)
        wait_for(lambda: len(live_children(daemon.pid)) >= count // 4, timeout=60, interval=0.001)
        pinger.stop.set()
        signalled = time.monotonic()
        daemon.proc.send_signal(signal.SIGTERM)
        daemon.proc.wait(timeout=60)
        exited = time.monotonic() - signalled
        wait_for(lambda: not [p for p in ours() if p.status() != psutil.STATUS_ZOMBIE], timeout=60)
        gone = time.monotonic() - signalled
        pinger.join(timeout=5)
    return {
        "reply_s": replied, "up_s": up, "ping_idle_p99_ms": idle["p99_ms"],
        "ping_p50_ms": during["p50_ms"], "ping_p99_ms": during["p99_ms"],
        "ping_max_ms": during["max_ms"], "pings": during["pings"], "ping_errors": pinger.errors,
        "sigterm_exit_s": exited, "sigterm_children_gone_s": gone,
    }  # fmt: skip


@contextlib.contextmanager
def fd_limit(limit: int) -> Any:
    """Processes started inside inherit RLIMIT_NOFILE = ``limit``."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def emfile(window: float = 3.0) -> dict[str, float]:
    """Phase 3: spawns failing with EMFILE are events, not a busy loop."""
    with workdir("emfile") as tmp:
        with fd_limit(256):
            daemon = Gafferd(tmp)
        with daemon:
            watch = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=30)
            watch.request("GET", "/watch/spawn_error?feed=continuous&heartbeat=false")
            feed = watch.getresponse()
            events: list[dict[str, Any]] = []

            def read_events() -> None:
                with contextlib.suppress(OSError, ValueError, http.client.HTTPException):
                    for line in feed:
                        if line.strip():
                            events.append(json.loads(line))

            threading.Thread(target=read_events, daemon=True).start()
            pinger = Pinger(daemon.port)
            pinger.start()
            wait_for(lambda: len(pinger.samples) > 20, timeout=10)
            daemon.create("many", SLEEP[0], SLEEP[1:], numprocesses=300,
                          redirect_output=["out", "err"])  # fmt: skip
            wait_for(lambda: events, timeout=30)
            cpu = psutil.Process(daemon.pid)
            before, start = sum(cpu.cpu_times()[:2]), time.monotonic()
            first = len(events)
            time.sleep(window)
            used = sum(cpu.cpu_times()[:2]) - before
            elapsed = time.monotonic() - start
            pings = ping_figures(pinger.between(start, start + elapsed))
            running = daemon.running("many")
            pinger.stop.set()
            pinger.join(timeout=5)
            daemon.call("DELETE", "/processes/many")
            watch.close()
    errors = {str(e.get("error", "")).split("]")[0] for e in events}
    print(f"[spawn_storm] EMFILE: {len(events)} spawn_error events ({errors}), "
          f"{running} running", file=sys.stderr)  # fmt: skip
    return {
        "spawn_errors_per_s": (len(events) - first) / elapsed, "running": float(running),
        "cpu_percent": 100 * used / elapsed, "ping_p99_ms": pings["p99_ms"],
        "ping_max_ms": pings["max_ms"],
    }  # fmt: skip


def fmt(summary: dict[str, float], digits: int = 1) -> str:
    return (
        f"{summary['median']:.{digits}f} [{summary['min']:.{digits}f}-{summary['max']:.{digits}f}]"
    )


def markdown(count: int, runs: list[dict[str, float]], emf: list[dict[str, float]]) -> str:
    s = {key: summarize(run[key] for run in runs) for key in runs[0]}
    e = {key: summarize(run[key] for run in emf) for key in emf[0]}
    cpus = psutil.cpu_count()
    return "\n".join([
        BEGIN,
        "## Spawn storm: `/ping` while one request starts many processes",
        "",
        f"`.venv/bin/python bench/spawn_storm.py --processes {count} --runs {len(runs)}` "
        f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {cpus} CPUs; median of the "
        "runs [min-max]). One keep-alive connection sends `GET /ping` every 2 ms from the bench "
        "process throughout.",
        "",
        "| | figure |",
        "|---|---|",
        f"| `POST /processes` numprocesses={count} answered after (s) | {fmt(s['reply_s'], 3)} |",
        f"| all {count} running after (s) | {fmt(s['up_s'], 2)} |",
        f"| `/ping` while they start: p50 / p99 / max (ms) | {fmt(s['ping_p50_ms'])} / "
        f"{fmt(s['ping_p99_ms'])} / {fmt(s['ping_max_ms'])} |",
        f"| `/ping` p99 when idle (ms) | {fmt(s['ping_idle_p99_ms'])} |",
        f"| SIGTERM during a storm of {count}: gafferd exited after (s) | "
        f"{fmt(s['sigterm_exit_s'], 2)} |",
        f"| ... and every child gone after (s) | {fmt(s['sigterm_children_gone_s'], 2)} |",
        "| EMFILE (256 descriptors, 300 processes with 2 pipes each): `spawn_error` events/s | "
        f"{fmt(e['spawn_errors_per_s'])} |",
        f"| ... gafferd CPU meanwhile (%) | {fmt(e['cpu_percent'])} |",
        f"| ... `/ping` p99 / max meanwhile (ms) | {fmt(e['ping_p99_ms'])} / "
        f"{fmt(e['ping_max_ms'])} |",
        "",
        "Targets (issue 12): `/ping` p99 under 50 ms while 1,000 start; SIGTERM honoured within "
        "a second; EMFILE a `spawn_error` event per failed spawn, retried about once a second, "
        "never a busy loop.",
        END,
    ])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    args = parser.parse_args()
    runs, emf = [], []
    for run in range(args.runs):
        runs.append(storm(args.processes))
        emf.append(emfile())
        print(f"[spawn_storm] run {run + 1}: {json.dumps(runs[-1])} {json.dumps(emf[-1])}",
              file=sys.stderr)  # fmt: skip
    text = markdown(args.processes, runs, emf)
    print(text)
    if args.write:
        write_section(text, BEGIN, END)


if __name__ == "__main__":
    main()
