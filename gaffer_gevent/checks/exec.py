"""An exec check: run a command, pass on exit 0 (Kubernetes' exec probe).

The command starts like a process (``spawn.fork_exec``: vfork, its own session,
so its own process group) with the child's environment, directory and user, and
its output thrown away. Its exit comes through gevent's child watcher, so the
check waits cooperatively. Whatever ends the wait (the exit, the timeout, or the
pid's own exit killing the runner greenlet), the whole group is SIGKILLed on the
way out, so neither the command nor anything it started outlives the check; the
watcher reaps the leader.
"""

from __future__ import annotations

import posix
import signal
from collections.abc import Callable, Mapping, Sequence

import gevent
from gevent.event import AsyncResult

from ..spawn import ExitStatus, fork_exec, kill_group, open_devnull, watch_exit


def probe_exec(
    argv: Sequence[str],
    timeout: float,
    *,
    env: Mapping[str, str],
    cwd: str | None = None,
    uid: int | None = None,
    gid: int | None = None,
    on_group: Callable[[int, bool], None] | None = None,
) -> tuple[bool, str]:
    """(passed, what was seen) for one run of ``argv``, killed with its group at ``timeout``.

    ``on_group(os_pid, running)`` hears of the command's process group when it starts and
    when it is gone: gafferd records it (runtime.py), so a gafferd killed mid-check has
    its next start stop the command, as it does the processes.
    """
    stdin, output = open_devnull(False), open_devnull(True)
    try:
        os_pid = fork_exec(
            argv, env=env, cwd=cwd, stdin=stdin, stdout=output, stderr=output, uid=uid, gid=gid
        )
    except OSError as exc:
        return False, f"cannot run {argv[0]!r}: {exc.strerror or exc}"
    finally:
        posix.close(stdin)
        posix.close(output)
    exited: AsyncResult[ExitStatus] = AsyncResult()
    watch_exit(os_pid, exited.set)
    if on_group is not None:
        on_group(os_pid, True)
    try:
        status = exited.get(timeout=timeout)
    except gevent.Timeout:
        return False, f"timed out after {timeout:g} s"
    finally:
        kill_group(os_pid, signal.SIGKILL)  # the command, or what it left behind
        if on_group is not None:
            on_group(os_pid, False)
    if status.term_signal:
        return False, f"killed by signal {status.term_signal}"
    return status.exit_status == 0, f"exit status {status.exit_status}"
