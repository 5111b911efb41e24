"""What the manager does when one of its processes exits.

An exit gaffer asked for (a stop, a reap) only brings the template back to its
count. An exit it did not ask for is a crash: the template's ``Backoff`` says
when to respawn (at once after a healthy run, exponentially later in a crash
loop) or to give up, and its flapping policy, when set, applies on top. A
given-up template is stopped and ``failed`` until a start, restart or update.
A ``restart = never|on-failure`` template does not refill the slot: the pid
stays listed as COMPLETED or FAILED.

The respawn and flapping-retry timers are greenlets of the manager's group, so
``Manager.stop_all`` ends those still pending.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .flapping import Verdict
from .greenlets import spawn_later_in
from .process import SPAWN_FAILED, Process, ProcessState
from .template_state import TemplateState

if TYPE_CHECKING:
    from .manager import Manager

log = logging.getLogger(__name__)

#: Respawns of a template whose program cannot even be started are spaced at least this far
#: apart (more once its backoff grows).
SPAWN_FAILURE_DELAY = 1.0


def process_exited(manager: Manager, process: Process) -> None:
    """The process's ``on_exit``: untrack it, say so, then refill, finish or back off."""
    state = manager.states.get(process.name)
    owned = state is not None and process in state.queue
    manager.running.pop(process.pid, None)
    manager.stopping.pop(process.pid, None)
    if owned and state is not None:
        state.queue.remove(process)
        state.outgoing.discard(process)
    status = process.exit_status or SPAWN_FAILED
    manager.publish_twin(
        "exit", process.name, pid=process.pid, exit_status=status.exit_status,
        term_signal=status.term_signal, os_pid=process.os_pid,
    )  # fmt: skip
    if state is None or state.stopped or not owned:
        if state is not None and not state.stopped:
            manager.reconcile(state)
        return
    if process.stop_requested and process.failed_check is None:
        manager.reconcile(state)
    elif not state.template.restart.respawns(status.exit_status, status.term_signal):
        _finished(manager, state, process, status.exit_status == 0 and not status.term_signal)
    else:
        _crashed(manager, state, process)


def _finished(manager: Manager, state: TemplateState, process: Process, success: bool) -> None:
    """restart = never|on-failure: the pid stays listed, COMPLETED or FAILED, not refilled."""
    process.state = ProcessState.COMPLETED if success else ProcessState.FAILED
    state.finished.append(process)
    status = process.exit_status or SPAWN_FAILED
    manager.publish_twin(
        process.state.value, process.name, pid=process.pid, os_pid=process.os_pid,
        exit_status=status.exit_status, term_signal=status.term_signal,
    )  # fmt: skip


def _crashed(manager: Manager, state: TemplateState, process: Process) -> None:
    """An exit gaffer did not ask for: respawn after the backoff, flap, or give up."""
    delay = state.backoff.on_exit(process.spawned_at)
    verdict = Verdict.RESPAWN if state.flapping is None else state.flapping.on_exit()
    if verdict is Verdict.GIVE_UP:
        _flap(manager, state, retry=False)
        _fail(manager, state, "flapping gave up")
        return
    if delay is None:
        _fail(manager, state, f"{state.backoff.failures} quick failures in a row")
        return
    state.restarts += 1
    state.inherited.append(process.restarts + 1)
    while len(state.inherited) > state.template.numprocesses:
        state.inherited.popleft()
    if verdict is Verdict.RETRY:
        _flap(manager, state, retry=True)
    elif process.spawn_error is not None:  # no busy loop on a program that cannot start
        _respawn_later(manager, state, max(delay, SPAWN_FAILURE_DELAY))
    elif delay > 0:
        _respawn_later(manager, state, delay)
    else:
        manager.reconcile(state)


def _respawn_later(manager: Manager, state: TemplateState, delay: float) -> None:
    """RUNNING -> BACKOFF: respawn what is missing once ``delay`` has passed."""
    if state.respawn_pending:
        return  # this exit belongs to the round already waiting
    state.retry_at = manager.clock() + delay
    state.respawn_timer = spawn_later_in(manager.greenlets, delay, _respawn_due, manager, state)
    manager.publish_twin(
        "backoff", state.template.name, delay=round(delay, 3),
        failures=state.backoff.failures, restarts=state.restarts,
    )  # fmt: skip


def _respawn_due(manager: Manager, state: TemplateState) -> None:
    # BACKOFF -> RUNNING
    state.respawn_timer = None
    state.retry_at = None
    manager.reconcile(state)


def _fail(manager: Manager, state: TemplateState, reason: str) -> None:
    """-> FAILED: stop the template for good and say so (a start or restart clears it)."""
    name = state.template.name
    state.failed = True
    manager.stop_state(state)
    log.warning("%s failed: %s; gave up restarting it", name, reason)
    manager.publish_twin(
        "failed", name, reason=reason, failures=state.backoff.failures,
        restarts=state.restarts,
    )  # fmt: skip


def _flap(manager: Manager, state: TemplateState, *, retry: bool) -> None:
    name = state.template.name
    manager.bus.publish("flap", name=name)
    manager.stop_state(state)
    if retry and state.template.flapping is not None:
        retry_in = state.template.flapping.retry_in
        state.retry_at = manager.clock() + retry_in
        state.retry_timer = spawn_later_in(
            manager.greenlets, retry_in, _retry_after_flap, manager, state
        )


def _retry_after_flap(manager: Manager, state: TemplateState) -> None:
    # Must not reset the flapping history, or max_retry could never be reached.
    state.retry_timer = None
    state.retry_at = None
    if manager.states.get(state.template.name) is state:
        state.stopped = False
        manager.restart_state(state)
