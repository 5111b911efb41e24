"""A console script run in a pseudo-terminal: what it draws, as text, and keys to send it.

The script's stdin, stdout and stderr are the pty's slave side, so it sees a
terminal (``isatty``) of a fixed size; the test reads the master side. ANSI
escape sequences are stripped from ``text`` so assertions read like the screen.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time
from pathlib import Path

from .conftest import BIN

_ANSI = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|\][^\x07]*\x07|[()][A-Za-z0-9]|[=>])")


class Terminal:
    """``script args...`` started in a pty of ``rows`` x ``columns``; ``close`` ends it by pid."""

    def __init__(
        self,
        script: str,
        *args: str,
        rows: int = 30,
        columns: int = 140,
        env: dict[str, str],
        cwd: Path | None = None,
    ) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        inherited = {k: v for k, v in os.environ.items() if k not in ("GAFFER_TOKEN", "NO_COLOR")}
        self.proc = subprocess.Popen(
            [str(BIN / script), *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env={**inherited, "TERM": "xterm-256color", "COLUMNS": str(columns), **env},
            start_new_session=True,
            cwd=cwd,
        )
        os.close(slave)
        self.raw = b""

    @property
    def text(self) -> str:
        return _ANSI.sub("", self.raw.decode("utf-8", "replace"))

    def read(self, timeout: float) -> None:
        """Read what the script draws for up to ``timeout`` seconds (until it closes the pty)."""
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            ready, _, _ = select.select([self.master], [], [], min(left, 0.1))
            if not ready:
                continue
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO: every slave fd is closed, the script is gone
                return
            if not data:
                return
            self.raw += data

    def wait_for(self, pattern: str, timeout: float = 15.0, since: int = 0) -> re.Match[str]:
        """The first match of ``pattern`` in what was drawn after offset ``since``."""
        end = time.monotonic() + timeout
        while True:
            match = re.compile(pattern).search(self.text, since)
            if match is not None:
                return match
            if time.monotonic() > end:
                raise AssertionError(f"{pattern!r} never drawn; the screen:\n{self.text[-3000:]}")
            if self.proc.poll() is not None:
                self.read(0.2)
                match = re.compile(pattern).search(self.text, since)
                if match is not None:
                    return match
                raise AssertionError(f"exited {self.proc.returncode} before {pattern!r}")
            self.read(0.2)

    def send(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def exit_code(self, timeout: float) -> int:
        """Wait (bounded) for the script to exit, reading the pty meanwhile so it never blocks."""
        end = time.monotonic() + timeout
        while self.proc.poll() is None:
            if time.monotonic() > end:
                raise AssertionError(f"still running after {timeout} s:\n{self.text[-2000:]}")
            self.read(0.1)
        return int(self.proc.returncode)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        os.close(self.master)
