"""A minimal HTTP/1.1 streaming client on raw sockets, for output feeds measured in MB/s.

httpx or http.client would put a Python-level parser between the socket and the byte counter
and become the bottleneck of a measurement meant to show the server's. This reads with
`recv_into` into one preallocated buffer and decodes chunked framing incrementally, so the
client costs little more than the syscalls. Also used by `sse_clients.py` (under gevent).
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field


class ChunkedDecoder:
    """Incremental decoder for `Transfer-Encoding: chunked` bodies.

    `feed()` takes whatever `recv` returned and gives back the payload bytes it completed;
    framing split across reads is kept for the next call.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._remaining = 0  # payload bytes still due in the current chunk
        self._need_crlf = False  # the CRLF after a chunk's payload
        self.finished = False

    def feed(self, data: bytes | memoryview) -> bytes:
        """Payload bytes contained in `data` (plus what earlier reads left pending)."""
        out = bytearray()
        self._decode(data, out)
        return bytes(out)

    def payload_count(self, data: bytes | memoryview) -> int:
        """Like `feed` but only counts payload bytes (no copy of large payloads).

        Payload is counted in place; only the few bytes of framing go through the buffering
        decoder. At 1 GB/s, copying every read cost this client a third of a core on a
        2-core machine, taken from the server and the child it measures.
        """
        view = memoryview(data)
        count = 0
        while view and not self.finished:
            if self._remaining and not self._buffer:
                take = min(self._remaining, len(view))
                count += take
                self._remaining -= take
                self._need_crlf = not self._remaining
                view = view[take:]
            else:
                count += self._decode(view[:64], None)
                view = view[64:]
        return count

    def _decode(self, data: bytes | memoryview, out: bytearray | None) -> int:
        self._buffer += data
        buf = self._buffer
        count = 0
        pos = 0
        while pos < len(buf) and not self.finished:
            if self._remaining:
                take = min(self._remaining, len(buf) - pos)
                if out is not None:
                    out += buf[pos : pos + take]
                count += take
                pos += take
                self._remaining -= take
                self._need_crlf = not self._remaining
                continue
            if self._need_crlf:
                if len(buf) - pos < 2:
                    break
                pos += 2
                self._need_crlf = False
                continue
            end = buf.find(b"\r\n", pos)
            if end < 0:
                break
            size = int(bytes(buf[pos:end]).split(b";", 1)[0], 16)
            pos = end + 2
            self.finished = size == 0
            self._remaining = size
        del buf[:pos]
        return count


@dataclass
class Response:
    """Status line and headers of a streaming response, plus body bytes read with them."""

    status: int
    headers: dict[str, str]
    leftover: bytes
    chunked: bool = field(init=False)

    def __post_init__(self) -> None:
        self.chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()


def request_bytes(port: int, path: str, extra_headers: str = "") -> bytes:
    """A GET request for 127.0.0.1:port, keep-alive, HTTP/1.1."""
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: */*\r\n{extra_headers}\r\n"
    ).encode()


def read_head(sock: socket.socket, limit: int = 65536) -> Response:
    """Read up to the end of the response headers; what follows is kept as `leftover`."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(4096)
        if not piece:
            raise ConnectionError(f"connection closed before headers: {data[:200]!r}")
        data += piece
        if len(data) > limit:
            raise ConnectionError("response headers too large")
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Response(status, headers, rest)


def open_stream(port: int, path: str, timeout: float = 10.0) -> tuple[socket.socket, Response]:
    """Connect to 127.0.0.1:port, send a GET for `path` and read the response head."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(request_bytes(port, path))
    response = read_head(sock)
    if response.status != 200:
        sock.close()
        raise ConnectionError(f"GET {path}: HTTP {response.status}")
    return sock, response


def measure_rate(port: int, path: str, duration: float) -> dict[str, float]:
    """Payload bytes per second one client receives from a streaming GET over `duration` s.

    The clock starts at the first body byte, so connection set-up and any initial replay of
    buffered output (supervisord's tail starts 1 KiB back) do not count.
    """
    sock, response = open_stream(port, path)
    decoder = ChunkedDecoder() if response.chunked else None
    buffer = bytearray(1 << 20)
    view = memoryview(buffer)
    try:
        sock.settimeout(max(5.0, duration))
        start = time.perf_counter()
        deadline = start + duration
        total = 0
        while time.perf_counter() < deadline:
            size = sock.recv_into(buffer)
            if not size:
                break
            total += decoder.payload_count(view[:size]) if decoder else size
        elapsed = time.perf_counter() - start
    finally:
        sock.close()
    return {"bytes_per_s": total / elapsed, "bytes": float(total), "seconds": elapsed}


class StalledReaders:
    """Clients that open a stream and never read it, plus optional slow readers.

    This is the reader a flood test needs: the server's send buffers fill and stay full, so
    whatever the server does with the output it cannot send shows up in its RSS.
    """

    def __init__(self, port: int, path: str, stalled: int, slow: int = 0) -> None:
        self.port = port
        self.path = path
        self.sockets: list[socket.socket] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.slow_bytes = 0
        for _ in range(stalled):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            # A small receive buffer, as a client on a slow link would have: the stall is felt
            # by the server quickly instead of after the kernel buffered megabytes for it.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            sock.sendall(request_bytes(port, path))
            self.sockets.append(sock)
        for _ in range(slow):
            thread = threading.Thread(target=self._slow_reader, daemon=True)
            thread.start()
            self._threads.append(thread)

    def _slow_reader(self) -> None:
        """Reads 4 KiB every 100 ms (40 KiB/s): alive, but far slower than the flood."""
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        self.sockets.append(sock)
        sock.sendall(request_bytes(self.port, self.path))
        try:
            while not self._stop.wait(0.1):
                data = sock.recv(4096)
                if not data:
                    return
                self.slow_bytes += len(data)
        except OSError:
            return

    def close(self) -> None:
        """Stop the slow readers and close every socket."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2)
        for sock in self.sockets:
            sock.close()
