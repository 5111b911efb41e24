"""Start an OS child cheaply and watch its exit through gevent's child watcher.

``gevent.subprocess.Popen`` forks the whole interpreter in Python and waits for
exec cooperatively, a cost that grows with the parent's memory. CPython's own C helper
(``_posixsubprocess.fork_exec``) uses vfork, which copies nothing, so we call
it directly with the same argument list the stdlib uses, and learn about the
exit from a libev child watcher (gevent reaps; we never call waitpid and never
install a SIGCHLD handler). No greenlet switch happens between the fork and
the watcher's start, so no exit status can be reaped unseen.
"""

from __future__ import annotations

import _posixsubprocess
import os
import posix
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gevent.hub import get_hub

_DEVNULL = os.devnull


@dataclass(frozen=True)
class ExitStatus:
    """How a child ended, in the spec's terms (6.1)."""

    exit_status: int
    term_signal: int

    @classmethod
    def from_wait_status(cls, status: int) -> ExitStatus:
        if os.WIFSIGNALED(status):
            return cls(0, os.WTERMSIG(status))
        if os.WIFEXITED(status):
            return cls(os.WEXITSTATUS(status), 0)
        return cls(0, 0)


def _exec_candidates(exe: str, env: Mapping[str, str]) -> tuple[bytes, ...]:
    path = os.fsencode(exe)
    if os.path.dirname(path):
        return (path,)
    return tuple(os.path.join(os.fsencode(d), path) for d in os.get_exec_path(dict(env)))


def _raise_child_error(data: bytes, exe: str) -> None:
    """Decode the stdlib's ``Name:hexerrno:text`` exec-failure record."""
    name, _, rest = data.partition(b":")
    hex_errno, _, text = rest.partition(b":")
    errno_num = int(hex_errno, 16) if hex_errno else 0
    if name == b"OSError" and errno_num:
        noexec = text.decode(errors="replace") == "noexec"
        message = os.strerror(errno_num)
        raise OSError(errno_num, message, None if noexec else exe)
    raise OSError(0, data.decode(errors="replace"))


def fork_exec(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: str | None = None,
    stdin: int,
    stdout: int,
    stderr: int,
    uid: int | None = None,
    gid: int | None = None,
) -> int:
    """Start ``argv`` in a new session with the given fds as 0, 1 and 2; return its pid.

    Raises ``OSError`` (errno set) when the program cannot be executed.
    """
    exe = argv[0]
    # Listen for SIGCHLD before the first fork: a child that exits at once (`false`) would
    # otherwise signal before anyone listens, and its exit would never be seen.
    get_hub().loop.install_sigchld()
    env_list = [os.fsencode(k) + b"=" + os.fsencode(v) for k, v in env.items() if "=" not in k]
    errpipe_read, errpipe_write = os.pipe()
    try:
        args: list[Any] = [
            [os.fsencode(a) for a in argv],
            _exec_candidates(exe, env),
            True,  # close_fds
            (errpipe_write,),
            cwd,
            env_list,
            stdin, -1, -1, stdout, -1, stderr,
            errpipe_read, errpipe_write,
            True,  # restore_signals
            True,  # start_new_session: the child leads its own process group
            -1,  # process_group (already a leader via setsid)
            gid,
            None,  # extra_groups
            uid,
            -1,  # umask
            None,  # preexec_fn
        ]  # fmt: skip
        if sys.version_info < (3, 14):
            args.append(True)  # allow_vfork
        try:
            pid: int = _posixsubprocess.fork_exec(*args)
        finally:
            # posix.close, not os.close: gevent >= 25.8 patches os.close to defer
            # the close to the next loop turn, and then the read below never sees EOF.
            posix.close(errpipe_write)
        # With vfork the child has exec'd (or failed) before we get here, so
        # this read returns at once; it never waits on a running program.
        error = b""
        while part := os.read(errpipe_read, 50000):
            error += part
    finally:
        posix.close(errpipe_read)
    if error:
        _raise_child_error(error, exe)
    return pid


def watch_exit(pid: int, callback: Callable[[ExitStatus], None]) -> Any:
    """Call ``callback(ExitStatus)`` from the hub once ``pid`` has exited and been reaped."""
    loop = get_hub().loop
    loop.install_sigchld()
    watcher = loop.child(pid, False)

    def on_exit() -> None:
        watcher.stop()
        callback(ExitStatus.from_wait_status(watcher.rstatus))

    watcher.start(on_exit)
    return watcher


def open_devnull(write: bool) -> int:
    return os.open(_DEVNULL, os.O_WRONLY if write else os.O_RDONLY)


def kill_group(pgid: int, sig: int) -> bool:
    """Signal a whole process group; False when nothing is left in it."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True
