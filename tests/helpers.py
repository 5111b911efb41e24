"""Test helpers: bounded waits and small child programs (no sleeps-then-assert)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent

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
