"""Test helpers: bounded waits and small child programs (no sleeps-then-assert)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gevent
import psutil
from gevent.pywsgi import WSGIServer

from gaffer_gevent.logfile import backup_paths

CHILDREN = Path(__file__).parent / "children"
PYTHON = sys.executable


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.01) -> Any:
    """Poll ``predicate`` cooperatively until truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")
        gevent.sleep(interval)


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on (just closed): for "connection refused"."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class FakeClock:
    """A clock the test moves by hand (``clock.now += 1``), for code that takes a clock."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def holds(predicate: Callable[[], Any], duration: float, interval: float = 0.01) -> None:
    """Check that ``predicate`` stays truthy for ``duration``, failing at the first moment it
    does not: the one honest way to test that something does *not* happen (a retry after
    giving up, a spawn after a stop), where ``wait_for`` has no event to wait on."""
    deadline = time.monotonic() + duration
    while True:
        assert predicate(), f"{predicate} stopped holding before {duration}s"
        if time.monotonic() > deadline:
            return
        gevent.sleep(interval)


def child(name: str, *args: str) -> dict[str, Any]:
    """Template fields running ``tests/children/<name>.py`` with the test's Python."""
    return {"cmd": PYTHON, "args": [str(CHILDREN / f"{name}.py"), *args]}


def progress(path: Path) -> int:
    """The count ``children/progress.py`` keeps in ``path`` (0 before its first block)."""
    try:
        return int(path.read_text() or 0)
    except FileNotFoundError:
        return 0


def numbered(first: int, last: int) -> bytes:
    """The numbered lines ``line first`` .. ``line last`` that counter children print."""
    return b"".join(b"line %d\n" % n for n in range(first, last + 1))


def numbers_in(data: bytes) -> list[int]:
    return [int(m) for m in re.findall(rb"^line (\d+)$", data, re.M)]


def files_of(path: Path, backups: int) -> list[Path]:
    """A log file's backups and itself that exist, oldest first."""
    return [Path(p) for p in backup_paths(str(path), backups) if os.path.exists(p)]


def on_disk(path: Path, backups: int) -> bytes:
    """A log file's backups and itself, concatenated; one rotated away meanwhile reads as empty."""
    chunks = []
    for p in files_of(path, backups):
        with contextlib.suppress(FileNotFoundError):
            chunks.append(p.read_bytes())
    return b"".join(chunks)


def alive(pids: set[int]) -> list[int]:
    """The pids of ``pids`` still running (zombies count as gone)."""
    left = []
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                left.append(pid)
    return left


def spawn_logged(
    args: list[str],
    log: Path,
    *,
    cwd: Path | None,
    env: dict[str, str] | None = None,
    preexec_fn: Callable[[], None] | None = None,
    stdout: int | None = None,
) -> subprocess.Popen[bytes]:
    """Start a server in its own session (so its group can be killed as one), output to ``log``
    (a file, never a pipe: nobody has to keep reading it). ``stdout=subprocess.PIPE`` is for a
    test of what the server does when its stdout is not read: its stderr still goes to ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(
            args, cwd=cwd, env=env, preexec_fn=preexec_fn, stdin=subprocess.DEVNULL,
            stdout=out if stdout is None else stdout, stderr=out, start_new_session=True,
        )  # fmt: skip


@dataclass
class LoggedServer:
    """A server started by ``spawn_logged``, the port it bound, and the OS pids of its children."""

    proc: subprocess.Popen[bytes]
    log: Path
    port: int = 0
    child_pids: set[int] = field(default_factory=set)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def logged_port(self, listening: re.Pattern[str], what: str, timeout: float = 10.0) -> int:
        """The port the server logs it bound (it was asked for port 0); fails if it exits."""

        def bound() -> re.Match[str] | None:
            assert self.proc.poll() is None, f"{what} exited:\n{self.log_text()}"
            return listening.search(self.log_text())

        return int(wait_for(bound, timeout=timeout).group(1))

    def kill(self) -> None:
        """Teardown: SIGKILL the server's process group, then every child pid it reported."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        for pid in self.child_pids:  # children run in their own sessions
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(pid).kill()


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A throwaway certificate and key for 127.0.0.1, made with the openssl command."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def write_config(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


class Receiver:
    """A WSGI app recording each POST; ``/status/<code>`` answers that status."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str, dict]] = []
        self.raw: list[tuple[str, dict[str, str], bytes]] = []  # path, HTTP_* headers, body
        self.server = WSGIServer(("127.0.0.1", 0), self.app, log=None, error_log=None)
        self.server.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.fail_first: set[str] = set()

    def app(self, environ, start_response):
        path = environ["PATH_INFO"]
        body = environ["wsgi.input"].read()
        headers = {k[5:]: v for k, v in environ.items() if k.startswith("HTTP_")}
        self.raw.append((path, headers, body))
        self.received.append((path, environ.get("CONTENT_TYPE", ""), json.loads(body)))
        status = "200 OK"
        if path.startswith("/status/"):
            status = f"{path.rsplit('/', 1)[1]} X"
        elif path in self.fail_first:
            self.fail_first.discard(path)
            status = "503 Busy"
        start_response(status, [("Content-Type", "text/plain")])
        return [b"ok"]

    def events(self, path: str) -> list[str]:
        return [payload["event"] for p, _, payload in self.received if p == path]
