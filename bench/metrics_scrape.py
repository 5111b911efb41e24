"""What one Prometheus scrape costs gafferd: `GET /metrics` beside `GET /stats`, 100 pids.

One gafferd on 127.0.0.1 runs a template of 100 pids, each a shell with a `sleep` child of its
own (200 processes, so every scrape walks 100 process trees). Then, in blocks that take turns
(so machine drift hits each alike), N requests each of:

- `GET /metrics` (text format): the manager's collector, psutil over every tree, gafferd's own
  process collector, the HTTP figures;
- `GET /metrics?per_pid=1`: the same plus one series per pid;
- `GET /stats`: the JSON psutil view of every pid (and its children) that existed before.

For each: gafferd's CPU time per request (user + system from /proc/<pid>/stat, summed over the
block and divided: the kernel counts in 10 ms ticks), the wall time p50/p95 of a request seen by
the client, the answer's size, and gafferd's RSS before and after all the scrapes (a scrape must
leave nothing behind). No third-party supervisord exporter is measured: none installs here
without a running supervisord XML-RPC of its own, so `/stats` is the comparison.

    .venv/bin/python bench/metrics_scrape.py [--requests 300] [--write-results]

Prints the JSON summary (also written to `bench/out/metrics_scrape.json`) and the markdown
section; `--write-results` puts the section in `bench/RESULTS.md` between the `metrics_scrape`
markers (report.py keeps it there). About a minute.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import psutil
from common import RESULTS, all_children, percentile, rss_mb, wait_for, workdir, write_section
from gaffer import Gafferd

BENCH = Path(__file__).resolve().parent
RAW = BENCH / "out" / "metrics_scrape.json"  # not committed
START = "<!-- metrics_scrape: begin -->"
END = "<!-- metrics_scrape: end -->"
PIDS = 100
BLOCK = 50  # requests of one kind before the next kind's turn
TARGET_MS = 20.0
PATHS = {"metrics": "/metrics", "metrics_per_pid": "/metrics?per_pid=1", "stats": "/stats"}


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def measure(requests: int) -> dict[str, Any]:
    with workdir("metrics") as tmp, Gafferd(tmp) as daemon:
        daemon.create("trees", "sh", ["-c", "sleep 3600 & wait"], numprocesses=PIDS)

        def trees_up() -> bool:
            shells = all_children(daemon.pid)
            return len(shells) == PIDS and all(len(all_children(s)) == 1 for s in shells)

        wait_for(trees_up, timeout=60, interval=0.1)
        for path in PATHS.values():  # warm-up: imports, psutil, first-request work
            for _ in range(10):
                daemon.call("GET", path)
        time.sleep(1.0)
        idle_start = cpu_seconds(daemon.pid)
        time.sleep(2.0)
        idle_per_s = (cpu_seconds(daemon.pid) - idle_start) / 2.0
        rss_before = rss_mb(daemon.pid)
        cpu: dict[str, float] = dict.fromkeys(PATHS, 0.0)
        wall: dict[str, list[float]] = {kind: [] for kind in PATHS}
        size: dict[str, int] = {}
        kinds = list(PATHS)
        for block in range(max(1, requests // BLOCK)):
            turn = block % len(kinds)
            for kind in kinds[turn:] + kinds[:turn]:
                before = cpu_seconds(daemon.pid)
                for _ in range(BLOCK):
                    start = time.perf_counter()
                    body = daemon.call("GET", PATHS[kind])
                    wall[kind].append((time.perf_counter() - start) * 1000)
                cpu[kind] += cpu_seconds(daemon.pid) - before
                size[kind] = len(body if isinstance(body, str) else json.dumps(body))
        rss_after = rss_mb(daemon.pid)
        series = sum(
            1 for line in daemon.call("GET", "/metrics").splitlines() if not line.startswith("#")
        )
    result: dict[str, Any] = {"pids": PIDS, "processes": 2 * PIDS, "requests": requests,
                              "idle_cpu_ms_per_s": idle_per_s * 1000, "series": series,
                              "rss_before_mb": rss_before, "rss_after_mb": rss_after}  # fmt: skip
    for kind in PATHS:
        count = len(wall[kind])
        result[kind] = {
            "cpu_ms": cpu[kind] * 1000 / count,
            "wall_p50_ms": percentile(wall[kind], 50),
            "wall_p95_ms": percentile(wall[kind], 95),
            "bytes": size[kind],
        }
    return result


def section(result: dict[str, Any], command: str) -> str:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = os.getloadavg()[0]
    lines = [
        START,
        "## Scrape cost: `GET /metrics` beside `GET /stats` (`bench/metrics_scrape.py`, not part "
        "of `make bench`)",
        "",
        f"{now}, `{command}`, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"1-min load {load:.2f} at the end. {result['pids']} pids, each a shell with a `sleep` "
        f"child ({result['processes']} processes); {result['requests']} requests of each kind "
        f"in blocks of {BLOCK} taking turns. gafferd's CPU per request is its user + system "
        "time over a block divided by the block's requests (idle gafferd: "
        f"{result['idle_cpu_ms_per_s']:.2f} ms of CPU per second, not subtracted).",
        "",
        "| Request | gafferd CPU per request | wall p50 | wall p95 | answer |",
        "|---|---|---|---|---|",
    ]
    for kind, path in PATHS.items():
        figures = result[kind]
        lines.append(
            f"| `GET {path}` | {figures['cpu_ms']:.1f} ms | {figures['wall_p50_ms']:.1f} ms | "
            f"{figures['wall_p95_ms']:.1f} ms | {figures['bytes'] / 1024:.0f} KiB |"
        )
    verdict = "met" if result["metrics"]["cpu_ms"] < TARGET_MS else "**missed**"
    lines += [
        "",
        f"Target: a scrape under {TARGET_MS:.0f} ms of gafferd's time with 100 pids: {verdict}. "
        f"`/metrics` answers {result['series']} series (template series do not grow with pids; "
        "`per_pid=1` adds 3 per pid). gafferd RSS "
        f"{result['rss_before_mb']:.1f} MiB before the scrapes, {result['rss_after_mb']:.1f} MiB "
        "after. No third-party supervisord exporter was measured (none works without a "
        "supervisord of its own here), so `/stats` is the comparison.",
        END,
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="requests of each kind")
    parser.add_argument("--write-results", action="store_true", help="update bench/RESULTS.md")
    args = parser.parse_args()
    result = measure(args.requests)
    RAW.parent.mkdir(exist_ok=True)
    RAW.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    command = "python bench/metrics_scrape.py " + " ".join(sys.argv[1:])
    text = section(result, command.strip())
    print(text)
    if args.write_results:
        write_section(text, START, END)
        print(f"[metrics] wrote the section to {RESULTS}", file=sys.stderr)


if __name__ == "__main__":
    main()
