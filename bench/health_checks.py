"""The cost of health checks: gafferd's CPU % and RSS with 100 pids, each with a 1 s HTTP check.

    .venv/bin/python bench/health_checks.py [--count 100] [--seconds 20] [--period 1]

Starts a fresh gafferd (bench/gaffer.py's `Gafferd`), creates `count` `sleep` pids
without checks and measures gafferd's CPU % (psutil, over `seconds`) and RSS; then
replaces them with `count` pids whose liveness check GETs an HTTP endpoint every
`period` seconds, and measures again. The endpoint is one threaded HTTP server in
this (unpatched) bench process, so what is measured is gafferd's side of 100
checks a second, not 100 servers. Prints one JSON object; the figures go to
bench/RESULTS.md by hand.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psutil
from common import rss_mb, wait_for, workdir
from gaffer import Gafferd


class Server(ThreadingHTTPServer):
    request_queue_size = 1024  # 100 checks connect at once: the default backlog of 5 drops SYNs
    daemon_threads = True


class Health(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    hits = 0

    def do_GET(self) -> None:
        Health.hits += 1
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def measure(daemon: Gafferd, seconds: float) -> dict[str, float]:
    """gafferd's CPU % over ``seconds`` (sampled each second) and its RSS at the end."""
    proc = psutil.Process(daemon.pid)
    proc.cpu_percent(None)
    samples = []
    hits = Health.hits
    for _ in range(int(seconds)):
        time.sleep(1.0)
        samples.append(proc.cpu_percent(None))
    return {
        "cpu_percent_median": round(statistics.median(samples), 1),
        "cpu_percent_max": round(max(samples), 1),
        "rss_mib": round(rss_mb(daemon.pid), 1),
        "checks_per_s": round((Health.hits - hits) / seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--period", type=float, default=1.0)
    args = parser.parse_args()
    server = Server(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/health"
    result: dict[str, Any] = {"count": args.count, "period": args.period}
    with workdir("health") as tmp, Gafferd(tmp) as daemon:
        daemon.create("plain", "sleep", ["3600"], numprocesses=args.count)
        wait_for(lambda: daemon.running("plain") == args.count, timeout=60, interval=0.1)
        time.sleep(2.0)
        result["without_checks"] = measure(daemon, args.seconds)
        daemon.call("DELETE", "/processes/plain")
        check = {"http": url, "period": args.period, "timeout": 1}
        daemon.create("checked", "sleep", ["3600"], numprocesses=args.count, liveness=check)
        wait_for(lambda: daemon.running("checked") == args.count, timeout=60, interval=0.1)
        time.sleep(2.0)
        result["with_http_checks"] = measure(daemon, args.seconds)
        status = daemon.call("GET", "/status/checked")
        result["restarts"] = status["restarts"]
    server.shutdown()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
