"""gaffer-gevent, measured through its HTTP API (gaffer 0.4's, see the spec) like a user would.

Each measurement starts a fresh `gafferd --bind 127.0.0.1:0` from the project's `.venv` with an
empty ini written to a temp dir, reads the port from its "listening on" line, creates the
templates it needs with `POST /processes`, and stops gafferd by pid and process group.
The measurements shared with the peers are here; the gaffer-only ones (SSE fan-out, idle
clients, websocket) are in `gaffer_streams.py`.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from common import (
    POLL,
    ChildScripts,
    launch,
    live_children,
    respawn_latencies,
    respawn_summary,
    rss_mb,
    sample_rss,
    stop_tree,
    wait_for,
    workdir,
)
from http_stream import StalledReaders, measure_rate

NAME = "gaffer-gevent"
REPO = Path(__file__).resolve().parent.parent
# BENCH_GAFFERD points the bench at another gafferd build (e.g. to compare before/after a change).
GAFFERD = Path(os.environ.get("BENCH_GAFFERD", REPO / ".venv" / "bin" / "gafferd"))
LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")


class ApiError(RuntimeError):
    """An HTTP API call answered with an unexpected status."""


class Gafferd:
    """One gafferd on 127.0.0.1:<free port>; a context manager that stops it by pid.

    `ini` is the config text (default: an empty `[gaffer]` section); `headers` are sent with
    every `call` (e.g. an `Authorization` header when the config has tokens).
    """

    def __init__(
        self,
        tmp: Path,
        startup_timeout: float = 30.0,
        ini: str = "[gaffer]\n",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.tmp = tmp
        self.scripts = ChildScripts(tmp)
        self.headers = dict(headers or {})
        config = tmp / "gaffer.ini"
        config.write_text(ini)
        self.proc = launch(
            [str(GAFFERD), "--bind", "127.0.0.1:0", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=open(tmp / "stdout.txt", "wb"),  # noqa: SIM115 - closed with the process
            stderr=subprocess.PIPE,
        )
        self.pid = self.proc.pid
        self._port: int | None = None
        self.port = 0
        self._conn = http.client.HTTPConnection("127.0.0.1", 0)
        self._found = threading.Event()
        self._stderr_log = tmp / "stderr.txt"
        # Drains stderr for gafferd's whole life: a full pipe would block its logging.
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        try:
            if not self._found.wait(startup_timeout) or self._port is None:
                raise RuntimeError(f"gafferd did not report its port: {self.stderr_tail()}")
            self.port = self._port
            self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            wait_for(lambda: self.call("GET", "/ping") == "OK", timeout=10, interval=0.05)
        except BaseException:
            stop_tree(self.proc, grace=5.0)
            raise

    def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        with open(self._stderr_log, "ab") as log:
            for line in self.proc.stderr:
                log.write(line)
                if self._port is None:
                    match = LISTENING.search(line.decode(errors="replace"))
                    if match:
                        self._port = int(match.group(1))
                        self._found.set()
        self._found.set()

    def stderr_tail(self) -> str:
        """The last line gafferd wrote to stderr (a traceback's last line names the error)."""
        try:
            lines = self._stderr_log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return lines[-1] if lines else "(nothing on stderr)"

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        expect: int = 200,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """One API request on a keep-alive connection; the decoded JSON (or text) reply.

        `headers` replace the daemon's default headers for this request.
        """
        payload = json.dumps(body).encode() if body is not None else None
        headers = dict(self.headers if headers is None else headers)
        if payload is not None:
            headers["Content-Type"] = "application/json"
        try:
            self._conn.request(method, path, body=payload, headers=headers)
            response = self._conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            # A dropped keep-alive connection: reconnect once, then let errors through.
            self._conn.close()
            self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            self._conn.request(method, path, body=payload, headers=headers)
            response = self._conn.getresponse()
            data = response.read()
        if response.status != expect:
            raise ApiError(f"{method} {path}: HTTP {response.status} {data[:200]!r}")
        if response.getheader("Content-Type", "").startswith("application/json"):
            return json.loads(data)
        return data.decode(errors="replace")

    def create(self, name: str, cmd: str, args: list[str], **settings: Any) -> None:
        """`POST /processes`: create and start a template."""
        self.call("POST", "/processes", {"name": name, "cmd": cmd, "args": args, **settings})

    def pids(self, name: str) -> list[int]:
        """Internal pids of a template (`_pids`)."""
        return list(self.call("GET", f"/processes/{name}/_pids")["pids"])

    def os_pids(self, name: str) -> list[int]:
        """OS pids of a template's processes, from `GET /stats/<name>`."""
        return [int(entry["pid"]) for entry in self.call("GET", f"/stats/{name}")["stats"]]

    def running(self, name: str) -> int:
        """`GET /status/<name>`: the number of running processes."""
        return int(self.call("GET", f"/status/{name}")["running"])

    def __enter__(self) -> Gafferd:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._conn.close()
        stop_tree(self.proc, grace=15.0)


def measure_spawn(tools: Any, count: int = 100, timeout: float = 60.0) -> dict[str, float]:
    """Seconds from one `POST /processes` (numprocesses=count) to `count` live children, and
    from `POST /processes/sleepers/_stop` to none; RSS with the children up (1 s settle)."""
    with workdir("gaffer") as tmp, Gafferd(tmp) as daemon:

        def all_up() -> set[int] | None:
            if daemon.running("sleepers") != count:
                return None
            pids = live_children(daemon.pid)
            return pids if len(pids) == count else None

        def all_down() -> bool:
            return not (pids & live_children(daemon.pid)) and daemon.running("sleepers") == 0

        start = time.perf_counter()
        daemon.create("sleepers", "sleep", ["3600"], numprocesses=count)
        pids = wait_for(all_up, timeout=timeout, interval=POLL)
        up = time.perf_counter() - start
        time.sleep(1.0)
        rss = rss_mb(daemon.pid)
        start = time.perf_counter()
        daemon.call("POST", "/processes/sleepers/_stop")
        wait_for(all_down, timeout=timeout, interval=POLL)
        down = time.perf_counter() - start
    return {"up_s": up, "down_s": down, "rss_100_mb": rss}


def measure_respawn(tools: Any, kills: int = 20) -> dict[str, Any]:
    """Milliseconds from SIGKILL of the one child to a new child pid (`respawn_latencies`).

    The OS pid comes from `GET /stats/one`, and so does the confirmation of each new pid.
    Kills land at random phases of one second, as for supervisord. A run of 50 ms counts as
    healthy (`backoff = 0.1 60 0.05`; the default is 10 s), as supervisord runs with
    `startsecs = 0` and circus without its flapping check: the figure is a healthy process's
    respawn, which is immediate; a crash loop's backoff is bench/crash_loop.py's subject.
    """
    ini = "[gaffer]\nbackoff = 0.1 60 0.05\n"
    with workdir("gaffer") as tmp, Gafferd(tmp, ini=ini) as daemon:
        daemon.create("one", "sleep", ["3600"], numprocesses=1)
        pid = wait_for(lambda: daemon.os_pids("one"), timeout=10, interval=POLL)[0]
        time.sleep(1.0)
        rss_1 = rss_mb(daemon.pid)
        latencies = respawn_latencies(
            daemon.pid, pid, lambda new: daemon.os_pids("one") == [new], kills, period=1.0
        )
    return respawn_summary(latencies, rss_1)


def start_flood(daemon: Gafferd) -> int:
    """Create the flooding template with stdout and stderr redirected; its internal pid."""
    flood = daemon.scripts.flood
    daemon.create("flood", flood[0], flood[1:], redirect_output=["stdout", "stderr"])
    return wait_for(lambda: daemon.pids("flood"), timeout=10, interval=POLL)[0]


def measure_output(tools: Any, duration: float = 5.0) -> dict[str, Any]:
    """Bytes/s one client gets from `GET /streams/<pid>/stdout?feed=continuous`."""
    with workdir("gaffer") as tmp, Gafferd(tmp) as daemon:
        pid = start_flood(daemon)
        result: dict[str, Any] = measure_rate(
            daemon.port, f"/streams/{pid}/stdout?feed=continuous", duration
        )
    result["how"] = "GET /streams/<pid>/stdout?feed=continuous, one client"
    return result


def measure_flood(tools: Any, duration: float = 60.0) -> dict[str, Any]:
    """Daemon RSS each second while the child floods, 10 continuous-feed clients never read
    and one reads 40 KiB/s (the scenario of the flood test in the foundation issue)."""
    with workdir("gaffer") as tmp, Gafferd(tmp) as daemon:
        pid = start_flood(daemon)
        readers = StalledReaders(
            daemon.port, f"/streams/{pid}/stdout?feed=continuous", stalled=10, slow=1
        )
        try:
            series = sample_rss(daemon.pid, duration)
        finally:
            readers.close()
        alive = daemon.running("flood")
    return {
        "rss_series_mb": series,
        "start_mb": series[0],
        "max_mb": max(series),
        "end_mb": series[-1],
        "slow_reader_bytes": float(readers.slow_bytes),
        "flood_still_running": float(alive),
        "how": "redirect_output stdout+stderr, 10 feed=continuous clients that never read "
        "+ 1 reading 4 KiB every 100 ms",
    }
