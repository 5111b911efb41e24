"""One OS child: spawn in its own session, read its pipes, feed its stdin, end it whole.

Stopping sends SIGTERM to the child's process group and SIGKILL after the
template's graceful_timeout. When the leader exits, whatever is left of its
group is killed too (a grandchild holding the pipe must not outlive it), the
readers drain what was written, the streams end, and only then does the
owner hear about the exit.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import fcntl
import logging
import os
import posix
import signal
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import gevent
from gevent.event import Event
from gevent.os import nb_write
from gevent.pool import Group

from .errors import Forbidden, IoNotFound, IoNotRedirected, StdinFull
from .greenlets import spawn_later_in
from .reader import read_pipe
from .spawn import ExitStatus, fork_exec, kill_group, open_devnull, watch_exit
from .streams import DEFAULT_BUFFER_SIZE, Stream
from .template import ProcessTemplate

if TYPE_CHECKING:
    from .checks.runner import CheckRunner

log = logging.getLogger(__name__)

#: How long readers may take to drain the pipes once the whole group is gone.
DRAIN_GRACE = 0.5
#: Exit status reported for a child that could not be started (spec 4.4 [R]).
SPAWN_FAILED = ExitStatus(127, 0)
DEFAULT_STDIN_QUEUE = 1024 * 1024
#: Output pipes are enlarged to this (Linux allows up to /proc/sys/fs/pipe-max-size).
PIPE_SIZE = 1024 * 1024
#: Most bytes of one chunk (a read asks for what the pipe holds, up to this). Half the pipe:
#: 1 MiB reads made glibc give the heap top back and fault it in again on every read (1,400
#: brk/s, 140k page faults/s at 1 GB/s, per strace and /proc/PID/stat); 512 KiB buffers are
#: reused from the heap.
READ_SIZE = 512 * 1024
#: Smallest read size, whatever the stream's buffer_size (a ring keeps its newest chunk).
MIN_READ_SIZE = 4096


class ProcessState(enum.Enum):
    """Where one pid is in its life, as ``GET /processes/<pid>`` and ``_pids?state=`` show it.

    ``RUNNING`` is a pid whose template has no readiness check (it counts as ready).
    With a check it is ``STARTING`` until the check passes (``READY``) and ``UNHEALTHY``
    when a liveness check fails. ``WAITING`` and ``BACKOFF`` name a slot that waits for
    its dependencies or for its backoff delay; ``COMPLETED`` and ``FAILED`` a pid of a
    ``restart = never|on-failure`` template that exited and stays so.
    """

    WAITING = "waiting"
    STARTING = "starting"
    RUNNING = "running"
    READY = "ready"
    UNHEALTHY = "unhealthy"
    STOPPING = "stopping"
    EXITED = "exited"
    BACKOFF = "backoff"
    COMPLETED = "completed"
    FAILED = "failed"


#: States of a pid whose child has exited (the last two: restart = never|on-failure).
_GONE = frozenset({ProcessState.EXITED, ProcessState.COMPLETED, ProcessState.FAILED})


class Process:
    """One spawned child of a template; ``pid`` is ours, ``os_pid`` the kernel's."""

    def __init__(
        self,
        pid: int,
        template: ProcessTemplate,
        *,
        on_exit: Callable[[Process], None],
        buffer_size: int = DEFAULT_BUFFER_SIZE,
        stdin_queue_size: int = DEFAULT_STDIN_QUEUE,
    ) -> None:
        self.pid = pid
        self.template = template
        self.name = template.name
        self.os_pid = 0
        # A pid whose template has a readiness check starts STARTING (see checks/runner.py).
        self.state = ProcessState.STARTING if template.readiness else ProcessState.RUNNING
        #: Its readiness/liveness checks, set by the manager before ``spawn``.
        self.checks: CheckRunner | None = None
        #: "liveness" when a failed check stopped it: the exit then counts as a crash.
        self.failed_check: str | None = None
        self.started_at = time.time()
        self.exit_status: ExitStatus | None = None
        self.spawn_error: str | None = None
        self.stop_requested = False
        #: Set by the manager: its clock at spawn (run time decides the backoff), and how
        #: many crashed processes this one replaces in a row (its slot's restart count).
        self.spawned_at = 0.0
        self.restarts = 0
        self.exited = Event()
        self._on_exit = on_exit
        self._greenlets = Group()
        #: The exit path (``_finish``, a failed spawn's ``on_exit``) and the SIGKILL timer: a
        #: group apart from the pipe readers, which ``_finish`` joins and then kills.
        self._lifecycle = Group()
        self._stdin_writer: gevent.Greenlet[Any] | None = None
        self._kill_timer: gevent.Greenlet[Any] | None = None
        self._read_fds: list[int] = []
        self._stdin_fd: int | None = None
        self._stdin_queue: deque[bytes] = deque()
        self._stdin_queued = 0
        self._stdin_limit = stdin_queue_size
        self._stdin_ready = Event()
        size = template.buffer_size or buffer_size
        self.streams: dict[str, Stream] = {
            label: Stream(label, size) for label in dict.fromkeys(template.labels)
        }

    # -- start --------------------------------------------------------------

    def spawn(self) -> None:
        """Start the child. A failure is not raised: it becomes an exit with status 127."""
        tpl = self.template
        child_fds: list[int] = []
        try:
            env = tpl.child_env()
            argv = tpl.argv(env)
            if self.checks is not None:
                self.checks.prepare(env)  # NOTIFY_SOCKET, WATCHDOG_USEC
            stdin = self._stdin_pipe(child_fds)
            stdout, stderr = self._output_pipes(child_fds)
            self.os_pid = fork_exec(
                argv, env=env, cwd=tpl.cwd, stdin=stdin, stdout=stdout, stderr=stderr,
                uid=tpl.uid, gid=tpl.gid,
            )  # fmt: skip
        except (OSError, KeyError, ValueError) as exc:
            self.spawn_error = _describe(exc)
            log.warning("cannot spawn %s: %s", tpl.name, self.spawn_error)
            if self.checks is not None:
                self.checks.stop()
            self._close_parent_fds()
            self.state = ProcessState.EXITED
            self.exit_status = SPAWN_FAILED
            self.exited.set()
            self._lifecycle.spawn(self._on_exit, self)
            return
        finally:
            for fd in child_fds:
                posix.close(fd)
        watch_exit(self.os_pid, self._exited)
        for fd, streams in self._readers():
            # A chunk (whole lines, see reader.py) is never bigger than its ring (down to
            # 4 KiB), so the ring holds at most its buffer_size: it always keeps its newest
            # chunk, whatever the size.
            size = max(MIN_READ_SIZE, min(READ_SIZE, *(s.buffer_size for s in streams)))
            self._greenlets.spawn(read_pipe, fd, streams, size)
        if self._stdin_fd is not None:
            self._stdin_writer = self._greenlets.spawn(self._write_stdin)

    def _stdin_pipe(self, child_fds: list[int]) -> int:
        if not self.template.redirect_input:
            child_fds.append(open_devnull(False))
            return child_fds[-1]
        read_end, write_end = os.pipe()
        os.set_blocking(write_end, False)
        child_fds.append(read_end)
        self._stdin_fd = write_end
        return read_end

    def _output_pipes(self, child_fds: list[int]) -> tuple[int, int]:
        labels = self.template.labels
        fds: list[int] = []
        for index in range(2):
            if index >= len(labels):
                child_fds.append(open_devnull(True))
                fds.append(child_fds[-1])
            elif index == 1 and labels[1] == labels[0]:
                fds.append(fds[0])  # same label twice: stderr merges into stdout's pipe
            else:
                read_end, write_end = os.pipe()
                os.set_blocking(read_end, False)
                _grow_pipe(read_end)
                self._read_fds.append(read_end)
                child_fds.append(write_end)
                fds.append(write_end)
        return fds[0], fds[1]

    def _readers(self) -> list[tuple[int, list[Stream]]]:
        labels = list(dict.fromkeys(self.template.labels))
        return [
            (fd, [self.streams[label]]) for fd, label in zip(self._read_fds, labels, strict=False)
        ]

    # -- signals and stop ---------------------------------------------------

    @property
    def alive(self) -> bool:
        return self.state not in _GONE

    @property
    def ready(self) -> bool:
        """Ready for work: its readiness check passed, or its template has none."""
        return self.state in (ProcessState.READY, ProcessState.RUNNING)

    @property
    def status_text(self) -> str | None:
        """The last ``STATUS=`` it sent to its ``NOTIFY_SOCKET`` (None: none)."""
        return None if self.checks is None else self.checks.status_text

    def send_signal(self, sig: int) -> None:
        """Signal the child (the leader only, as gaffer does)."""
        if self.alive and self.os_pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.os_pid, sig)

    def stop(self, graceful_timeout: float | None = None) -> None:
        """SIGTERM the whole group now, SIGKILL it after graceful_timeout."""
        self.stop_requested = True
        if not self.alive or self.state is ProcessState.STOPPING:
            return
        self.state = ProcessState.STOPPING  # RUNNING -> STOPPING
        timeout = self.template.graceful_timeout if graceful_timeout is None else graceful_timeout
        if self.os_pid:
            kill_group(self.os_pid, signal.SIGTERM)
            self._kill_timer = spawn_later_in(self._lifecycle, timeout, self.kill)

    def kill(self) -> None:
        if self.alive and self.os_pid:
            kill_group(self.os_pid, signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> bool:
        return bool(self.exited.wait(timeout))

    # -- exit ---------------------------------------------------------------

    def _exited(self, status: ExitStatus) -> None:
        # Called from the hub by the child watcher: do the work in a greenlet.
        self._lifecycle.spawn(self._finish, status)

    def _finish(self, status: ExitStatus) -> None:
        self.exit_status = status
        kill_group(self.os_pid, signal.SIGKILL)  # leftovers of the group die with the leader
        if self.checks is not None:
            self.checks.stop()
        if self._kill_timer is not None:
            self._kill_timer.kill(block=False)
        # Wait for the pipe readers only: the stdin writer never ends on its own.
        readers = [g for g in self._greenlets if g is not self._stdin_writer]
        if not gevent.joinall(readers, timeout=DRAIN_GRACE, raise_error=False) or any(
            not g.dead for g in readers
        ):
            log.info("%s[%d]: output still open after exit, closing", self.name, self.pid)
        self._greenlets.kill(block=False)
        self._close_parent_fds()
        for stream in self.streams.values():
            stream.close()
        self.state = ProcessState.EXITED  # STOPPING/RUNNING -> EXITED
        self.exited.set()
        self._on_exit(self)

    def _close_parent_fds(self) -> None:
        for fd in self._read_fds:
            _close_quietly(fd)
        self._read_fds = []
        if self._stdin_fd is not None:
            _close_quietly(self._stdin_fd)
            self._stdin_fd = None
        self._stdin_queue.clear()
        self._stdin_ready.set()

    # -- stdin --------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Queue bytes for the child's stdin; never waits for the child to read."""
        if not self.template.redirect_input:
            raise Forbidden("process was not created with redirect_input")
        if self._stdin_fd is None:
            raise StdinFull("stdin is closed")
        if self._stdin_queued + len(data) > self._stdin_limit:
            raise StdinFull(f"stdin queue full ({self._stdin_queued} bytes waiting)")
        if data:
            self._stdin_queue.append(data)
            self._stdin_queued += len(data)
            self._stdin_ready.set()

    def _write_stdin(self) -> None:
        while self._stdin_fd is not None:
            if not self._stdin_queue:
                self._stdin_ready.clear()
                self._stdin_ready.wait()
                continue
            data = self._stdin_queue[0]
            try:
                written = nb_write(self._stdin_fd, data)
            except OSError as exc:
                if exc.errno not in (errno.EPIPE, errno.EBADF):
                    log.warning("%s[%d]: stdin write failed: %s", self.name, self.pid, exc)
                self._stdin_queue.clear()
                self._stdin_queued = 0
                return
            self._stdin_queued -= written
            if written < len(data):
                self._stdin_queue[0] = data[written:]
            else:
                self._stdin_queue.popleft()

    # -- streams ------------------------------------------------------------

    def stream(self, label: str) -> Stream:
        """The stream for ``label`` (spec 4.11 checks, in order)."""
        if not self.template.redirect_output:
            raise IoNotRedirected()
        stream = self.streams.get(label)
        if stream is None:
            raise IoNotFound()
        return stream


def _grow_pipe(fd: int) -> None:
    """A bigger pipe lets a fast writer hand over more per read: fewer, larger chunks."""
    with contextlib.suppress(OSError, AttributeError):
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)


def _close_quietly(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"cannot substitute ${exc.args[0]} in args"
    return str(exc)
