"""gafferd's memory under a flood: subscribers that never read, slow ones, a CPU hog beside.

    .venv/bin/python bench/flood_rss.py --seconds 60
    .venv/bin/python bench/flood_rss.py --feed continuous --unthrottled --stalled 10 --slow 1 --hog

Starts ``gafferd --bind 127.0.0.1:0`` on a temporary config with one child writing 1 KiB
lines in 64 KiB blocks at ``--rate`` MB/s (default 20; ``--unthrottled``: as fast as gafferd
reads), opens ``--stalled`` feeds (10) that never read a byte (each with a 4 KiB receive
buffer, so gafferd's writes to them stall at once) and ``--slow`` feeds (1) that read
``--slow-kib`` KiB a second (512), on ``--feed`` (eventsource or continuous). ``--hog`` runs
a process spinning on one core beside it all, as a busy machine would. It samples gafferd's
RSS every second and prints a JSON summary: RSS start (before the feeds open), at 10 s, max,
end, and the growth after the first 10 s; bytes per second produced (from
``/debug/subscriptions``); what the slow readers received and the losses reported to them
(``event: gap`` on eventsource, ``[gaffer: N chunks, M bytes lost]`` lines on continuous),
and on continuous feeds how many received lines were not a line the child wrote (spliced).
``--record`` also keeps the figures as one row of the flood table in ``RESULTS.md`` (a row
per command; ``report.py`` keeps that table when it rewrites the file).

The property it shows: memory is bounded by the ring buffers, not by the number or the
slowness of consumers, nor by the writer's speed. Standalone: stdlib + psutil.
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
RESULTS = ROOT / "bench" / "RESULTS.md"
TABLE_START, TABLE_END = "<!-- flood_rss:start -->", "<!-- flood_rss:end -->"
TABLE_HEAD = [
    TABLE_START,
    "## gafferd under a flood (`bench/flood_rss.py --record`, not part of `make bench`)",
    "",
    "RSS of gafferd in MiB: before the feeds open, at 10 s, at most, at the end, and its "
    "growth after the first 10 s; the slow readers' gap notices and lines that were not a "
    "line the child wrote (continuous feeds only).",
    "",
    "| Command | Date (UTC) | Produced MB/s | RSS start | at 10 s | max | end "
    "| growth after 10 s | gaps | spliced lines |",
    "|---|---|---|---|---|---|---|---|---|---|",
]
MB = 1_000_000
MIB = 1024 * 1024
GAP_EVENT = re.compile(rb"event: gap\r\ndata: (\{[^\r]*\})\r\n")
GAP_LINE = re.compile(rb"\[gaffer: (\d+) chunks?(?:, (\d+) bytes)? lost\]")
#: The slow readers' receive buffer: small, so their slowness reaches gafferd within seconds.
SLOW_RCVBUF = 64 * 1024
#: The stalled readers' receive buffer: gafferd's first big write to them stalls.
STALLED_RCVBUF = 4096
#: From here on RSS must be flat.
SETTLE_S = 10

LINE = b"x" * 1023 + b"\n"
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
#: Numbered lines as an unbuffered ``print`` writes them: the text, then the newline.
PRINTER = """\
import itertools, os
for n in itertools.count():
    os.write(1, b"%012d" % n)
    os.write(1, b"\\n")
