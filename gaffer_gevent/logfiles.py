"""Log files: each redirected label of a template written to a file, rotated, read back later.

A template's ``stdout_logfile`` / ``stderr_logfile`` name the files, relative to
the daemon's ``log_dir`` (or its working directory) and confined to it: see
``logdir``, which also keeps the ledger of the files gafferd created and for
which template. A file belongs to one template: another template naming it is
not written, read or rotated.
On top of ``logfile.LogFile`` (one file and its backups, rotated at line
boundaries; plain blocking calls, run in a thread), two pieces:

* ``LogWriter``: one greenlet per file, reading every process of its templates
  through ordinary stream ``Subscription`` cursors and writing each wake-up's
  batch in one call on a small thread pool. The reader greenlet only sets an
  event (a stream sink), so a slow or stuck disk never stalls a child: the
  cursor falls behind the ring buffer and the file records a gap line instead.
* ``LogFiles``: the writers of one manager, keyed by path (the stdout and stderr
  of one template may share a file), attached through ``Manager.spawn_hooks``. A
  writer outlives process generations, so the file stays open across respawns,
  and it is closed once the last template using it is removed.

History (``History``) is read from the files alone, so it is there after the
process is gone and after a daemon restart, as long as a template naming the
files is registered.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

import gevent
from gevent.event import Event
from gevent.lock import Semaphore
from gevent.pool import Group
from gevent.threadpool import ThreadPool

from .errors import IoNotFound
from .logdir import LogDir
from .logfile import Clock, History, LogFile
from .manager import Manager
from .process import Process
from .streams import Gap, Stream, Subscription
from .template import ProcessTemplate

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Most bytes a writer takes from its cursors before writing them in one call.
WRITE_BATCH = 1024 * 1024
#: A writer looks at its cursors at least this often, even if no sink woke it.
SWEEP_INTERVAL = 5.0
#: Threads doing file I/O for all writers; a hung disk holds these, not the hub's resolver.
IO_THREADS = 2


class LogWriter:
    """One file's writer greenlet, fed by cursors on every process of its templates."""

    def __init__(self, file: LogFile, pool: ThreadPool, group: Group, template: str) -> None:
        self.file = file
        self.template = template  # the one template whose file this is
        self.pool = pool
        self.owners: set[tuple[str, str]] = set()  # (template name, label)
        self.subscriptions: list[Subscription] = []
        self.closing = False
        self._wait_for_exit = True
        self.written_bytes = 0
        self.failed_bytes = 0
        self.lost_chunks = 0
        self.lost_bytes = 0
        self.lock = Semaphore()  # one file operation at a time: writes and rotations
        self._wakeup = Event()
        self._last_error = ""
        self.greenlet = group.spawn(self._run)

    def follow(self, stream: Stream, process: Process) -> None:
        """Write ``stream`` from its first byte on; wake up on each chunk and at exit."""
        sub = stream.subscribe(since=0)
        sub.owner = f"logfile {self.file.path}"
        self.subscriptions.append(sub)
        stream.sinks.append(self._wake)
        process.exited.rawlink(self._wake)
        self._wake()

    def _wake(self, *_: Any) -> None:
        # Called by the reader greenlet for every chunk: setting an event is all it may do.
        self._wakeup.set()

    def close(self, *, wait_for_exit: bool = True) -> None:
        """Close the file once what is held is written.

        ``wait_for_exit``: also what the followed processes still print until they
        exit (a removed template's processes are stopping and may say why);
        otherwise cursors on processes still running are dropped after the drain.
        """
        self.closing = True
        self._wait_for_exit = self._wait_for_exit and wait_for_exit
        self._wake()

    def _run(self) -> None:
        try:
            while True:
                self._wakeup.clear()
                data = self._collect()
                if data:
                    self._write(data)
                elif self.closing and (not self.subscriptions or not self._wait_for_exit):
                    return
                else:
                    self._wakeup.wait(SWEEP_INTERVAL)
        finally:
            for sub in self.subscriptions:
                sub.close()
            self.subscriptions = []
            with self.lock:
                self.pool.apply(self.file.close)

    def _collect(self) -> bytes:
        """Take up to one batch from the cursors; a lost stretch becomes a gap line."""
        pieces: list[bytes] = []
        size = 0
        for sub in list(self.subscriptions):
            while size < WRITE_BATCH:
                items = sub.take(WRITE_BATCH - size)
                if not items:
                    break
                for item in items:
                    if isinstance(item, Gap):
                        self.lost_chunks += item.chunks
                        self.lost_bytes += item.bytes or 0
                        mid_line = pieces[-1][-1:] != b"\n" if pieces else self.file.line_len > 0
                        pieces.append(_gap_line(item, mid_line))
                    else:
                        pieces.append(item.data)
                        size += len(item.data)
            if sub.at_end:
                sub.close()
                self.subscriptions.remove(sub)
        return b"".join(pieces)

    def _write(self, data: bytes) -> None:
        with self.lock:
            try:
                self.pool.apply(self.file.write, (data,))
                self.written_bytes += len(data)
            except OSError as exc:
                self.failed_bytes += len(data)
                if str(exc) != self._last_error:  # once per distinct error, not per batch
                    log.warning("cannot write %s: %s", self.file.path, exc)
                self._last_error = str(exc)
                with contextlib.suppress(OSError):
                    self.pool.apply(self.file.close)  # reopened at the next write

    def rotate(self) -> bool:
        """Rotate now, between two batches (so between two whole writes)."""
        with self.lock:
            return bool(self.pool.apply(self.file.rotate))

    def stats(self) -> dict[str, Any]:
        return {
            "path": self.file.path,
            "owners": sorted(f"{name}/{label}" for name, label in self.owners),
            "size": self.file.size,
            "written_bytes": self.written_bytes,
            "failed_bytes": self.failed_bytes,
            "lost_chunks": self.lost_chunks,
            "lost_bytes": self.lost_bytes,
        }


