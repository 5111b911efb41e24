"""gafferd's memory under a flood: ten subscribers that never read, one that reads slowly.

    .venv/bin/python bench/flood_rss.py --seconds 60

Starts ``gafferd --bind 127.0.0.1:0`` on a temporary config with one child writing
``--rate`` MB/s (default 20; 0 = as fast as gafferd reads), opens eleven eventsource
feeds on its output (ten never read a byte, one reads ``--slow-kib`` KiB a second (512) and
counts the ``event: gap`` notices it gets), samples gafferd's RSS every second and
prints a JSON summary: RSS start (before the feeds open) / max / end in MB, bytes per
second produced (from ``/debug/subscriptions``), what the slow reader received.

The property it shows (issue 5): memory is bounded by the ring buffers, not by the
number or the slowness of consumers. Standalone: stdlib + psutil, no other bench/ file.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
MB = 1_000_000
GAP_EVENT = re.compile(rb"event: gap\r\ndata: (\{[^\r]*\})\r\n")
#: The slow reader's receive buffer: small, so its slowness reaches gafferd within seconds.
SLOW_RCVBUF = 64 * 1024

CHILD = """\
import os, sys, time
rate = float(sys.argv[1]) * 1_000_000
block = (b"x" * 1023 + b"\\n") * 64
start, sent = time.monotonic(), 0
while True:
    os.write(1, block)
    sent += len(block)
    if rate:
        ahead = sent / rate - (time.monotonic() - start)
        if ahead > 0:
            time.sleep(ahead)
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the flood")
    parser.add_argument("--rate", type=float, default=20.0, help="child's MB/s (0: unlimited)")
    parser.add_argument("--idle", type=int, default=10, help="subscribers that never read")
    parser.add_argument("--slow-kib", type=float, default=512.0, help="slow reader, KiB/s")
    parser.add_argument(
        "--gafferd",
        default=os.environ.get("BENCH_GAFFERD", str(ROOT / ".venv" / "bin" / "gafferd")),
        help="gafferd executable (env BENCH_GAFFERD)",
    )
    return parser.parse_args(argv)


def start_gafferd(gafferd: str, workdir: Path, rate: float) -> tuple[subprocess.Popen[bytes], str]:
    child = workdir / "flood_child.py"
    child.write_text(CHILD)
    config = workdir / "gafferd.ini"
    config.write_text(
        f"[process:flood]\ncmd = {sys.executable}\nargs = {child} {rate}\nredirect_output = out\n"
    )
    daemon = subprocess.Popen(
        [gafferd, "--bind", "127.0.0.1:0", str(config)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    assert daemon.stderr is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = daemon.stderr.readline().decode()
        if not line:
            break
        found = re.search(r"listening on (http://\S+)", line)
        if found:
            return daemon, found.group(1)
    stop(daemon)
    raise SystemExit("gafferd did not report its address")


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as reply:
        return json.load(reply)


def wait_pid(base: str) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pids = get_json(f"{base}/processes/flood/_pids")["pids"]
        if pids:
            return int(pids[0])
        time.sleep(0.05)
    raise SystemExit("the flood child did not start")


def open_feed(base: str, pid: int, rcvbuf: int | None = None) -> socket.socket:
    host, port = base[len("http://") :].split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect((host, int(port)))
    request = f"GET /streams/{pid}/out?feed=eventsource HTTP/1.1\r\nHost: {host}\r\n\r\n"
    sock.sendall(request.encode())
    return sock


class SlowReader(threading.Thread):
    """Reads a fixed trickle from its feed and counts the gap notices in what it got."""

    def __init__(self, sock: socket.socket, kib_per_s: float) -> None:
        super().__init__(daemon=True)
        self.sock, self.kib_per_s = sock, kib_per_s
        self.received = 0
        self.gaps = 0
        self.lost_bytes = 0
        self.done = threading.Event()

    def run(self) -> None:
        tail = b""
        interval = 0.1
        want = max(1, int(self.kib_per_s * 1024 * interval))
        while not self.done.is_set():
            try:
                data = self.sock.recv(want)
            except OSError:
                return
            if not data:
                return
            self.received += len(data)
            text = tail + data
            end = 0
            for match in GAP_EVENT.finditer(text):
                self.gaps += 1
                self.lost_bytes += json.loads(match.group(1)).get("bytes") or 0
                end = match.end()
            tail = text[end:][-200:]  # a notice may straddle two reads
            self.done.wait(interval)


def stop(daemon: subprocess.Popen[bytes]) -> None:
    if daemon.poll() is None:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait(5)
    if daemon.stderr is not None:
        daemon.stderr.close()


def produced(base: str) -> int:
    return sum(s["total_bytes"] for s in get_json(f"{base}/debug/subscriptions")["streams"])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="flood_rss.") as tmp:
        daemon, base = start_gafferd(args.gafferd, Path(tmp), args.rate)
        sockets: list[socket.socket] = []
        try:
            pid = wait_pid(base)
            proc = psutil.Process(daemon.pid)
            rss_start = proc.memory_info().rss
            sockets = [open_feed(base, pid) for _ in range(args.idle)]
            sockets.append(open_feed(base, pid, SLOW_RCVBUF))
            slow = SlowReader(sockets[-1], args.slow_kib)
            slow.start()
            first_bytes, started = produced(base), time.monotonic()
            samples: list[float] = []
            while (elapsed := time.monotonic() - started) < args.seconds:
                time.sleep(min(1.0, args.seconds - elapsed))
                samples.append(proc.memory_info().rss / MB)
            last_bytes, elapsed = produced(base), time.monotonic() - started
            debug = get_json(f"{base}/debug/subscriptions")
            slow.done.set()
        finally:
            for sock in sockets:
                sock.close()
            stop(daemon)
    dropped = sum(s["dropped_bytes"] for s in debug["subscriptions"])
    summary = {
        "command": "python bench/flood_rss.py " + " ".join(argv or sys.argv[1:]),
        "seconds": round(elapsed, 1),
        "child_rate_target_mb_s": args.rate or "unlimited",
        "produced_mb": round((last_bytes - first_bytes) / MB, 1),
        "produced_mb_s": round((last_bytes - first_bytes) / MB / elapsed, 1),
        "rss_mb": {
            "start": round(rss_start / MB, 1),
            "max": round(max(samples), 1),
            "end": round(samples[-1], 1),
        },
        "rss_samples_mb": [round(s, 1) for s in samples],
        "subscribers_never_reading": args.idle,
        "slow_reader": {
            "kib_per_s": args.slow_kib,
            "received_bytes": slow.received,
            "gap_events": slow.gaps,
            "gap_bytes_reported": slow.lost_bytes,
        },
        "dropped_bytes_all_subscriptions": dropped,
    }
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
