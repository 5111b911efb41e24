"""Many SSE clients in one gevent process: the fan-out and idle-client loads for gafferd.

Run as a subprocess of the bench with the project's `.venv` python (which has gevent), so that
100 busy or 5,000 idle sockets cost one process and no threads. It patches first, because it is
an entry point; the bench driver itself stays unpatched.

    fanout: N clients on one eventsource feed; when all are subscribed it creates the go-file
            that starts the ticker child; each client timestamps every read and, after the
            run, parses the `data: <seq> <time>` lines: latency is the receipt time of the
            read that completed a line minus its print time. Prints one JSON summary.
    idle:   N clients that subscribe and then just hold the connection. Prints a JSON line
            once all tried to connect, then holds until `--hold` seconds have passed (the bench
            normally stops it earlier, by pid).
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
import gevent.pool  # noqa: E402
from http_stream import ChunkedDecoder, read_head, request_bytes  # noqa: E402

DATA_LINE = re.compile(rb"^data: (\d+) (\d+\.\d+)\r?$", re.MULTILINE)


def connect(
    port: int, path: str, headers: list[str] | None = None
) -> tuple[socket.socket, bytes, bool]:
    """Open one SSE subscription; return the socket, body bytes already read, chunked flag.

    `headers` are extra `Name: value` lines (e.g. `Authorization: Bearer <token>`).
    """
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    extra = "Accept: text/event-stream\r\n" + "".join(f"{h}\r\n" for h in headers or ())
    sock.sendall(request_bytes(port, path, extra))
    response = read_head(sock)
    if response.status != 200:
        sock.close()
        raise ConnectionError(f"HTTP {response.status}")
    return sock, response.leftover, response.chunked


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile; 0.0 for no values (all lost is reported separately)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


class FanoutClient:
    """One subscriber: records what arrived and when; parses it after the run.

    While lines arrive the client only receives and timestamps: parsing 100,000 lines a
    second in this process took a whole core and put the client's own queue into the
    latency it reports. Parsing afterwards gives the same figures (a line's latency is
    the receipt time of the read that completed it minus its print time) at a fraction of
    the cost.
    """

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.chunked = False
        self.received: list[tuple[float, bytes]] = []
        self.seen: set[int] = set()
        self.latencies: list[float] = []
        self.error = ""

    def run(self, sock: socket.socket, leftover: bytes, chunked: bool, deadline: float) -> None:
        self.chunked = chunked
        self.received.append((time.time(), leftover))
        last = b"data: %d " % (self.expected - 1)  # the last line printed: stop early
        tail = leftover[-len(last) :]
        sock.settimeout(None)  # one timeout for the whole run, not one per read
        try:
            with gevent.Timeout(max(0.0, deadline - time.monotonic()), False):
                while True:
                    data = sock.recv(262144)
                    now = time.time()
                    if not data:
                        return
                    self.received.append((now, data))
                    if last in tail + data:
                        return
                    tail = data[-len(last) :]
        except OSError as exc:
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            sock.close()

    def parse(self) -> None:
        """Sequence numbers and latencies from what ``run`` recorded."""
        decoder = ChunkedDecoder() if self.chunked else None
        pending = b""
        for now, data in self.received:
            payload = decoder.feed(data) if decoder else data
            if not payload:
                continue
            pending += payload
            cut = pending.rfind(b"\n") + 1
            if cut:
                for seq, stamp in DATA_LINE.findall(pending[:cut]):
                    self.seen.add(int(seq))
                    self.latencies.append(now - float(stamp))
                pending = pending[cut:]


def fanout(args: argparse.Namespace) -> dict[str, object]:
    """N subscribers, then the go-file, then wait for every line or the deadline."""
    opened = gevent.pool.Pool(50).map(
        lambda _: connect(args.port, args.path, args.header), range(args.clients)
    )
    clients = [FanoutClient(args.lines) for _ in opened]
    Path(args.go_file).touch()
    deadline = time.monotonic() + args.lines / args.rate + args.grace
    workers = [
        gevent.spawn(client.run, sock, leftover, chunked, deadline)
        for client, (sock, leftover, chunked) in zip(clients, opened, strict=True)
    ]
    gevent.joinall(workers, timeout=deadline - time.monotonic() + 5)
    for client in clients:
        client.parse()
    latencies = [lat for client in clients for lat in client.latencies]
    delivered = sum(len(client.seen) for client in clients)
    return {
        "clients": len(clients),
        "printed_per_client": args.lines,
        "delivered": delivered,
        "expected": args.lines * len(clients),
        "delivered_pct": 100.0 * delivered / (args.lines * len(clients)),
        "worst_client": min(len(client.seen) for client in clients),
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "max_ms": max(latencies, default=0.0) * 1000,
        "errors": sorted({client.error for client in clients if client.error})[:5],
    }


def idle(args: argparse.Namespace) -> None:
    """Open N subscriptions (50 connecting at a time), report, then hold them open."""
    held: list[socket.socket] = []
    failures: list[str] = []

    def hold(sock: socket.socket) -> None:
        # Read whatever the server sends (a first byte, heartbeats) so nothing piles up, and
        # notice if the server closes the stream.
        try:
            while sock.recv(4096):
                pass
        except OSError:
            pass

    def open_one(_: int) -> None:
        try:
            sock, _leftover, _chunked = connect(args.port, args.path, args.header)
        except (OSError, ConnectionError) as exc:
            failures.append(f"{type(exc).__name__}: {exc}")
            return
        sock.settimeout(None)
        held.append(sock)
        gevent.spawn(hold, sock)

    start = time.monotonic()
    gevent.pool.Pool(50).map(open_one, range(args.clients))
    report = {
        "connected": len(held),
        "failed": len(failures),
        "failures": sorted(set(failures))[:5],
        "connect_s": time.monotonic() - start,
    }
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()
    gevent.sleep(args.hold)


def main() -> None:
    """Parse the mode and run it; the fan-out summary is the last line on stdout."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=["fanout", "idle"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--lines", type=int, default=0)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--grace", type=float, default=5.0)
    parser.add_argument("--go-file", default="")
    parser.add_argument("--hold", type=float, default=120.0)
    parser.add_argument(
        "--header", action="append", default=[], help="extra request header, 'Name: value'"
    )
    args = parser.parse_args()
    if args.mode == "fanout":
        sys.stdout.write(json.dumps(fanout(args)) + "\n")
    else:
        idle(args)


if __name__ == "__main__":
    main()
