"""Helpers every measurement shares: statistics, bounded waits, RSS, ports, cleanup, child scripts.

The bench driver is a plain, unpatched CPython process: blocking `time.sleep` is fine here, there
is no gevent hub to stall. Everything the bench starts is registered here and stopped by pid and
process group (never by name), on success, on error and at interpreter exit.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import functools
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

import psutil

T = TypeVar("T")
MB = 1024 * 1024
POLL = 0.02  # interval of status polls through a daemon's API, the same for every manager
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def write_section(section: str, begin: str, end: str, path: Path = RESULTS) -> None:
    """Put ``section`` (which starts with ``begin`` and ends with ``end``) in ``path``: in
    place of the text between those markers, or appended when they are not there yet."""
    body = section.rstrip("\n")
    text = path.read_text() if path.exists() else ""
    if begin in text and end in text:
        head, _, rest = text.partition(begin)
        _, _, tail = rest.partition(end)
        text = head + body + tail
    else:
        text = text.rstrip("\n") + "\n\n" + body + "\n"
    path.write_text(text)


# --- statistics -------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation between closest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    rank = (len(ordered) - 1) * q / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))


def summarize(values: Iterable[float]) -> dict[str, float]:
    """Median, min and max of several runs: the form every figure in RESULTS.md takes."""
    data = [float(v) for v in values]
    if not data:
        raise ValueError("nothing to summarize")
    return {
        "median": statistics.median(data),
        "min": min(data),
        "max": max(data),
        "n": float(len(data)),
    }


# --- waiting ----------------------------------------------------------------------------------


def wait_for(
    predicate: Callable[[], T | Literal[False] | None], timeout: float, interval: float = 0.01
) -> T:
    """Poll `predicate` until it returns something truthy; give up after `timeout` seconds.

    Every wait in the bench is bounded: a daemon that never reaches the state asked for makes
    the measurement fail with `TimeoutError` (recorded, the run goes on), never hangs the bench.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"condition not met within {timeout:.1f} s")
        time.sleep(interval)


# --- process table ----------------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    """Resident set size of one process, in MiB."""
    return psutil.Process(pid).memory_info().rss / MB


def _stat_fields(pid: int) -> tuple[int, str] | None:
    """(ppid, state) from /proc/<pid>/stat, or None when the pid is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            raw = handle.read()
    except OSError:
        return None
    # The command name is in parentheses and may contain spaces: split after the last ')'.
    rest = raw[raw.rfind(b")") + 2 :].split()
    return int(rest[1]), rest[0].decode()


def live_children(ppid: int) -> set[int]:
    """Pids of the direct, non-zombie children of `ppid` (one pass over /proc).

    Cheaper than psutil's `children()` (which builds objects for every process) and it skips
    zombies: an exited child that the daemon has not reaped yet is not "running".
    """
    found: set[int] = set()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        fields = _stat_fields(int(name))
        if fields and fields[0] == ppid and fields[1] != "Z":
            found.add(int(name))
    return found


def all_children(ppid: int) -> set[int]:
    """Pids of the direct children of `ppid`, zombies included (not reaped yet)."""
    found: set[int] = set()
    for name in os.listdir("/proc"):
        if name.isdigit():
            fields = _stat_fields(int(name))
            if fields and fields[0] == ppid:
                found.add(int(name))
    return found


class NewChildWatch:
    """Detects a new child of a daemon with sub-millisecond cost per poll.

    A full /proc scan costs 2-5 ms with a few hundred processes, which would blur a respawn
    measured in milliseconds. This keeps the set of pids already seen and only reads the stat
    file of pids that appeared since the last poll.
    """

    def __init__(self, ppid: int) -> None:
        self.ppid = ppid
        self.seen: set[int] = {int(n) for n in os.listdir("/proc") if n.isdigit()}

    def poll(self) -> int | None:
        """The pid of a child of `ppid` that appeared since the last poll, if any."""
        now = {int(n) for n in os.listdir("/proc") if n.isdigit()}
        fresh = now - self.seen
        self.seen = now
        for pid in sorted(fresh):
            fields = _stat_fields(pid)
            if fields and fields[0] == self.ppid:
                return pid
        return None


def is_alive(pid: int) -> bool:
    """True for a pid that exists and is not a zombie."""
    fields = _stat_fields(pid)
    return fields is not None and fields[1] != "Z"


def settle_delays(count: int, period: float = 1.0) -> list[float]:
    """Pauses between respawn kills: uniform in [0.1, 0.1 + period] s, a fixed seeded sequence.

    Managers that work on a periodic tick (supervisord's 1 s select timeout, circus's 5 s
    `check_delay`) respawn faster or slower depending on where in the tick the kill lands; a
    random phase over the whole period gives their typical latency instead of one tied to the
    bench's own rhythm (waiting a fixed time after the last respawn would always hit the same
    phase).
    """
    rng = random.Random(20121220)
    return [0.1 + rng.uniform(0.0, period) for _ in range(count)]


def respawn_latencies(
    daemon_pid: int,
    pid: int,
    confirmed: Callable[[int], bool],
    kills: int,
    period: float = 1.0,
) -> list[float]:
    """Milliseconds from SIGKILL of the child `pid` to a new child of the daemon, `kills` times.

    The new pid is detected in the process table, not through the daemon's API, so the figure
    is the manager's reaction time alone (polling supervisord's API wakes its select loop and
    flatters it). Before the next kill the daemon's API must report the new pid
    (`confirmed(new_pid)`), then a random pause over one `period` of its tick.
    """
    latencies = []
    for settle in settle_delays(kills, period):
        watch = NewChildWatch(daemon_pid)
        start = time.perf_counter()
        os.kill(pid, signal.SIGKILL)
        new_pid = wait_for(watch.poll, timeout=30, interval=0.0005)
        latencies.append((time.perf_counter() - start) * 1000)
        wait_for(functools.partial(confirmed, new_pid), timeout=10, interval=POLL)
        pid = new_pid
        time.sleep(settle)
    return latencies


def respawn_summary(latencies: list[float], rss_1: float) -> dict[str, Any]:
    """The respawn result every manager module returns."""
    return {
        "respawn_ms": latencies,
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
        "rss_1_mb": rss_1,
    }


def sample_rss(pid: int, duration: float, interval: float = 1.0) -> list[float]:
    """RSS of `pid` in MiB, sampled every `interval` seconds for `duration` seconds."""
    samples: list[float] = []
    start = time.monotonic()
    for index in range(int(duration / interval) + 1):
        samples.append(rss_mb(pid))
        next_at = start + (index + 1) * interval
        if next_at > start + duration:
            break
        time.sleep(max(0.0, next_at - time.monotonic()))
    return samples


# --- network ----------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for daemons that need one in config)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def raise_fd_limit() -> int:
    """Raise RLIMIT_NOFILE to the hard limit; children (gafferd, client processes) inherit it."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# --- processes the bench starts ---------------------------------------------------------------

