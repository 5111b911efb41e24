"""psutil snapshots as plain dicts (spec section 9), never blocking the hub.

CPU percent is measured since the previous call for the same process
(``cpu_percent(None)``), so the collector keeps one ``psutil.Process`` per OS
pid; the first reading of a new process is 0.0.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psutil

NA = "N/A"
_UNITS = "KMGTPEZY"


def bytes2human(n: int) -> str:
    """``9437184`` -> ``"9M"`` (powers of 1024, integer part), else ``"<n>B"``."""
    for index in range(len(_UNITS) - 1, -1, -1):
        unit = 1 << ((index + 1) * 10)
        if n >= unit:
            return f"{int(n / unit)}{_UNITS[index]}"
    return f"{n}B"


def format_ctime(seconds: float) -> str:
    """Total CPU time as ``M:SS.cc`` (minutes modulo 60, hundredths)."""
    hundredths = round(seconds * 100)
    minutes, rest = divmod(hundredths, 6000)
    return f"{minutes % 60}:{rest // 100:02d}.{rest % 100:02d}"


class StatsCollector:
    """Remembers psutil handles so CPU percentages mean 'since last time'."""

    def __init__(self) -> None:
        self._handles: dict[int, psutil.Process] = {}

    def _handle(self, os_pid: int) -> psutil.Process:
        handle = self._handles.get(os_pid)
        if handle is None or not handle.is_running():
            handle = psutil.Process(os_pid)
            self._handles[os_pid] = handle
        return handle

    def forget(self, live: Iterable[int]) -> None:
        keep = set(live)
        for pid in list(self._handles):
            if pid not in keep:
                del self._handles[pid]

    def process_info(
        self, os_pid: int, *, children: bool = True, tree: ChildrenMap | None = None
    ) -> dict[str, Any]:
        """The process info object of spec 9.1 (without ``id``).

        ``tree`` is one ``children_map`` shared by every process of a request or a
        feed's round: ``Process.children`` would scan ``/proc`` once per process.
        """
        try:
            handle = self._handle(os_pid)
        except psutil.Error:
            return _vanished(os_pid)
        if children and tree is None:
            tree = children_map()
        return _info(handle, self, tree if children else None)

    def template_stats(
        self, name: str, processes: Iterable[tuple[int, int]], tree: ChildrenMap | None = None
    ) -> dict[str, Any]:
        """The template stats object of spec 9.2 from (internal pid, os pid) pairs."""
        tree = children_map() if tree is None else tree
        stats = []
        for pid, os_pid in processes:
            info = self.process_info(os_pid, tree=tree)
            info["id"] = pid
            stats.append(info)
        body: dict[str, Any] = {"name": name, "stats": stats}
        for key in ("cpu", "mem"):
            values = [s[key] for s in stats]
            if not values or any(v == NA for v in values):
                body.update({key: NA, f"max_{key}": NA, f"min_{key}": NA})
            else:
                body.update(
                    {
                        key: round(sum(values), 2),
                        f"max_{key}": max(values),
                        f"min_{key}": min(values),
                    }
                )
        return body


def _info(
    handle: psutil.Process, collector: StatsCollector, tree: ChildrenMap | None
) -> dict[str, Any]:
    info: dict[str, Any] = {"pid": handle.pid}
    try:
        with handle.oneshot():
            info["cpu"] = _read(lambda: handle.cpu_percent(None))
            info["mem"] = _read(lambda: round(handle.memory_percent(), 1))
            mem = _read(handle.memory_info)
            info["mem_info1"] = NA if mem == NA else bytes2human(mem.rss)
            info["mem_info2"] = NA if mem == NA else bytes2human(mem.vms)
            times = _read(handle.cpu_times)
            info["ctime"] = NA if times == NA else format_ctime(times.user + times.system)
            info["username"] = _read(handle.username)
            info["nice"] = _read(handle.nice)
            cmdline = _read(handle.cmdline)
            info["cmdline"] = (
                os.path.basename(cmdline[0].split()[0])
                if cmdline != NA and cmdline and cmdline[0]
                else NA
            )
    except psutil.NoSuchProcess:
        return _vanished(handle.pid)
    kids = tree.get(handle.pid, ()) if tree is not None else ()
    info["children"] = [collector.process_info(kid, tree=tree) for kid in kids]
    return info


def _read(getter: Any) -> Any:
    try:
        return getter()
    except (psutil.AccessDenied, psutil.ZombieProcess):
        return NA


def _vanished(os_pid: int) -> dict[str, Any]:
    return {
        "pid": os_pid, "cpu": 0.0, "mem": 0.0, "mem_info1": NA, "mem_info2": NA,
        "ctime": NA, "username": NA, "nice": "Zombie", "cmdline": NA, "children": [],
    }  # fmt: skip


#: Parent pid -> its child pids, for every process of the machine (``children_map``).
ChildrenMap = dict[int, list[int]]


@dataclass(slots=True)
class TreeUsage:
    """What one process and every descendant of it use together: what a user pays for."""

    cpu_seconds: float = 0.0
    rss_bytes: int = 0
    open_fds: int = 0
    processes: int = 0


def tree_usage(roots: Iterable[int]) -> dict[int, TreeUsage]:
    """CPU seconds, RSS and open descriptors summed over each root's whole process tree.

    One scan of the parent links serves every root (``Process.children``
    would scan ``/proc`` once per root); then each process is read once, in
    ``oneshot``. CPU time includes what its reaped children used, so a
    grandchild that ran and exited still counts. A process that vanished or
    cannot be read counts as nothing. Nothing is kept between calls.
    """
    children = children_map()
    usage: dict[int, TreeUsage] = {}
    for root in roots:
        total = usage[root] = TreeUsage()
        pending, seen = [root], set()
        while pending:
            pid = pending.pop()
            if pid in seen:
                continue
            seen.add(pid)
            pending.extend(children.get(pid, ()))
            _add_process(total, pid)
    return usage


def _add_process(total: TreeUsage, pid: int) -> None:
    try:
        handle = psutil.Process(pid)
        with handle.oneshot():
            times = handle.cpu_times()
            rss = handle.memory_info().rss
            fds = _read(handle.num_fds)
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return
    total.cpu_seconds += times.user + times.system + times.children_user + times.children_system
    total.rss_bytes += rss
    total.open_fds += 0 if fds == NA else fds
    total.processes += 1


def children_map() -> ChildrenMap:
    """Parent pid -> child pids of every process, in one scan.

    psutil's own ``_ppid_map`` (what ``Process.children`` uses) reads one small
    file per process; ``process_iter`` builds an object per process and is
    about three times slower, so it is only the fallback.
    """
    ppid_map = getattr(psutil, "_ppid_map", None)
    try:
        pairs: dict[int, int] = (
            ppid_map()
            if ppid_map is not None
            else {p.pid: p.info["ppid"] for p in psutil.process_iter(["ppid"])}
        )
    except psutil.Error:
        pairs = {}
    children: dict[int, list[int]] = {}
    for pid, ppid in pairs.items():
        children.setdefault(ppid, []).append(pid)
    return children
