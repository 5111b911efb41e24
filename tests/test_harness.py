"""The test harness itself: what its children inherit must not depend on how pytest was started."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path


def ignored_signals(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            return int(line.split()[1], 16)
    raise AssertionError("no SigIgn line")


def test_children_of_a_background_run_do_not_ignore_sigint() -> None:
    """`make test &` starts pytest with SIGINT ignored; its children must still get SIGINT."""
    child = subprocess.Popen(["sleep", "30"])
    try:
        assert not ignored_signals(child.pid) & (1 << (signal.SIGINT - 1))
    finally:
        child.kill()
        child.wait(timeout=10)
