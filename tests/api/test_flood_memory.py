"""What gafferd holds under an unthrottled print() loop: ten continuous feeds that never read
(4 KiB receive buffers), one slow reader. Every holder stays within its bound: the ring, and
each feed's lag (skipped past, not buffered).

The RSS of the same run is measured in ``bench/flood_rss.py --feed continuous --writer
print`` (bench/RESULTS.md), not here: before the reader asked the pipe how much it held, each
small read allocated 512 KiB and glibc's heap fragmented (+25 MiB in the first 10 s), which
only RSS shows.
"""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

import gevent

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


def test_what_gafferd_holds_stays_bounded_under_a_print_flood_with_stalled_feeds(
    tmp_path: Path,
) -> None:
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
            sockets = [open_feed(host, port, pid, 4096) for _ in range(10)]
            slow = open_feed(host, port, pid, 65536)
            sockets.append(slow)
            received, deadline = 0, time.monotonic() + SECONDS
            while time.monotonic() < deadline:
                received += len(slow.recv(16384))  # about 1.6 MB/s at most: far behind
                gevent.sleep(0.01)  # paces the slow reader; nothing is asserted after it
            body = c.get("/debug/subscriptions").json()
        (stream,) = [s for s in body["streams"] if s["pid"] == pid]
        assert stream["total_bytes"] > 10 * MIB, "the child should flood"
        assert received > 0
        assert stream["held_bytes"] <= stream["buffer_size"]
        subs = [s for s in body["subscriptions"] if s["pid"] == pid]
        assert len(subs) == 11
        assert all(s["lag_bytes"] <= stream["buffer_size"] for s in subs), subs
        assert sum(s["dropped_chunks"] > 0 for s in subs) >= 10, subs  # skipped, not buffered
    finally:
        for sock in sockets:
            sock.close()
        try:
            daemon.stop()
        finally:
            daemon.cleanup()
