"""Test helpers: bounded waits and small child programs (no sleeps-then-assert)."""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent

from gaffer_gevent.logfiles import backup_paths

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


def child(name: str, *args: str) -> dict[str, Any]:
    """Template fields running ``tests/children/<name>.py`` with the test's Python."""
    return {"cmd": PYTHON, "args": [str(CHILDREN / f"{name}.py"), *args]}


def numbered(first: int, last: int) -> bytes:
    """The numbered lines ``line first`` .. ``line last`` that counter children print."""
    return b"".join(b"line %d\n" % n for n in range(first, last + 1))


def numbers_in(data: bytes) -> list[int]:
    return [int(m) for m in re.findall(rb"^line (\d+)$", data, re.M)]


def files_of(path: Path, backups: int) -> list[Path]:
    """A log file's backups and itself that exist, oldest first."""
    return [Path(p) for p in backup_paths(str(path), backups) if os.path.exists(p)]


def on_disk(path: Path, backups: int) -> bytes:
    return b"".join(p.read_bytes() for p in files_of(path, backups))
