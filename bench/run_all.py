"""`make bench`: gaffer-gevent, supervisord and circusd measured on this machine in one run.

Order: the bench venv first, then each repetition ("run") measures one metric for all three
managers back to back before moving to the next metric, so that the ratios in RESULTS.md
compare figures taken within seconds of each other on the same (noisy) machine. A measurement
that fails is recorded with its error and the bench goes on. Results are written to
`bench/out/results.json` after every measurement, then `report.py` (bench venv, matplotlib)
turns them into `bench/RESULTS.md` and `bench/results.png`.

    .venv/bin/python bench/run_all.py [--runs 3] [--respawn-runs 2] [--flood-runs 1] [--quick]

Budget (2 cores): the 60 s flood costs 3 minutes per run and circus's respawn figure almost 2
(it respawns on a 5 s tick, so 20 kills take 20 ticks), so by default those two are measured in
the first 1 and 2 of the 3 runs; everything else in all 3. That keeps `make bench` near 12 min.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any

import gaffer
import gaffer_streams
import peer_circus
import peer_supervisord
import peers_env
import psutil
import raw_pipe
from common import raise_fd_limit, stop_all_started

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "out"
MANAGERS = {
    peer_supervisord.NAME: peer_supervisord,
    peer_circus.NAME: peer_circus,
    gaffer.NAME: gaffer,
}


@dataclass(frozen=True)
class Plan:
    """Counts and durations of one bench; `--quick` shrinks them for a smoke run."""

    runs: int
    respawn_runs: int
    flood_runs: int
    spawn_count: int = 100
    kills: int = 20
    output_s: float = 5.0
    flood_s: float = 60.0
    fanout_clients: int = 100
    fanout_s: float = 10.0
    idle_clients: tuple[int, ...] = (1000, 5000)
    round_trips: int = 1000

    @classmethod
    def quick(cls) -> Plan:
        return cls(
            runs=1,
            respawn_runs=1,
            flood_runs=1,
            kills=5,
            output_s=2.0,
            flood_s=10.0,
            fanout_s=3.0,
            idle_clients=(200, 500),
            round_trips=200,
        )


class Bench:
    """Runs measurements, records results or errors, and saves after each one."""

    def __init__(self, plan: Plan, tools: peers_env.PeerTools, meta: dict[str, Any]) -> None:
        self.plan = plan
        self.tools = tools
        self.results: dict[str, Any] = {"meta": meta, "runs": []}
        self.started = time.monotonic()

    def save(self) -> None:
        """Write results.json (atomically: a crash never leaves half a file)."""
        OUT.mkdir(exist_ok=True)
        self.results["meta"]["elapsed_s"] = time.monotonic() - self.started
        tmp = OUT / "results.json.tmp"
        tmp.write_text(json.dumps(self.results, indent=1))
        tmp.replace(OUT / "results.json")

    def measure(self, run: dict[str, Any], who: str, what: str, fn: Callable[[], Any]) -> None:
        """Run one measurement; store its result, or its error, under run[who][what]."""
        label = f"run {len(self.results['runs'])}/{self.plan.runs} {who:13} {what:10}"
        print(f"[bench {self.elapsed()}] {label} ...", end="", flush=True)
        start = time.monotonic()
        load_before = os.getloadavg()[0]
        try:
            result = fn()
        except Exception as exc:  # a failing manager must not stop the others
            result = {"error": f"{type(exc).__name__}: {exc}"}
            print(f" FAILED ({result['error']})", flush=True)
            traceback.print_exc(limit=3, file=sys.stderr)
            stop_all_started()
        else:
            print(f" {time.monotonic() - start:5.1f} s  {headline(result)}", flush=True)
        if isinstance(result, dict):
            # Other work on the machine shows here: these boxes are shared and noisy.
            result["load_1m"] = [load_before, os.getloadavg()[0]]
        run.setdefault(who, {})[what] = result
        self.save()

    def elapsed(self) -> str:
        seconds = int(time.monotonic() - self.started)
        return f"{seconds // 60:02d}:{seconds % 60:02d}"

    def one_run(self, index: int) -> None:
        """One repetition: every metric, each for all managers back to back."""
        plan, tools = self.plan, self.tools
        run: dict[str, Any] = {}
        self.results["runs"].append(run)
        for who, module in MANAGERS.items():
            self.measure(run, who, "spawn", partial(module.measure_spawn, tools, plan.spawn_count))
        if index < plan.respawn_runs:
            for who, module in MANAGERS.items():
                self.measure(
                    run, who, "respawn", partial(module.measure_respawn, tools, plan.kills)
                )
        # The raw pipe read brackets gaffer-gevent's feed, just before and just after it; the
        # ratio uses their mean, so a drift of these VMs' speed (often +-30 % within minutes)
        # between the two measurements skews it less.
        g = gaffer.NAME
        raw = partial(raw_pipe.measure, plan.output_s)
        self.measure(run, "raw-pipe", "output", raw)
        self.measure(run, g, "output", partial(gaffer.measure_output, tools, plan.output_s))
        self.measure(run, "raw-pipe", "output_after", raw)
        for who, module in MANAGERS.items():
            if who != g:
                self.measure(
                    run, who, "output", partial(module.measure_output, tools, plan.output_s)
                )
        fanout = partial(
            gaffer_streams.measure_fanout, tools, plan.fanout_clients, seconds=plan.fanout_s
        )
        self.measure(run, g, "fanout", fanout)
        for count in plan.idle_clients:
            self.measure(
                run, g, f"idle_{count}", partial(gaffer_streams.measure_idle, tools, count)
            )
        websocket = partial(gaffer_streams.measure_websocket, tools, plan.round_trips)
        self.measure(run, g, "websocket", websocket)
        if index < plan.flood_runs:
            for who, module in MANAGERS.items():
                self.measure(run, who, "flood", partial(module.measure_flood, tools, plan.flood_s))


def headline(result: Any) -> str:
    """A short progress line for a result dict."""
    if not isinstance(result, dict):
        return ""
    keys = (
        "up_s",
        "down_s",
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "rss_1_mb",
        "rss_100_mb",
        "bytes_per_s",
        "max_mb",
        "delivered_pct",
        "kib_per_client",
        "ping_p99_ms",
        "na",
    )
    parts = []
    for key in keys:
        if key in result:
            value = result[key]
            if key == "bytes_per_s":
                parts.append(f"{value / 1e6:.1f} MB/s")
            elif isinstance(value, float):
                parts.append(f"{key}={value:.3g}")
            else:
                parts.append(f"{key}={value}")
    return " ".join(parts)


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    model = ""
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def versions(tools: peers_env.PeerTools) -> dict[str, str]:
    """Versions of the three managers and of the stack under gaffer-gevent."""
    found = {}
    for dist in ("gaffer-gevent", "gevent", "gevent-websocket", "Flask", "psutil"):
        try:
            found[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            found[dist] = "not installed"
    found.update(peers_env.peer_versions(tools))
    return found


def command_line(argv: list[str]) -> str:
    """How this bench was started, as a reader would retype it."""
    own = " ".join([".venv/bin/python", "bench/run_all.py", *argv])
    return f"make bench  ({own})" if os.environ.get("MAKELEVEL") and not argv else own


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through every finally: all children get stopped


def main() -> None:
    """Parse options, run the plan, write the report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="repetitions of each metric")
    parser.add_argument(
        "--respawn-runs",
        type=int,
        default=2,
        help="how many of the runs include the 20 kills (circus alone takes ~110 s: its 5 s tick)",
    )
    parser.add_argument(
        "--flood-runs",
        type=int,
        default=1,
        help="how many of the runs include the 60 s flood (3 managers x 60 s each)",
    )
    parser.add_argument("--quick", action="store_true", help="small counts, short durations")
    parser.add_argument("--no-report", action="store_true", help="only write results.json")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _terminate)
    plan = (
        Plan.quick()
        if args.quick
        else Plan(
            runs=args.runs,
            respawn_runs=min(args.runs, args.respawn_runs),
            flood_runs=min(args.runs, args.flood_runs),
        )
    )
    raise_fd_limit()
    tools = peers_env.ensure()
    meta = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command_line(sys.argv[1:]),
        "plan": plan.__dict__,
        "machine": machine(),
        "versions": versions(tools),
    }
    bench = Bench(plan, tools, meta)
    try:
        for index in range(plan.runs):
            bench.one_run(index)
    finally:
        stop_all_started()
        bench.save()
    print(f"[bench {bench.elapsed()}] results in {OUT / 'results.json'}", flush=True)
    if not args.no_report:
        subprocess.run(
            [tools.python, str(BENCH / "report.py"), str(OUT / "results.json")], check=True
        )


if __name__ == "__main__":
    main()
