"""Fixtures for the CLI tests: a real gafferd subprocess and the console scripts.

gafferd is tests/gafferd.py's ``Gafferd`` (the console script, ``--bind 127.0.0.1:0``,
its URL read from its ``gafferd: listening on ...`` line, its output in a log file); it
is stopped with SIGTERM in teardown, which also stops every process it runs.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gevent
import pytest

from gaffer_gevent.auth import mint_token
from gaffer_gevent.client import Client

from ..gafferd import GAFFERD_SCRIPT, Gafferd
from ..helpers import wait_for  # noqa: F401  (test modules import it from here)
from .recorder import Recorder

BIN = Path(sys.executable).parent
HERE = Path(__file__).parent
TICKER = str(HERE / "child_ticker.py")
ECHO = str(HERE / "child_echo.py")
ECHO_CLIENT = HERE.parent.parent / "examples" / "echo_client.py"


@dataclass
class Output:
    """Lines a CLI subprocess (watch, tail, gaffer start) writes to one pipe, collected by a
    greenlet so the pipe never fills."""

    lines: list[str] = field(default_factory=list)

    def text(self) -> str:
        return "".join(self.lines)

    def has(self, pattern: str) -> bool:
        return any(re.search(pattern, line) for line in self.lines)


def collect(pipe: object) -> Output:
    out = Output()

    def read() -> None:
        for line in iter(pipe.readline, ""):  # type: ignore[attr-defined]
            out.lines.append(line)

    gevent.spawn(read)
    return out


#: The CLI tests' name for tests/gafferd.py's one class (``url``, ``proc``, ``log.has``,
#: ``log.text()``, ``client()``).
Daemon = Gafferd


def start_gafferd(
    tmp_path: Path,
    bind: str | None = "127.0.0.1:0",
    config: str = "",
    kind: type[Gafferd] = Gafferd,
) -> Gafferd:
    """gafferd (the console script, in ``tmp_path``) on ``bind``, or (``bind=None``) on the
    endpoints of ``config``, written to ``tmp_path/gafferd.ini``."""
    ini = tmp_path / "gafferd.ini"
    ini.write_text(config)
    return kind(ini, bind=bind, cwd=tmp_path, program=GAFFERD_SCRIPT)


def stop_process(proc: subprocess.Popen[Any], sig: int = signal.SIGTERM) -> int:
    """Stop a subprocess we started, by pid; SIGKILL if it does not go in time."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    return int(proc.returncode)


@pytest.fixture
def gafferd(tmp_path: Path) -> Iterator[Gafferd]:
    with start_gafferd(tmp_path) as daemon:
        yield daemon
        daemon.stop()


def token_section(name: str, role: str, token: str, scope: str = "") -> str:
    """A ``[token:NAME]`` section as the README documents it (the hash, never the token)."""
    digest = hashlib.sha256(token.encode()).hexdigest()
    section = f"[token:{name}]\nrole = {role}\nhash = sha256:{digest}\n"
    return section + (f"scope = {scope}\n" if scope else "") + "\n"


class SecuredDaemon(Gafferd):
    """gafferd with one token per role (``tokens["read"]``...) and a scoped operate token."""

    tokens: dict[str, str]

    def client(self, role: str | None = "admin") -> Client:  # type: ignore[override]
        token = None if role is None else self.tokens[role]
        return Client(self.url, token=token, timeout=10)


@pytest.fixture
def secured_gafferd(tmp_path: Path) -> Iterator[SecuredDaemon]:
    """gafferd that answers 401 without a token; template ``x`` (the ticker) runs."""
    tokens = {role: mint_token() for role in ("read", "stdin", "operate", "admin")}
    tokens["scoped"] = mint_token()
    config = f"[process:x]\ncmd = {sys.executable}\nargs = -u {TICKER}\ngraceful_timeout = 1\n"
    config += "redirect_output = stdout\nredirect_input = true\n\n"
    config += "".join(token_section(f"{r}-token", r, t) for r, t in tokens.items() if r != "scoped")
    config += token_section("web-ops", "operate", tokens["scoped"], "web:*")
    with start_gafferd(tmp_path, config=config, kind=SecuredDaemon) as daemon:
        assert isinstance(daemon, SecuredDaemon)
        daemon.tokens = tokens
        yield daemon
        daemon.stop()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    """A real server on 127.0.0.1 that records each request's Authorization header."""
    server = Recorder(("127.0.0.1", 0))
    yield server
    server.stop()


@pytest.fixture
def client(gafferd: Gafferd) -> Iterator[Client]:
    with gafferd.client() as c:
        yield c


@dataclass
class Result:
    code: int
    out: str
    err: str


def run_script(
    script: str,
    *args: str,
    input: str | None = None,
    cwd: Path | None = None,
    timeout: float = 30,
    env: dict[str, str] | None = None,
) -> Result:
    """Run a console script from the venv to completion.

    ``env`` is added to ours, without any GAFFER_TOKEN of the caller's shell.
    """
    inherited = {k: v for k, v in os.environ.items() if k != "GAFFER_TOKEN"}
    proc = subprocess.run(
        [str(BIN / script), *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={**inherited, "NO_COLOR": "1", **(env or {})},
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def spawn_script(script: str, *args: str, cwd: Path | None = None) -> subprocess.Popen[str]:
    """Start a console script that runs until signalled (watch, tail, gaffer start)."""
    return subprocess.Popen(
        [str(BIN / script), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env={**os.environ, "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"},
    )


@pytest.fixture
def ctl(gafferd: Gafferd) -> Callable[..., Result]:
    """``ctl("processes")`` runs ``gafferctl --connect <gafferd> processes``."""

    def run(*args: str, input: str | None = None) -> Result:
        return run_script("gafferctl", "--connect", gafferd.url, *args, input=input)

    return run


def one_line(text: str) -> str:
    """Assert ``text`` is exactly one line and return it."""
    lines = text.splitlines()
    assert len(lines) == 1, f"expected one line, got {text!r}"
    assert "Traceback" not in text
    return lines[0]


@pytest.fixture
def terminals() -> Iterator[list[Any]]:
    """Pseudo-terminals a test opens (``terminal.Terminal``), each closed after it."""
    opened: list[Any] = []
    yield opened
    for terminal in opened:
        terminal.close()