_STARTED: dict[int, float] = {}


def _create_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


PR_SET_PDEATHSIG = 1


def _die_with_the_bench() -> None:
    """In the child: SIGTERM when the bench dies, even by SIGKILL (Linux), so a bench cut
    short leaves no gafferd behind; its own SIGTERM handling then stops its children."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def launch(argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """Start a process in its own session (pgid == pid) and register it for cleanup."""
    setup = kwargs.pop("preexec_fn", None)

    def preexec() -> None:
        _die_with_the_bench()
        if setup is not None:
            setup()

    proc: subprocess.Popen[bytes] = subprocess.Popen(
        argv, start_new_session=True, preexec_fn=preexec, **kwargs
    )
    created = _create_time(proc.pid)
    _STARTED[proc.pid] = created if created is not None else 0.0
    return proc


def _same_process(pid: int, created: float) -> bool:
    """Guard against pid reuse: the pid still names the process we started."""
    now = _create_time(pid)
    return now is not None and (created == 0.0 or abs(now - created) < 0.01)


def _kill_pid_and_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def stop_tree(proc: subprocess.Popen[bytes] | int, grace: float = 10.0) -> None:
    """Stop a daemon the bench started and everything below it, by pid and process group.

    SIGTERM first, so the daemon stops its own children the way it normally does; whatever of
    the tree seen just before is still alive after `grace` seconds (or the daemon itself) gets
    SIGKILL, to its pid and to its process group (managers put children in their own groups).
    """
    pid = proc if isinstance(proc, int) else proc.pid
    created = _STARTED.pop(pid, 0.0)
    if not _same_process(pid, created):
        if isinstance(proc, subprocess.Popen):
            proc.poll()
        return
    try:
        tree = [(p.pid, p.create_time()) for p in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        tree = []
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if isinstance(proc, subprocess.Popen):
            if proc.poll() is not None:
                break
        elif not is_alive(pid):
            break
        time.sleep(0.02)
    if _same_process(pid, created) and is_alive(pid):
        _kill_pid_and_group(pid, signal.SIGKILL)
    for child, child_created in tree:
        if _same_process(child, child_created) and is_alive(child):
            _kill_pid_and_group(child, signal.SIGKILL)
    if isinstance(proc, subprocess.Popen):
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


def stop_all_started() -> None:
    """Stop every process still registered: the safety net run at exit and on errors."""
    for pid in list(_STARTED):
        stop_tree(pid, grace=3.0)


atexit.register(stop_all_started)


# --- child scripts ----------------------------------------------------------------------------

FLOOD_LINE = b"gaffer-bench flood line: the quick brown fox jumps over the lazy dog 0123456789\n"

_FLOOD = f"""\
# Writes a fixed line as fast as the pipe takes it, in 64 KiB writes, like `yes`.
import os
block = {FLOOD_LINE!r} * (65536 // {len(FLOOD_LINE)})
while True:
    os.write(1, block)
"""

_TICKER = """\
# Prints `<seq> <time.time()>` lines at a fixed rate once a go-file appears, then idles.
# Waiting for the go-file lets every client subscribe before the first line is printed,
# so delivered can be compared with printed exactly.
import os, sys, time
go, lines, rate = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
while not os.path.exists(go):
    time.sleep(0.005)
start = time.monotonic()
for seq in range(lines):
    due = start + seq / rate
    delay = due - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    os.write(1, b"%d %.6f\\n" % (seq, time.time()))
while True:
    time.sleep(3600)
"""


class ChildScripts:
    """Tiny child programs written to a temp dir, run by the same python as the bench."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        (directory / "flood.py").write_text(_FLOOD)
        (directory / "ticker.py").write_text(_TICKER)
        self.python = sys.executable
        self.sleep = "/bin/sleep"
        self.cat = "/bin/cat"

    @property
    def flood(self) -> list[str]:
        """argv of the flooding child."""
        return [self.python, str(self.dir / "flood.py")]

    def ticker(self, go_file: Path, lines: int, rate: float) -> list[str]:
        """argv of the timestamped-lines child."""
        return [self.python, str(self.dir / "ticker.py"), str(go_file), str(lines), str(rate)]


@contextlib.contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    """A temp dir for one daemon's config, logs and child scripts, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix=f"gaffer-bench-{prefix}-") as name:
        yield Path(name)
