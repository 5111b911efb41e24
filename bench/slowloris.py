"""`/ping` latency while idle and slowloris connections besiege gafferd (issue 12, defect 7).

    .venv/bin/python bench/slowloris.py [--idle 500] [--slow 50] [--seconds 30] [--nofile N]

Starts ``gafferd --bind 127.0.0.1:0`` with its default connection limits (or the ones given),
measures ``/ping`` on a fresh connection every 50 ms for ``--baseline`` seconds, then keeps
``--idle`` connections that send nothing and ``--slow`` slowloris connections (a request line,
then one header byte a second) open for ``--seconds``, reopening each one gafferd drops, the
way a real attacker would, while ``/ping`` goes on being measured. Prints p50/p99/max of
``/ping`` before and during the siege, failed pings, how often gafferd dropped the attackers,
and its CPU and descriptors; the last line is the same as JSON.

``--nofile 256`` starts gafferd with ``ulimit -n 256``: more attackers than descriptors, the
case where ``accept`` fails with EMFILE. Standalone: stdlib + psutil, no other bench/ file.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import selectors
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
PING = b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
SLOW_START = b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--idle", type=int, default=500, help="connections that send nothing")
    parser.add_argument("--slow", type=int, default=50, help="slowloris connections")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the siege")
    parser.add_argument("--baseline", type=float, default=5.0, help="pings before the siege")
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between pings")
    parser.add_argument("--nofile", type=int, help="gafferd's descriptor limit (ulimit -n)")
    parser.add_argument("--header-timeout", type=float, help="[gaffer] header_timeout")
    parser.add_argument("--max-connections", type=int, help="[gaffer] max_connections")
    parser.add_argument(
        "--gafferd",
        default=os.environ.get("BENCH_GAFFERD", str(ROOT / ".venv" / "bin" / "gafferd")),
        help="gafferd executable (env BENCH_GAFFERD)",
    )
    return parser.parse_args(argv)


def start_gafferd(args: argparse.Namespace, workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    lines = ["[gaffer]"]
    if args.header_timeout is not None:
        lines.append(f"header_timeout = {args.header_timeout}")
    if args.max_connections is not None:
        lines.append(f"max_connections = {args.max_connections}")
    config = workdir / "gafferd.ini"
    config.write_text("\n".join(lines) + "\n")

    def limit() -> None:
        if args.nofile:
            resource.setrlimit(resource.RLIMIT_NOFILE, (args.nofile, args.nofile))

    daemon = subprocess.Popen(
        [args.gafferd, "--bind", "127.0.0.1:0", str(config)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
        preexec_fn=limit,
    )  # fmt: skip
    assert daemon.stderr is not None
    line = daemon.stderr.readline().decode()
    match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
    if not match:
        raise SystemExit(f"gafferd did not start: {line!r}")
    # Keep reading its log, or a full pipe would stall it.
    threading.Thread(target=daemon.stderr.read, daemon=True).start()
    return daemon, int(match.group(1))


class Pinger(threading.Thread):
    """GET /ping on a fresh connection every ``interval``; latencies in ms, failures counted."""

    def __init__(self, port: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.port, self.interval = port, interval
        self.phase = "baseline"
        self.samples: dict[str, list[float]] = {"baseline": [], "siege": []}
        self.failures: dict[str, int] = {"baseline": 0, "siege": 0}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(self.interval):
            phase, start = self.phase, time.perf_counter()
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
                    sock.sendall(PING)
                    answer = b""
                    while chunk := sock.recv(4096):
                        answer += chunk
                ok = answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"OK")
            except OSError:
                ok = False
            if ok:
                self.samples[phase].append((time.perf_counter() - start) * 1000)
            else:
                self.failures[phase] += 1


class Siege:
    """Keeps ``idle`` silent and ``slow`` slowloris connections open, reopening dropped ones."""

    def __init__(self, port: int, idle: int, slow: int) -> None:
        self.port = port
        self.selector = selectors.DefaultSelector()
        self.dropped = {"idle": 0, "slow": 0}
        self.refused = 0
        for _ in range(idle):
            self.open("idle")
        for _ in range(slow):
            self.open("slow")

    def open(self, kind: str) -> None:
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            if kind == "slow":
                sock.sendall(SLOW_START)
        except OSError:
            self.refused += 1
            return
        sock.setblocking(False)
        self.selector.register(sock, selectors.EVENT_READ, kind)

    def open_count(self) -> dict[str, int]:
        counts = {"idle": 0, "slow": 0}
        for key in self.selector.get_map().values():
            counts[key.data] += 1
        return counts

    def run(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        next_byte = time.monotonic() + 1.0
        while (now := time.monotonic()) < deadline:
            for key, _ in self.selector.select(timeout=min(next_byte, deadline) - now):
                self._drop(key.fileobj, key.data)  # readable: an answer (408) or the close
            if time.monotonic() >= next_byte:
                next_byte += 1.0
                for key in list(self.selector.get_map().values()):
                    if key.data == "slow":
                        try:
                            key.fileobj.send(b"X")  # type: ignore[union-attr]
                        except OSError:
                            self._drop(key.fileobj, "slow")

    def _drop(self, sock: Any, kind: str) -> None:
        with contextlib.suppress(OSError):
            while sock.recv(65536):
                pass
        self.selector.unregister(sock)
        sock.close()
        self.dropped[kind] += 1
        self.open(kind)

    def close(self) -> None:
        for key in list(self.selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        self.selector.close()


def stats(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {"n": 0}
    ordered = sorted(samples)

    def pct(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))], 2)

    return {
        "n": len(ordered),
        "p50_ms": pct(50),
        "p99_ms": pct(99),
        "max_ms": round(ordered[-1], 2),
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = args.idle + args.slow + 100
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))
    with tempfile.TemporaryDirectory(prefix="bench-slowloris-") as tmp:
        daemon, port = start_gafferd(args, Path(tmp))
        process = psutil.Process(daemon.pid)
        try:
            pinger = Pinger(port, args.interval)
            pinger.start()
            time.sleep(args.baseline)
            cpu_before = sum(process.cpu_times()[:2])
            pinger.phase = "siege"
            siege = Siege(port, args.idle, args.slow)
            siege.run(args.seconds)
            cpu = sum(process.cpu_times()[:2]) - cpu_before
            fds = process.num_fds()
            open_now = siege.open_count()
            pinger.stop.set()
            pinger.join(10)
            siege.close()
        finally:
            os.killpg(daemon.pid, signal.SIGTERM)
            daemon.wait(30)
    result = {
        "idle": args.idle, "slow": args.slow, "seconds": args.seconds, "nofile": args.nofile,
        "ping_baseline": stats(pinger.samples["baseline"]),
        "ping_siege": stats(pinger.samples["siege"]),
        "ping_failures": pinger.failures,
        "attackers_dropped": siege.dropped, "attackers_refused_at_connect": siege.refused,
        "attackers_open_at_end": open_now, "gafferd_cpu_s": round(cpu, 2), "gafferd_fds": fds,
    }  # fmt: skip
    base, during = result["ping_baseline"], result["ping_siege"]
    print(f"/ping before the siege: p50 {base.get('p50_ms')} ms, p99 {base.get('p99_ms')} ms "
          f"({base['n']} pings, {pinger.failures['baseline']} failed)")  # fmt: skip
    print(f"/ping during {args.idle} idle + {args.slow} slowloris for {args.seconds:g} s: "
          f"p50 {during.get('p50_ms')} ms, p99 {during.get('p99_ms')} ms, "
          f"max {during.get('max_ms')} ms ({during['n']} pings, "
          f"{pinger.failures['siege']} failed)")  # fmt: skip
    print(
        f"gafferd dropped {siege.dropped['idle']} idle and {siege.dropped['slow']} slowloris "
        f"connections (each reopened); CPU {cpu:.2f} s; {fds} descriptors at the end"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