def _gap_line(gap: Gap, mid_line: bool) -> bytes:
    lost = f"{gap.chunks} chunks" + ("" if gap.bytes is None else f", {gap.bytes} bytes")
    text = f"[gaffer: {lost} not written, the log writer fell behind]\n"
    return (b"\n" if mid_line else b"") + text.encode()


class LogFiles:
    """The log files of one manager: writers attached to every spawned process."""

    def __init__(
        self, manager: Manager, log_dir: str | None = None, *, clock: Clock = time.time
    ) -> None:
        self.manager = manager
        self.log_dir = os.path.abspath(os.path.expanduser(log_dir)) if log_dir else None
        self.clock = clock
        self.pool = ThreadPool(IO_THREADS)
        self.logdir = LogDir(self.log_dir or os.getcwd())
        self._refused: set[tuple[str, str]] = set()  # (template, path) already warned about
        self.pool.apply(self.logdir.load)
        self.writers: dict[str, LogWriter] = {}  # by absolute path
        self.routes: dict[tuple[str, str], str] = {}  # (template, label) -> path
        self._group = Group()
        self._retired: list[LogWriter] = []  # closing, still writing what processes print
        self.closed = False
        manager.spawn_hooks.append(self.attach)
        manager.bus.subscribe("delete", self._template_deleted)
        for process in manager.all_processes():
            self.attach(process)

    # -- paths ----------------------------------------------------------------

    def resolve(self, path: str) -> str:
        """The absolute path of a template's (relative, validated) log file path."""
        return self.logdir.path(path)

    def paths(self, template: ProcessTemplate) -> dict[str, str]:
        """Label -> log file, for the labels a process of ``template`` really has.

        ``stdout_logfile`` records the first redirected label, ``stderr_logfile``
        the second; a stderr merged into stdout's label goes to stdout's file.
        """
        labels = template.labels
        found: dict[str, str] = {}
        if template.stdout_logfile and labels:
            found[labels[0]] = self.resolve(template.stdout_logfile)
        if template.stderr_logfile and len(labels) > 1 and labels[1] not in found:
            found[labels[1]] = self.resolve(template.stderr_logfile)
        return found

    def path_for(self, template: ProcessTemplate, label: str) -> str:
        """The file of ``label`` (or of the aliases ``stdout``/``stderr``); IoNotFound if none."""
        labels = template.labels
        if label == "stdout" or (labels and label == labels[0]):
            path = template.stdout_logfile
        elif label == "stderr" or (len(labels) > 1 and label == labels[1]):
            path = template.stderr_logfile
        else:
            path = None
        if not path:
            raise IoNotFound(f"no log file for label {label!r} of {template.name!r}")
        return self.resolve(path)

    # -- writers --------------------------------------------------------------

    def attach(self, process: Process) -> None:
        """Spawn hook: follow each logged label of a new process."""
        if self.closed:
            return
        for label, path in self.paths(process.template).items():
            stream = process.streams.get(label)
            writer = self._writer(process.name, label, path, process.template)
            if stream is not None and writer is not None:
                writer.follow(stream, process)

    def _writer(
        self, name: str, label: str, path: str, template: ProcessTemplate
    ) -> LogWriter | None:
        """The writer of ``path`` for template ``name``; None if the file is another's."""
        key = (name, label)
        old = self.routes.get(key)
        if old is not None and old != path:
            self._release(key, old)  # the template was updated to another file
        writer = self.writers.get(path)
        owner = self.logdir.owner(path)
        if owner not in (None, name) or (
            writer is not None and not writer.closing and writer.template != name
        ):
            if (name, path) not in self._refused:  # once, not at every spawn
                self._refused.add((name, path))
                whose = owner or (writer.template if writer is not None else "?")
                log.warning("%s: not writing %s, it belongs to %r", name, path, whose)
            return None
        if writer is None or writer.closing:
            log_file = LogFile(path, clock=self.clock, opener=self.logdir.opener(name))
            writer = self.writers[path] = LogWriter(log_file, self.pool, self._group, name)
        writer.file.maxbytes = template.logfile_maxbytes
        writer.file.backups = template.logfile_backups
        writer.file.daily = template.logfile_rotate_daily
        writer.owners.add(key)
        self.routes[key] = path
        return writer

    def _release(self, key: tuple[str, str], path: str) -> None:
        self.routes.pop(key, None)
        writer = self.writers.get(path)
        if writer is not None:
            writer.owners.discard(key)
            if not writer.owners:
                del self.writers[path]
                self._retired.append(writer)
                writer.greenlet.link(lambda _: self._forget(writer))
                writer.close()

    def _forget(self, writer: LogWriter) -> None:
        if writer in self._retired:
            self._retired.remove(writer)

    def _template_deleted(self, event: str, payload: dict[str, Any]) -> None:
        name = payload.get("name")
        if name in self.manager.states:
            return  # deleted and added again before this event arrived
        for key, path in list(self.routes.items()):
            if key[0] == name:
                self._release(key, path)

    # -- what the API calls ---------------------------------------------------

    def rotate(self, name: str) -> list[str]:
        """Rotate every log file of template ``name`` now; the paths that rotated."""
        template = self.manager.get_template(name)
        rotated = []
        for label, path in self.paths(template).items():
            writer = self._writer(name, label, path, template)
            try:
                if writer is not None and writer.rotate():
                    rotated.append(path)
            except OSError as exc:  # not ours (logdir.NotOurs), or the disk said no
                log.warning("%s: cannot rotate %s: %s", name, path, exc)
        return rotated

    def history(self, name: str, label: str) -> History:
        """The files of ``label`` of template ``name``, opened as one snapshot."""
        template = self.manager.get_template(name)
        path = self.path_for(template, label)
        if self.logdir.owner(path) != name:
            if self.run(os.path.lexists, path):
                raise IoNotFound(f"the {label} log file of {name!r} was not written by gafferd")
            return History(None, 0)  # nothing written yet
        opener = self.logdir.opener(name)
        writer = self.writers.get(path)
        if writer is None:
            return self.run(History, path, template.logfile_backups, opener)
        with writer.lock:  # not in the middle of a rotation
            return self.run(History, path, template.logfile_backups, opener)

    def run(self, func: Callable[..., T], *args: Any) -> T:
        """Run blocking file code on the I/O threads, leaving the hub free."""
        result: T = self.pool.apply(func, args)
        return result

    def stats(self) -> list[dict[str, Any]]:
        return [writer.stats() for writer in self.writers.values()]

    def close(self, timeout: float = 5.0) -> None:
        """Let the writers drain what exited processes left, then close every file."""
        self.closed = True
        if self.attach in self.manager.spawn_hooks:
            self.manager.spawn_hooks.remove(self.attach)
        self.manager.bus.unsubscribe("delete", self._template_deleted)
        for writer in [*self.writers.values(), *self._retired]:
            writer.close(wait_for_exit=False)
        self.writers.clear()
        self.routes.clear()
        self._retired.clear()
        if not self._group.join(timeout):
            self._group.kill(timeout=1)
        self.pool.kill()
        gevent.idle()
