"""The runtime dir: the lock that allows one manager per state, and the record of its groups.

Two files live in ``[gaffer] runtime_dir``:

* ``lock``, ``flock``-ed for as long as a manager runs, with its pid inside. A
  second manager over the same dir is refused (``NotTheManager``; gafferd exits
  1 naming that pid). The kernel drops the lock when its holder dies, however it
  dies, so a crash never leaves a stale lock, and children never hold it (every
  descriptor but 0, 1 and 2 is closed at spawn).
* ``processes.json``: the process group and leader start time of every running
  child (see ``leftovers``), replaced atomically (temp file + rename) at most
  every ``WRITE_DELAY`` seconds while things change, so the 100 spawns of one
  reconcile cost one write and a spawn never waits for the disk. A clean stop
  removes it; finding it at start means the previous manager did not stop
  cleanly, and ``sweep`` stops what it left before anything new starts.

The default dir is per config file, so two gafferds over two configs coexist and
two over one config do not: ``$XDG_RUNTIME_DIR/gaffer/<name>`` when that variable
names a directory, ``/run/gaffer/<name>`` for root, else ``/tmp/gaffer-<uid>/<name>``,
where ``<name>`` is the config file's stem and a hash of its real path. A dir that
is a symlink, belongs to another user or that others may write to is refused.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import posix
import re
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import gevent

from . import leftovers
from .errors import ConfigError, NotTheManager
from .leftovers import Group

if TYPE_CHECKING:
    from .events import EventBus
    from .manager import Manager
    from .process import Process

log = logging.getLogger(__name__)

LOCK_FILE = "lock"
STATE_FILE = "processes.json"
#: Seconds between a change (spawn, exit) and the write that records it.
WRITE_DELAY = 0.05
#: Seconds leftovers get between SIGTERM and SIGKILL.
SWEEP_GRACE = 3.0
#: A record never lists more groups than this (a corrupt or hostile file is cut here).
MAX_GROUPS = 100_000
_STEM = re.compile(r"[^A-Za-z0-9_.-]+")


def default_runtime_dir(
    identity: str, stem: str, *, environ: Mapping[str, str] | None = None, uid: int | None = None
) -> str:
    """The default dir of one state: ``identity`` (a config's real path) names it uniquely."""
    environ = os.environ if environ is None else environ
    uid = os.getuid() if uid is None else uid
    xdg = environ.get("XDG_RUNTIME_DIR", "")
    if xdg and os.path.isabs(xdg) and os.path.isdir(xdg):
        base = os.path.join(xdg, "gaffer")
    elif uid == 0:
        base = "/run/gaffer"
    else:
        base = f"/tmp/gaffer-{uid}"
    digest = hashlib.sha256(identity.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    name = _STEM.sub("_", stem).strip("._")[:40] or "gaffer"
    return os.path.join(base, f"{name}-{digest}")


def runtime_dir_for(configured: str | None, config_path: str | None, fallback: str) -> str:
    """``[gaffer] runtime_dir`` when set, else the default for this config file.

    Without a config file, ``fallback`` (e.g. ``gafferd:127.0.0.1:5000``) names the state.
    """
    if configured:
        return configured
    if config_path:
        real = os.path.realpath(config_path)
        return default_runtime_dir(real, os.path.splitext(os.path.basename(real))[0])
    return default_runtime_dir(fallback, fallback.partition(":")[0])


@dataclass
class Record:
    """What ``processes.json`` says: the writer's pid and the groups it had running."""

    manager_pid: int
    groups: list[Group] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "manager_pid": self.manager_pid,
            "groups": [{"pgid": g.pgid, "start": g.start, "name": g.name} for g in self.groups],
        }

    @classmethod
    def from_json(cls, data: Any) -> Record:
        """Anything that is not a well-formed entry is skipped: this file decides what is killed."""
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        pid = data.get("manager_pid")
        record = cls(pid if type(pid) is int else 0)
        entries = data.get("groups")
        for entry in entries[:MAX_GROUPS] if isinstance(entries, list) else []:
            if not isinstance(entry, dict):
                continue
            pgid, start, name = entry.get("pgid"), entry.get("start"), entry.get("name", "")
            if type(pgid) is int and type(start) is int and pgid > 1 and start >= 0:
                record.groups.append(Group(pgid, start, name if isinstance(name, str) else ""))
        return record


def read_record(path: str) -> Record | None:
    """The record at ``path``; None when there is none (the last manager stopped cleanly)."""
    try:
        with open(path, "rb") as f:
            text = f.read(64 * 1024 * 1024)
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("cannot read %s (%s): what the last manager left cannot be found", path, exc)
        return Record(0)
    try:
        return Record.from_json(json.loads(text))
    except ValueError as exc:
        log.warning(
            "%s is unreadable (%s): nothing left by the last manager can be found", path, exc
        )
        return Record(0)


def write_record(path: str, record: Record) -> None:
    """Replace ``path`` atomically: a reader (or a crash) sees the old file or the new one."""
    temp = path + ".tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(temp, flags, 0o600)
    with open(fd, "wb") as f:
        f.write(json.dumps(record.to_json(), separators=(",", ":")).encode())
    os.replace(temp, path)


def ensure_dir(path: str) -> None:
    """Create ``path`` (mode 0700) if missing and check it is safe.

    Raises ``ConfigError`` for a dir we cannot trust: whoever can write there (or
    swap it, from its parent) could plant a record naming process groups for us to
    kill. The dir must be ours, a real dir, and closed to others; its parent must
    belong to us or root and be closed to others unless sticky (like ``/tmp``).
    """
    parent = os.path.dirname(path) or "."
    try:
        os.makedirs(parent, mode=0o700, exist_ok=True)
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise _unusable(path, exc.strerror or str(exc)) from None
    try:
        info, above = os.lstat(path), os.stat(parent)
    except OSError as exc:
        raise _unusable(path, exc.strerror or str(exc)) from None
    uid = os.getuid()
    if not stat.S_ISDIR(info.st_mode):
        raise _unusable(path, "not a directory (a symlink is refused)")
    if info.st_uid != uid:
        raise _unusable(path, f"owned by uid {info.st_uid}, not by us (uid {uid})")
    if info.st_mode & 0o022:
        raise _unusable(path, f"others may write to it (mode {stat.S_IMODE(info.st_mode):04o})")
    if above.st_uid not in (uid, 0):
        raise _unusable(path, f"its parent belongs to uid {above.st_uid}")
    if above.st_mode & 0o022 and not above.st_mode & stat.S_ISVTX:
        raise _unusable(path, "others may write to its parent, which is not sticky")


def _unusable(path: str, why: str) -> ConfigError:
    return ConfigError(f"cannot use {path!r}: {why}", section="gaffer", key="runtime_dir")


def _lock(path: str) -> int:
    """Open and ``flock`` the lock file; NotTheManager while another manager holds it."""
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    while True:
        fd = os.open(path, flags, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _holder(fd)
            posix.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                raise
            who = f"with pid {holder}" if holder else "(pid unknown)"
            raise NotTheManager(
                f"already running {who}, which holds {path}: stop it first, or give this "
                "one its own [gaffer] runtime_dir",
                holder=holder, lock=path,
            ) from None  # fmt: skip
        # The last holder unlinks the file as it stops: a lock on that old inode
        # would lock nothing, so lock again the file that is there now.
        with contextlib.suppress(FileNotFoundError):
            here, there = os.fstat(fd), os.stat(path)
            if (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino):
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
                return fd
        posix.close(fd)


def _holder(fd: int) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(os.pread(fd, 32, 0).decode().strip()) or None
    return None


class Runtime:
    """One manager's claim on a runtime dir: the lock, the previous record, our record."""

    def __init__(self, directory: str, *, remove: bool = False) -> None:
        """Claim ``directory``: ConfigError if unusable, NotTheManager if another holds it.

        ``remove``: a clean ``close`` removes the (then empty) dir; for default dirs
        only, as a configured one may have been made by someone allowed to.
        """
        self.directory = os.path.abspath(directory)
        ensure_dir(self.directory)
        self._remove = remove
        self.lock_path = os.path.join(self.directory, LOCK_FILE)
        self.state_path = os.path.join(self.directory, STATE_FILE)
        try:
            self._fd: int | None = _lock(self.lock_path)
        except OSError as exc:  # e.g. the lock file is a symlink (O_NOFOLLOW), or not ours
            raise _unusable(self.directory, f"{LOCK_FILE}: {exc.strerror or exc}") from None
        #: What the previous manager recorded; None when it stopped cleanly.
        self.previous = read_record(self.state_path)
        self.groups: dict[int, Group] = {}  # gaffer pid -> its group
        self._unread: dict[int, tuple[int, str]] = {}  # gaffer pid -> (OS pid, name)
        self._manager: Manager | None = None
        self._writer: gevent.Greenlet[Any] | None = None

    @classmethod
    def claim(cls, configured: str | None, config_path: str | None, fallback: str) -> Runtime:
        """Claim ``[gaffer] runtime_dir``, or the default dir (see ``runtime_dir_for``)."""
        directory = runtime_dir_for(configured, config_path, fallback)
        try:
            return cls(directory, remove=not configured)
        except ConfigError as exc:
            exc.path = config_path or exc.path  # name the file whose runtime_dir it is
            raise

    @property
    def closed(self) -> bool:
        return self._fd is None

    # -- what the previous manager left -------------------------------------

    def sweep(
        self, bus: EventBus | None = None, say: Callable[[str], None] | None = None
    ) -> int | None:
        """Stop what the previous manager left; how many processes (None: it stopped cleanly).

        Publishes ``orphans`` (``count``, ``groups``, ``manager_pid``) and says one line.
        """
        previous = self.previous
        if previous is None:
            return None
        outcome = leftovers.stop(previous.groups, grace=SWEEP_GRACE)
        self.previous = None  # only now: a sweep cut short leaves the record for the next start
        count = len(outcome.found)
        groups = len({proc.pgid for proc in outcome.found})
        who = f"pid {previous.manager_pid}" if previous.manager_pid else "unknown pid"
        message = (
            f"the previous manager ({who}) did not stop cleanly: stopped {count} "
            f"process{'' if count == 1 else 'es'} it left running ({groups} process "
            f"group{'' if groups == 1 else 's'})"
        )
        if outcome.survivors:
            pids = ", ".join(str(proc.pid) for proc in outcome.survivors[:20])
            message += f"; still alive after SIGKILL: {pids}"
        (say or log.warning)(message)
        if bus is not None:
            bus.publish("orphans", count=count, groups=groups, manager_pid=previous.manager_pid)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.state_path)
        return count

    def attach(self, manager: Manager, say: Callable[[str], None] | None = None) -> None:
        """``sweep`` onto ``manager``'s bus, then ``record`` its children: before it starts any."""
        self.sweep(manager.bus, say)
        self.record(manager)

    # -- what this manager runs ---------------------------------------------

    def record(self, manager: Manager) -> None:
        """Keep ``processes.json`` in step with ``manager``'s children from now on."""
        self._manager = manager
        manager.spawn_hooks.append(self._spawned)
        manager.check_group_hooks.append(self._check_group)
        manager.bus.subscribe("exit", self._exited)

    def _check_group(self, os_pid: int, name: str, running: bool) -> None:
        # Keyed by the negated OS pid: gaffer's pids are positive, and a check's command
        # lives at most its timeout, so its OS pid is not reused while it is recorded.
        key = -os_pid
        if running:
            self._unread[key] = (os_pid, f"{name} (check)")
        elif self.groups.pop(key, None) is None and self._unread.pop(key, None) is None:
            return
        self._changed()

    def _spawned(self, process: Process) -> None:
        # Its start time is read by the writer, not here: just after exec the child's
        # loader holds its memory map, and reading /proc/PID/stat would wait for it.
        self._unread[process.pid] = (process.os_pid, process.name)
        self._changed()

    def _exited(self, event: str, payload: dict[str, Any]) -> None:
        # Keyed by gaffer's pid, which is never reused, unlike the OS pid.
        pid = payload.get("pid", 0)
        if self.groups.pop(pid, None) is not None or self._unread.pop(pid, None) is not None:
            self._changed()

    def _read_starts(self) -> None:
        """Give the children spawned since the last write their leaders' start times.

        One that is gone, or whose pid is no longer our child's, has exited (its exit
        event is on its way): there is nothing of it to record.
        """
        me = os.getpid()
        for pid, (os_pid, name) in self._unread.items():
            proc = leftovers.read_stat(os_pid)
            if proc is not None and proc.ppid == me and proc.pgid == os_pid:
                self.groups[pid] = Group(os_pid, proc.start, name)
        self._unread.clear()

    def _changed(self) -> None:
        if self._writer is None and not self.closed:
            self._writer = gevent.spawn_later(WRITE_DELAY, self._write)

    def _write(self) -> None:
        self._writer = None
        self._read_starts()
        # Groups of the previous manager not swept yet stay recorded with ours.
        groups = list(self.groups.values()) + (self.previous.groups if self.previous else [])
        try:
            if groups:
                write_record(self.state_path, Record(os.getpid(), groups))
            elif self.previous is None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.state_path)
        except OSError as exc:
            log.error("cannot record the running processes in %s: %s", self.state_path, exc)

    # -- stop ---------------------------------------------------------------

    def close(self) -> None:
        """Write the last record (nothing left: no file), then let go of the lock.

        Processes still running (they would not die) stay recorded, for the next start.
        """
        if self.closed:
            return
        if self._writer is not None:
            self._writer.kill(block=False)
        if self._manager is not None:
            self._manager.bus.flush()  # the last exits
            with contextlib.suppress(ValueError):
                self._manager.spawn_hooks.remove(self._spawned)
            self._manager.bus.unsubscribe("exit", self._exited)
        self._write()
        fd, self._fd = self._fd, None
        if not self.groups and self.previous is None:
            with contextlib.suppress(OSError):
                os.unlink(self.lock_path)  # still locked: a waiting claim re-checks the inode
            if self._remove:
                with contextlib.suppress(OSError):
                    os.rmdir(self.directory)
        if fd is not None:
            posix.close(fd)
