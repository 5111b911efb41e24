"""The one way tests start a long-running gafferd: ``Gafferd``.

A gafferd a test leaves running, or one whose output pipe nobody reads, stalls or
outlives the suite; so every test that needs a real daemon gets it from here:

- a subprocess in its own session (its process group can be killed as one);
- stdout and stderr into one log file, never a pipe that can fill up (``-vv`` echoes
  every line a child prints; a pipe the test stops reading would stall gafferd);
- ``url`` read from its ``gafferd: listening on`` line, within a bounded wait;
- ``log_line(pattern)`` waits, bounded, for a line of that log;
- ``http`` (httpx) and ``client()`` (our own client) to talk to it;
- ``stop()``: SIGTERM, a bounded wait, then SIGKILL of its process group;
- ``cleanup()``: SIGKILL of the group if still running, then every child pid it was seen
  with (the children lead their own sessions, so the group kill misses them).

``subprocess.run`` of a gafferd that must refuse and exit at once needs none of this.
An autouse fixture in ``tests/conftest.py`` cleans up every ``Gafferd`` a test started.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import ClassVar

import httpx
import psutil

from gaffer_gevent.client import Client

from .helpers import PYTHON, spawn_logged, wait_for

#: gafferd as most tests run it: this interpreter, this checkout.
GAFFERD = [PYTHON, "-m", "gaffer_gevent"]
#: gafferd as a user runs it: the console script of this venv.
GAFFERD_SCRIPT = [str(Path(sys.executable).parent / "gafferd")]
#: With ``-v`` the line starts with a timestamp (``daemonlog.py``).
_LISTENING = re.compile(r"(?:\S+Z )?gafferd: listening on (https?://\S+|unix:\S+)\n")
#: How long gafferd may take to listen, and to stop after SIGTERM, on a busy 2-core machine.
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0


class Log:
    """A log file a server writes; read whole on each look (test logs are small)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def text(self) -> str:
        try:
            return self.path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    @property
    def lines(self) -> list[str]:
        """The complete lines so far, newline kept (a line being written is not one yet)."""
        text = self.text()
        end = text.rfind("\n")
        return [line + "\n" for line in text[:end].split("\n")] if end >= 0 else []

    def has(self, pattern: str) -> bool:
        return any(re.search(pattern, line) for line in self.lines)


class Gafferd:
    """A gafferd subprocess, started (listening) when the constructor returns.

    ``bind`` is passed as ``--bind`` (``None``: the config's endpoints), ``extra`` are
    more arguments; ``program`` is ``GAFFERD`` or ``GAFFERD_SCRIPT``. The log file is
    ``log`` or a fresh ``gafferd-N.log`` next to the config.
    """

    #: Every Gafferd started and not yet cleaned up (the autouse fixture empties it).
    started: ClassVar[list[Gafferd]] = []

    def __init__(
        self,
        config: Path,
        *extra: str,
        bind: str | None = "127.0.0.1:0",
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        log: Path | None = None,
        program: Sequence[str] = GAFFERD,
        preexec_fn: Callable[[], None] | None = None,
        timeout: float = START_TIMEOUT,
        stdout: int | None = None,
    ) -> None:
        self.config = config
        self.log = Log(log or _fresh_log(config.parent))
        binds = ["--bind", bind] if bind is not None else []
        args = [*program, *binds, *extra, str(config)]
        self.proc = spawn_logged(
            args, self.log.path, cwd=cwd, env=env, preexec_fn=preexec_fn, stdout=stdout
        )
        self.child_pids: set[int] = set()
        self._seen: dict[int, psutil.Process] = {}
        self._http: httpx.Client | None = None
        Gafferd.started.append(self)
        try:
            self.url = self._read_url(timeout)
        except BaseException:
            self.cleanup()
            raise
        #: What gafferd wrote up to and including its first ``listening on`` line.
        self.stderr_lines = self.log.lines[: self._listening_index() + 1]

    def __enter__(self) -> Gafferd:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cleanup()

    # -- where it listens --------------------------------------------------------------------

    def _listening_index(self) -> int:
        return next(i for i, line in enumerate(self.log.lines) if _LISTENING.fullmatch(line))

    def _read_url(self, timeout: float) -> str:
        def listening() -> re.Match[str] | None:
            for line in self.log.lines:
                match = _LISTENING.fullmatch(line)
                if match:
                    return match
            assert self.proc.poll() is None, f"gafferd exited:\n{self.log.text()}"
            return None

        try:
            return str(wait_for(listening, timeout=timeout).group(1))
        except AssertionError as exc:
            raise AssertionError(f"gafferd never listened: {exc}\n{self.log.text()}") from None

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1].rstrip("/"))

    @property
    def http(self) -> httpx.Client:
        """A client of its plain-HTTP endpoint (TLS tests bring their own context)."""
        if self._http is None:
            self._http = httpx.Client(base_url=self.url, timeout=10)
        return self._http

    def client(self) -> Client:
        """gaffer_gevent's own client of it (the one the CLIs use)."""
        return Client(self.url, timeout=10)

    def pids(self, name: str) -> list[int]:
        return list(self.http.get(f"/processes/{name}/_pids").json()["pids"])

    # -- its log -----------------------------------------------------------------------------

    def log_text(self) -> str:
        return self.log.text()

    def log_line(self, pattern: str, timeout: float = 10.0, after: int = 0) -> str:
        """The first line of the log matching ``pattern``, past its first ``after`` lines;
        waits up to ``timeout``, and fails at once if gafferd has exited without it."""

        def found() -> str | None:
            exited = self.proc.poll() is not None
            for line in self.log.lines[after:]:
                if re.search(pattern, line):
                    return line
            assert not exited, f"gafferd exited without {pattern!r}:\n{self.log.text()}"
            return None

        try:
            return str(wait_for(found, timeout=timeout))
        except AssertionError as exc:
            raise AssertionError(f"no {pattern!r} in the log: {exc}\n{self.log.text()}") from None

    # -- its children ------------------------------------------------------------------------

    def children(self) -> list[psutil.Process]:
        """Its processes now (grandchildren too), remembered for ``cleanup``."""
        with contextlib.suppress(psutil.NoSuchProcess):
            found = psutil.Process(self.proc.pid).children(recursive=True)
            for process in found:
                self._seen.setdefault(process.pid, process)
                self.child_pids.add(process.pid)
            return found
        return []

    # -- stopping ----------------------------------------------------------------------------

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, then its exit status; a gafferd that does not exit in ``timeout`` has its
        process group killed and fails the test."""
        if self.proc.poll() is None:
            self.children()
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._kill_group()
                raise AssertionError(
                    f"gafferd did not stop within {timeout}s of SIGTERM:\n{self.log.text()}"
                ) from None
        return int(self.proc.returncode)

    def cleanup(self) -> None:
        """Teardown: SIGKILL its group if it still runs, then every child it was seen with."""
        with contextlib.suppress(ValueError):
            Gafferd.started.remove(self)
        if self._http is not None:
            self._http.close()
        if self.proc.poll() is None:
            self.children()
            self._kill_group()
        for pid in self.child_pids:  # children run in their own sessions
            process = self._seen.get(pid)
            with contextlib.suppress(psutil.NoSuchProcess):
                # A psutil.Process seen before refuses to kill a reused pid.
                (process or psutil.Process(pid)).kill()

    def _kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)


_numbers = itertools.count()


def _fresh_log(directory: Path) -> Path:
    """``gafferd-N.log`` in ``directory`` that no other gafferd of this run writes."""
    while True:
        path = directory / f"gafferd-{next(_numbers)}.log"
        if not path.exists():
            return path
