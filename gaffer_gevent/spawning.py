"""The reconcile step: spawn the processes a template misses, reap those it has too many of.

Spawning is done in slices of a few milliseconds: many processes are started
by a greenlet that yields to the hub between slices, so requests, signals and
exits are served while a thousand processes start. That spawner greenlet
belongs to the manager's group, so ``Manager.stop_all`` ends it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import gevent

from .checks.runner import CheckRunner
from .process import Process
from .template_state import TemplateState

if TYPE_CHECKING:
    from .manager import Manager

#: Processes spawned at once by the call that wants them: a template of up to this many
#: is up when that call returns, and the batch is short enough not to stall the hub.
SPAWN_BATCH = 32
#: Beyond that, the spawner greenlet spawns for at most this long (at least one process)
#: before it yields to the hub, so requests, signals and exits wait no longer than this.
SPAWN_SLICE = 0.005
#: The pause between two batches. A timer, not ``sleep(0)``: gevent runs callbacks that
#: were queued while it ran callbacks in the same turn, so ``sleep(0)`` would let the
#: spawner run on without the loop ever polling sockets.
SPAWN_PAUSE = 0.001


def reconcile(manager: Manager, state: TemplateState) -> None:
    """Bring a non-stopped template to numprocesses: spawn the missing, reap the extra.

    One slice of spawns happens at once (a small template is up when this
    returns); more are left to the template's spawner greenlet, which
    reconciles again when it is done.
    """
    if state.stopped or manager.states.get(state.template.name) is not state:
        return
    if state.spawner is not None or state.rollout is not None:
        return  # it reconciles when it is done
    if not manager.gate.admits(state):
        return  # waiting for depends_on: the gate reconciles once it holds
    if state.respawn_pending:
        reap(manager, state)  # a scale-down still applies; spawns wait for the backoff
        return
    if not _spawn_slice(manager, state):
        state.spawner = manager.greenlets.spawn(_spawn_rest, manager, state)
        return
    reap(manager, state)


def _spawn_slice(manager: Manager, state: TemplateState, budget: float | None = None) -> bool:
    """Spawn one batch, or for ``budget`` seconds; True when spawning is over for now.

    It is over when no process is missing, or as soon as one spawn fails
    (EMFILE, EAGAIN, a missing program): the failed process's exit retries a
    second later, so a failing template costs one attempt a second, not a loop.
    """
    deadline = None if budget is None else time.monotonic() + budget
    for _ in range(min(state.missing, SPAWN_BATCH)):
        if spawn(manager, state).spawn_error is not None:
            return True
        if deadline is not None and time.monotonic() > deadline:
            break
    return state.missing <= 0


def _spawn_rest(manager: Manager, state: TemplateState) -> None:
    """The spawner: one slice per loop turn, so the hub serves everyone in between."""
    try:
        while True:
            gevent.sleep(SPAWN_PAUSE)
            if state.stopped or manager.states.get(state.template.name) is not state:
                return
            if _spawn_slice(manager, state, SPAWN_SLICE):
                break
    finally:
        if state.spawner is gevent.getcurrent():
            state.spawner = None
    reap(manager, state)  # scaled down meanwhile (exits meanwhile were spawned for)


def spawn(manager: Manager, state: TemplateState) -> Process:
    """Start one more process of ``state``, announce it and start its checks."""
    tpl = state.template
    process = Process(
        manager.next_pid(), tpl, on_exit=manager.process_exited,
        buffer_size=manager.buffer_size, stdin_queue_size=manager.stdin_queue_size,
    )  # fmt: skip
    process.spawned_at = manager.clock()
    process.restarts = state.inherited.popleft() if state.inherited else 0
    process.checks = CheckRunner(process, manager.publish_check, manager.check_group)
    process.spawn()
    state.queue.append(process)
    manager.running[process.pid] = process
    if process.spawn_error is None:
        manager.publish_twin(
            "spawn", tpl.name, pid=process.pid, detached=tpl.detach, os_pid=process.os_pid
        )
        for hook in manager.spawn_hooks:
            hook(process)
        process.checks.start()  # "ready" at once without a readiness check
    else:  # e.g. EMFILE, EAGAIN, ENOENT: an exit with 127 follows, respawn a second later
        manager.publish_twin("spawn_error", tpl.name, pid=process.pid, error=process.spawn_error)
    return process


def reap(manager: Manager, state: TemplateState) -> None:
    """Stop the oldest processes while the template has more than its count."""
    while state.queue and len(state.queue) + len(state.finished) > state.template.numprocesses:
        process = state.queue[0]
        manager.detach(process, state)
        process.stop()
        manager.publish_twin("reap", process.name, pid=process.pid, os_pid=process.os_pid)
