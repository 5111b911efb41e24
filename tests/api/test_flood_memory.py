"""gafferd's memory under an unthrottled print() loop: ten continuous feeds that never read
(4 KiB receive buffers), one slow reader; a short run of ``bench/flood_rss.py --feed
continuous --writer print``. Before the reader asked the pipe how much it held, each small
read allocated 512 KiB and glibc's heap fragmented: +25 MiB in the first 10 s.
"""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

import gevent
import psutil

from tests.gafferd import Gafferd
from tests.helpers import CHILDREN, wait_for

MIB = 1024 * 1024
SECONDS = 10


def open_feed(host: str, port: int, pid: int, rcvbuf: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before the handshake
    sock.connect((host, port))
    request = f"GET /streams/{pid}/out?feed=continuous HTTP/1.1\r\nHost: {host}\r\n\r\n"
    sock.sendall(request.encode())
    return sock


def test_memory_stays_flat_under_a_print_flood_with_stalled_feeds(tmp_path: Path) -> None:
    config = tmp_path / "gafferd.ini"
    config.write_text(
        "[process:flood]\n"
        f"cmd = {sys.executable}\n"
        f"args = {CHILDREN / 'printer.py'} 0\n"  # forever, as fast as it can
        "redirect_output = out\n"
    )
    daemon = Gafferd(config)
    sockets: list[socket.socket] = []
    try:
        host, port = "127.0.0.1", daemon.port
        with daemon.http as c:
            wait_for(lambda: c.get("/processes/flood/_pids").json()["pids"])
            (pid,) = c.get("/processes/flood/_pids").json()["pids"]
            proc = psutil.Process(daemon.proc.pid)
            start_rss = proc.memory_info().rss
            sockets = [open_feed(host, port, pid, 4096) for _ in range(10)]
            slow = open_feed(host, port, pid, 65536)
            sockets.append(slow)
            peak, received, deadline = start_rss, 0, time.monotonic() + SECONDS
            while time.monotonic() < deadline:
                received += len(slow.recv(16384))  # about 1.6 MB/s at most: far behind
                gevent.sleep(0.01)  # paces the slow reader; nothing is asserted after it
                peak = max(peak, proc.memory_info().rss)
            streams = c.get("/debug/subscriptions").json()["streams"]
        assert sum(s["total_bytes"] for s in streams) > 10 * MIB, "the child should flood"
        assert received > 0
        assert peak - start_rss < 15 * MIB, (start_rss / MIB, peak / MIB)
        assert peak < 60 * MIB, peak / MIB
    finally:
        for sock in sockets:
            sock.close()
        try:
            daemon.stop()
        finally:
            daemon.cleanup()