"""
HOG = "while True: pass"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the flood")
    parser.add_argument("--rate", type=float, default=20.0, help="child's MB/s (0: unlimited)")
    parser.add_argument(
        "--unthrottled", action="store_true", help="the child writes as fast as it can (--rate 0)"
    )
    parser.add_argument(
        "--writer", choices=("blocks", "yes", "print"), default="blocks",
        help="blocks: 1 KiB lines in 64 KiB writes; yes: /usr/bin/yes; print: print() of "
        "numbered lines, unbuffered (yes and print ignore --rate)",
    )  # fmt: skip
    parser.add_argument("--feed", choices=("eventsource", "continuous"), default="eventsource")
    parser.add_argument(
        "--stalled", "--idle", dest="stalled", type=int, default=10,
        help="subscribers that never read",
    )  # fmt: skip
    parser.add_argument("--slow", type=int, default=1, help="subscribers that read slowly")
    parser.add_argument("--slow-kib", type=float, default=512.0, help="each slow reader, KiB/s")
    parser.add_argument("--hog", action="store_true", help="spin a CPU hog beside gafferd")
    parser.add_argument(
        "--record", action="store_true", help="keep the figures as a row of RESULTS.md's table"
    )
    parser.add_argument(
        "--gafferd",
        default=os.environ.get("BENCH_GAFFERD", str(ROOT / ".venv" / "bin" / "gafferd")),
        help="gafferd executable (env BENCH_GAFFERD)",
    )
    args = parser.parse_args(argv)
    if args.unthrottled:
        args.rate = 0.0
    return args


def child_command(writer: str, workdir: Path, rate: float) -> str:
    """The ini lines that run the flooding child."""
    if writer == "yes":
        return "cmd = yes\n"
    child = workdir / "flood_child.py"
    child.write_text(PRINTER if writer == "print" else CHILD)
    return f"cmd = {sys.executable}\nargs = {child} {rate}\n"


def start_gafferd(gafferd: str, workdir: Path, command: str) -> tuple[subprocess.Popen[bytes], str]:
    config = workdir / "gafferd.ini"
    config.write_text(f"[process:flood]\n{command}redirect_output = out\n")
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


def open_feed(base: str, pid: int, feed: str, rcvbuf: int | None = None) -> socket.socket:
    host, port = base[len("http://") :].split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect((host, int(port)))
    request = f"GET /streams/{pid}/out?feed={feed} HTTP/1.1\r\nHost: {host}\r\n\r\n"
    sock.sendall(request.encode())
    return sock


class Dechunker:
    """The payload of a ``Transfer-Encoding: chunked`` response, fed as it arrives."""

    def __init__(self) -> None:
        self.buf = b""
        self.in_headers = True
        self.left = 0  # payload bytes due in the current chunk
        self.skip = 0  # CRLF bytes due after it
        self.finished = False

    def feed(self, data: bytes) -> bytes:
        self.buf += data
        out = []
        while not self.finished:
            if self.in_headers:
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    break
                self.buf, self.in_headers = self.buf[end + 4 :], False
            if self.left:
                take = self.buf[: self.left]
                out.append(take)
                self.buf, self.left = self.buf[len(take) :], self.left - len(take)
                if self.left:
                    break
                self.skip = 2
            if self.skip:
                skipped = min(self.skip, len(self.buf))
                self.buf, self.skip = self.buf[skipped:], self.skip - skipped
                if self.skip:
                    break
            end = self.buf.find(b"\r\n")
            if end < 0:
                break
            self.left = int(self.buf[:end], 16)
            self.buf = self.buf[end + 2 :]
            self.finished = not self.left  # the last chunk
        return b"".join(out)


class SlowReader(threading.Thread):
    """Reads a fixed trickle from its feed and counts the losses reported in what it got.

    On a continuous feed it also checks every complete line: each must be a line the child
    wrote or a gap marker; anything else is a spliced line.
    """

    def __init__(self, sock: socket.socket, kib_per_s: float, feed: str, writer: str) -> None:
        super().__init__(daemon=True)
        self.sock, self.kib_per_s, self.feed, self.writer = sock, kib_per_s, feed, writer
        self.last_number: int | None = None  # print: the last number, None after a gap
        self.received = 0
        self.gaps = 0
        self.lost_bytes = 0
        self.lines = 0
        self.spliced = 0
        self.done = threading.Event()

    def run(self) -> None:
        interval = 0.1
        want = max(1, int(self.kib_per_s * 1024 * interval))
        dechunk, tail = Dechunker(), b""
        while not self.done.is_set():
            try:
                data = self.sock.recv(want)
            except OSError:
                return
            if not data:
                return
            self.received += len(data)
            if self.feed == "continuous":
                tail = self.check_lines(tail + dechunk.feed(data))
            else:
                tail = self.count_gap_events(tail + data)
            self.done.wait(interval)

    def count_gap_events(self, text: bytes) -> bytes:
        end = 0
        for match in GAP_EVENT.finditer(text):
            self.gaps += 1
            self.lost_bytes += json.loads(match.group(1)).get("bytes") or 0
            end = match.end()
        return text[end:][-200:]  # a notice may straddle two reads

    def check_lines(self, text: bytes) -> bytes:
        *lines, rest = text.split(b"\n")
        for line in lines:
            if not line:
                continue  # the first byte of the feed, heartbeats
            marker = GAP_LINE.fullmatch(line)
            if marker:
                self.gaps += 1
                self.lost_bytes += int(marker.group(2) or 0)
                self.last_number = None
            elif self.written(line):
                self.lines += 1
            else:
                self.spliced += 1
        return rest

    def written(self, line: bytes) -> bool:
        """Whether the child wrote ``line`` (print: the next number, any number after a gap)."""
        if self.writer == "yes":
            return line == b"y"
        if self.writer == "blocks":
            return line + b"\n" == LINE
        if len(line) != 12 or not line.isdigit():
            return False
        number, last = int(line), self.last_number
        self.last_number = number
        return last is None or number == last + 1


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
    hog = subprocess.Popen([sys.executable, "-c", HOG]) if args.hog else None
    try:
        with tempfile.TemporaryDirectory(prefix="flood_rss.") as tmp:
            command = child_command(args.writer, Path(tmp), args.rate)
            daemon, base = start_gafferd(args.gafferd, Path(tmp), command)
            sockets: list[socket.socket] = []
            slow: list[SlowReader] = []
            try:
                pid = wait_pid(base)
                proc = psutil.Process(daemon.pid)
                rss_start = proc.memory_info().rss
                for _ in range(args.stalled):
                    sockets.append(open_feed(base, pid, args.feed, STALLED_RCVBUF))
                for _ in range(args.slow):
                    sockets.append(open_feed(base, pid, args.feed, SLOW_RCVBUF))
                    slow.append(SlowReader(sockets[-1], args.slow_kib, args.feed, args.writer))
                    slow[-1].start()
                first_bytes, started = produced(base), time.monotonic()
                samples: list[float] = []
                while (elapsed := time.monotonic() - started) < args.seconds:
                    time.sleep(min(1.0, args.seconds - elapsed))
                    samples.append(proc.memory_info().rss / MIB)
                last_bytes, elapsed = produced(base), time.monotonic() - started
                debug = get_json(f"{base}/debug/subscriptions")
                for reader in slow:
                    reader.done.set()
            finally:
                for sock in sockets:
                    sock.close()
                stop(daemon)
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()
    flow = (last_bytes - first_bytes, elapsed)
    summary = summarize(args, argv, samples, rss_start, slow, debug, flow)
    print(json.dumps(summary, indent=2))
    if args.record:
        record(RESULTS, summary)
    return 0


def summarize(
    args: argparse.Namespace,
    argv: list[str] | None,
    samples: list[float],
    rss_start: int,
    slow: list[SlowReader],
    debug: dict[str, Any],
    flow: tuple[int, float],
) -> dict[str, Any]:
    streamed, elapsed = flow
    settled = samples[SETTLE_S - 1 :] or samples[-1:]
    return {
        "command": "python bench/flood_rss.py " + " ".join(argv or sys.argv[1:]),
        "seconds": round(elapsed, 1),
        "feed": args.feed,
        "writer": args.writer,
        "child_rate_target_mb_s": args.rate or "unlimited",
        "cpu_hog": args.hog,
        "produced_mb": round(streamed / MB, 1),
        "produced_mb_s": round(streamed / MB / elapsed, 1),
        "rss_mib": {
            "start": round(rss_start / MIB, 1),
            f"at_{SETTLE_S}s": round(settled[0], 1),
            "max": round(max(samples), 1),
            "end": round(samples[-1], 1),
            f"growth_after_{SETTLE_S}s": round(max(settled) - settled[0], 1),
        },
        "rss_samples_mib": [round(s, 1) for s in samples],
        "subscribers_never_reading": args.stalled,
        "slow_readers": [
            {
                "kib_per_s": args.slow_kib,
                "received_bytes": reader.received,
                "gaps_reported": reader.gaps,
                "gap_bytes_reported": reader.lost_bytes,
                **(
                    {"lines": reader.lines, "spliced_lines": reader.spliced}
                    if args.feed == "continuous"
                    else {}
                ),
            }
            for reader in slow
        ],
        "dropped_bytes_all_subscriptions": sum(s["dropped_bytes"] for s in debug["subscriptions"]),
    }


def record(results: Path, summary: dict[str, Any]) -> None:
    """Put ``summary`` in the flood table of ``results`` (replacing the same command's row)."""
    text = results.read_text() if results.exists() else ""
    start, end = text.find(TABLE_START), text.find(TABLE_END)
    rows: list[str] = []
    if 0 <= start < end:
        rows = [line for line in text[start:end].splitlines() if line.startswith("| `")]
        text = text[:start].rstrip("\n") + text[end + len(TABLE_END) :]
    command = summary["command"].replace("python bench/flood_rss.py", "").strip() or "(defaults)"
    rss, slow = summary["rss_mib"], summary["slow_readers"]
    spliced = (
        sum(r.get("spliced_lines", 0) for r in slow) if summary["feed"] == "continuous" else "-"
    )
    row = (
        f"| `{command}` | {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} "
        f"| {summary['produced_mb_s']} | {rss['start']} | {rss[f'at_{SETTLE_S}s']} "
        f"| {rss['max']} | {rss['end']} | {rss[f'growth_after_{SETTLE_S}s']} "
        f"| {sum(r['gaps_reported'] for r in slow)} "
        f"| {spliced} |"
    )
    rows = [r for r in rows if not r.startswith(f"| `{command}` |")] + [row]
    results.write_text(
        text.rstrip("\n") + "\n\n" + "\n".join([*TABLE_HEAD, *rows, TABLE_END]) + "\n"
    )


if __name__ == "__main__":
    sys.exit(main())
