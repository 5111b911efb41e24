"""The manager: templates, groups and their processes, brought to their desired count.

Actions only change the desired state (the ``stopped`` flag, ``numprocesses``)
and then call ``reconcile``, the one step that spawns missing processes and
reaps extra ones. Every change is published on the event bus in the order of
spec 6.2. Imports no Flask: the HTTP side lives in ``api``.

Spawning is done in slices of a few milliseconds: many processes are started
by a greenlet that yields to the hub between slices, so requests, signals and
exits are served while a thousand processes start. ``ProcessLimits`` bound how
many processes a template, and all of them, may ask for.

An exit gaffer did not ask for is a crash: the template's ``Backoff`` says
when to respawn (at once after a healthy run, exponentially later in a crash
loop) or to give up, and its flapping policy, when set, applies on top. A
given-up template is stopped and ``failed`` until a start, restart or update.
"""

from __future__ import annotations

import enum
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import gevent

from .checks.runner import CheckRunner
from .dependency_gate import DependencyGate, lifecycle_status
from .errors import Conflict, NotFound
from .events import EventBus
from .flapping import Backoff, BackoffConfig, FlappingPolicy, Verdict
from .limits import ProcessLimits, check_name
from .process import DEFAULT_STDIN_QUEUE, SPAWN_FAILED, Process, ProcessState
from .signals import parse_signal
from .streams import DEFAULT_BUFFER_SIZE
from .template import ProcessTemplate

log = logging.getLogger(__name__)

#: Respawns of a template whose program cannot even be started are spaced at least this far
#: apart (more once its backoff grows).
SPAWN_FAILURE_DELAY = 1.0
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


class RunState(enum.Enum):
    """What ``GET /status/<name>`` says a template is doing (derived, see ``run_state``)."""

    RUNNING = "running"  # processes run and no respawn is waiting
    BACKOFF = "backoff"  # a respawn (or flapping retry) waits for its delay
    FAILED = "failed"  # given up after a crash loop: stopped until start/restart/update
    STOPPED = "stopped"  # nothing runs and nothing is due
    WAITING = "waiting"  # its depends_on conditions do not hold yet: nothing spawned
    COMPLETED = "completed"  # restart = never|on-failure: every slot exited 0, none refilled


@dataclass(eq=False)
class TemplateState:
    """A template plus what the manager tracks for it."""

    template: ProcessTemplate
    stopped: bool = False
    queue: deque[Process] = field(default_factory=deque)  # running, oldest first
    flapping: FlappingPolicy | None = None
    retry_timer: gevent.Greenlet[Any] | None = None
    respawn_timer: gevent.Greenlet[Any] | None = None
    #: Spawns the rest of a large number of missing processes, slice by slice.
    spawner: gevent.Greenlet[Any] | None = None
    #: Processes a restart replaces: reaped once as many new ones run.
    outgoing: set[Process] = field(default_factory=set)
    backoff: Backoff = field(default_factory=Backoff)
    #: Set when the backoff or flapping gave up (FAILED); cleared by start, restart, update.
    failed: bool = False
    #: Respawns after exits gaffer did not ask for, since the template was created or updated.
    restarts: int = 0
    #: Restart counts that the next spawns inherit from the crashed processes they replace.
    inherited: deque[int] = field(default_factory=deque)
    #: When the pending respawn or flapping retry is due (the manager's clock).
    retry_at: float | None = None
    #: Pids of a ``restart = never|on-failure`` template that exited for good (COMPLETED or
    #: FAILED): listed, and their slots not refilled until a start, restart or update.
    finished: list[Process] = field(default_factory=list)
    #: The depends_on conditions its first spawn waits for (None: not waiting).
    waiting_for: dict[str, str] | None = None
    #: A rolling restart in progress (rolling.py); reconcile leaves the template to it.
    rollout: gevent.Greenlet[Any] | None = None

    def __post_init__(self) -> None:
        self.reset_flapping()

    def reset_policies(self) -> None:
        """Forget past crashes: flapping history, backoff count and the failed state."""
        self.reset_flapping()
        self.backoff.reset()
        self.failed = False
        self.inherited.clear()
        self.finished.clear()

    def reset_flapping(self) -> None:
        cfg = self.template.flapping
        self.flapping = None if cfg is None else FlappingPolicy(cfg)

    def cancel_timers(self) -> None:
        for timer in (self.retry_timer, self.respawn_timer, self.spawner, self.rollout):
            if timer is not None and timer is not gevent.getcurrent():
                timer.kill(block=False)
        self.retry_timer = self.respawn_timer = self.spawner = self.rollout = None
        self.retry_at = None

    @property
    def respawn_pending(self) -> bool:
        return self.respawn_timer is not None and not self.respawn_timer.dead

    @property
    def missing(self) -> int:
        """How many processes to spawn: the new ones count, those a restart replaces do not."""
        running = len(self.queue) - len(self.outgoing)
        return self.template.numprocesses - running - len(self.finished)


class Manager:
    """Owns every template and process; one per daemon, running in the gevent hub."""

    def __init__(
        self,
        bus: EventBus | None = None,
        *,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
        stdin_queue_size: int = DEFAULT_STDIN_QUEUE,
        limits: ProcessLimits | None = None,
        backoff: BackoffConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bus = bus or EventBus()
        self.buffer_size = buffer_size
        self.limits = limits or ProcessLimits()
        self.stdin_queue_size = stdin_queue_size
        self.backoff = backoff or BackoffConfig()
        #: Times runs and backoff delays (injectable, like the policies' clocks).
        self.clock = clock
        self.states: dict[str, TemplateState] = {}
        self.groups: dict[str, list[str]] = {}
        self.running: dict[int, Process] = {}  # spawn order
        self.stopping: dict[int, Process] = {}  # asked to stop, not exited yet
        #: Called with each process right after it spawned (log files hook here).
        self.spawn_hooks: list[Callable[[Process], None]] = []
        self._last_pid = 0
        self.started_at = time.time()
        #: Holds first spawns until depends_on holds; stops in reverse dependency order.
        self.gate = DependencyGate(self)

    # -- lookups ------------------------------------------------------------

    def state(self, name: str) -> TemplateState:
        """The template's state; a name that could never be created is a BadValue."""
        try:
            return self.states[name]
        except KeyError:
            check_name(name)
            raise NotFound(f"no template named {name!r}") from None

    def get_template(self, name: str) -> ProcessTemplate:
        return self.state(name).template

    def template_names(self) -> list[str]:
        return list(self.states)

    def get_process(self, pid: int) -> Process:
        try:
            return self.running[pid]
        except KeyError:
            raise NotFound(f"no running process with pid {pid}") from None

    def find_process(self, pid: int) -> Process | None:
        """A running or still-stopping process (streams stay readable while it stops)."""
        return self.running.get(pid) or self.stopping.get(pid)

    def pids(self, name: str) -> list[int]:
        """Running pids, then those that completed or failed for good (restart != always)."""
        state = self.state(name)
        return [p.pid for p in state.queue] + [p.pid for p in state.finished]

    def status(self, name: str) -> dict[str, Any]:
        """gaffer 0.4's three keys, then ours: the run state, restarts, quick failures in a
        row and the seconds until a pending respawn."""
        state = self.state(name)
        running = len(state.queue)
        youngest = max((p.spawned_at for p in state.queue), default=None)
        retry_in = None
        if state.retry_at is not None:
            retry_in = round(max(0.0, state.retry_at - self.clock()), 3)
        return {
            "active": running > 0,
            "running": running,
            "max_processes": state.template.numprocesses,
            "state": self.run_state(state).value,
            "restarts": state.restarts,
            "failures": state.backoff.failures_now(youngest),
            "retry_in": retry_in,
            "ready": sum(process.ready for process in state.queue),
            **lifecycle_status(state),
        }

    @staticmethod
    def run_state(state: TemplateState) -> RunState:
        if state.failed:
            return RunState.FAILED
        if state.respawn_pending or (state.retry_timer is not None and not state.retry_timer.dead):
            return RunState.BACKOFF
        if state.queue:
            return RunState.RUNNING
        if state.waiting_for and not state.stopped:
            return RunState.WAITING
        if state.finished:
            done = all(p.state is ProcessState.COMPLETED for p in state.finished)
            return RunState.COMPLETED if done else RunState.FAILED
        return RunState.STOPPED

    def group(self, group: str) -> list[str]:
        try:
            return list(self.groups[group])
        except KeyError:
            raise NotFound(f"no group named {group!r}") from None

    # -- templates ----------------------------------------------------------

    def add_template(self, template: ProcessTemplate, *, start: bool = True) -> None:
        """Register a template (409 if the name exists) and start it unless told not to."""
        if template.name in self.states:
            raise Conflict(f"template {template.name!r} exists")
        self._check_limits(template, template.numprocesses)
        self.gate.check(template)
        state = TemplateState(template, backoff=Backoff(self._backoff_of(template), self.clock))
        self.states[template.name] = state
        if template.group:
            self.groups.setdefault(template.group, []).append(template.name)
        self.bus.publish("create", name=template.name)
        if start:
            self.publish_twin("start", template.name)
            self.reconcile(state)

    def update_template(self, template: ProcessTemplate, *, start: bool = True) -> None:
        """PUT semantics (spec 4.5 [R]): stop, replace, then start afresh."""
        state = self.state(template.name)
        self._check_limits(template, template.numprocesses)
        self.gate.check(template)
        self._stop(state)
        state.template = template
        state.backoff.config = self._backoff_of(template)
        state.reset_policies()
        state.restarts = 0
        self.bus.publish("update", name=template.name)
        if start:
            state.stopped = False
            self.publish_twin("start", template.name)
            self.reconcile(state)

    def remove_template(self, name: str) -> None:
        state = self.state(name)
        self._stop(state)
        del self.states[name]
        self.gate.forget(name)
        group = state.template.group
        if group and name in self.groups.get(group, []):
            self.groups[group].remove(name)
        self.bus.publish("delete", name=name)

    def set_backoff(self, config: BackoffConfig) -> None:
        """New backoff settings for every template (a reload); the counts so far are kept."""
        self.backoff = config
        for state in self.states.values():
            state.backoff.config = self._backoff_of(state.template)

    def _backoff_of(self, template: ProcessTemplate) -> BackoffConfig:
        """gafferd's backoff with the template's restart_delay, max_restart_delay and jitter."""
        return self.backoff.with_overrides(
            template.restart_delay, template.max_restart_delay, template.restart_jitter
        )

    # -- template actions ---------------------------------------------------

    def start_template(self, name: str) -> None:
        state = self.state(name)
        state.stopped = False
        state.cancel_timers()
        state.reset_policies()
        self.publish_twin("start", name)
        self.reconcile(state)

    def stop_template(self, name: str) -> None:
        self._stop(self.state(name))

    def restart_template(self, name: str) -> None:
        """Spawn a fresh set, then reap the old ones (spec 8.6 [R])."""
        state = self.state(name)
        state.stopped = False
        state.cancel_timers()
        state.reset_policies()
        self._restart(state)

    def scale(self, name: str, delta: int) -> int:
        """numprocesses += delta (clamped at 0); returns the new value."""
        state = self.state(name)
        tpl = state.template
        self._check_limits(tpl, max(0, tpl.numprocesses + delta))
        tpl.numprocesses = max(0, tpl.numprocesses + delta)
        tpl.settings["numprocesses"] = tpl.numprocesses
        self.bus.publish("update", name=name)
        self.reconcile(state)
        return tpl.numprocesses

    def signal_template(self, name: str, sig: int | str) -> None:
        signum = parse_signal(sig)
        for process in list(self.state(name).queue):
            process.send_signal(signum)

    def _check_limits(self, template: ProcessTemplate, numprocesses: int) -> None:
        """BadValue if ``template`` with ``numprocesses`` would break the manager's limits."""
        others = sum(
            state.template.numprocesses
            for name, state in self.states.items()
            if name != template.name
        )
        self.limits.check(numprocesses, template.buffer_size, others)

    # -- single processes ---------------------------------------------------

    def stop_process(self, pid: int) -> None:
        """Stop one process; the template is not stopped, so it is replaced (spec 8.4)."""
        process = self.get_process(pid)
        state = self.states.get(process.name)
        self._detach(process, state)
        process.stop()
        self.publish_twin("stop_pid", process.name, pid=pid, os_pid=process.os_pid)

    def signal_process(self, pid: int, sig: int | str) -> None:
        signum = parse_signal(sig)
        self.get_process(pid).send_signal(signum)

    # -- groups -------------------------------------------------------------

    def group_action(self, group: str, action: str) -> None:
        if action == "stop":  # dependents first, each dependency once they are gone
            self.gate.stop_group_later(self.group(group))
            return
        do = {
            "start": self.start_template,
            "stop": self.stop_template,
            "restart": self.restart_template,
        }[action]
        for name in self.group(group):
            do(name)

    def remove_group(self, group: str) -> None:
        for name in self.group(group):
            self.remove_template(name)
        del self.groups[group]

    # -- the reconcile step -------------------------------------------------

    def reconcile(self, state: TemplateState) -> None:
        """Bring a non-stopped template to numprocesses: spawn the missing, reap the extra.

        One slice of spawns happens at once (a small template is up when this
        returns); more are left to the template's spawner greenlet, which
        reconciles again when it is done.
        """
        if state.stopped or self.states.get(state.template.name) is not state:
            return
        if state.spawner is not None or state.rollout is not None:
            return  # it reconciles when it is done
        if not self.gate.admits(state):
            return  # waiting for depends_on: the gate reconciles once it holds
        if state.respawn_pending:
            self._reap(state)  # a scale-down still applies; spawns wait for the backoff
            return
        if not self._spawn_slice(state):
            state.spawner = gevent.spawn(self._spawn_rest, state)
            return
        self._reap(state)

    def _spawn_slice(self, state: TemplateState, budget: float | None = None) -> bool:
        """Spawn one batch, or for ``budget`` seconds; True when spawning is over for now.

        It is over when no process is missing, or as soon as one spawn fails
        (EMFILE, EAGAIN, a missing program): the failed process's exit retries a
        second later, so a failing template costs one attempt a second, not a loop.
        """
        deadline = None if budget is None else time.monotonic() + budget
        for _ in range(min(state.missing, SPAWN_BATCH)):
            if self._spawn(state).spawn_error is not None:
                return True
            if deadline is not None and time.monotonic() > deadline:
                break
        return state.missing <= 0

    def _spawn_rest(self, state: TemplateState) -> None:
        """The spawner: one slice per loop turn, so the hub serves everyone in between."""
        try:
            while True:
                gevent.sleep(SPAWN_PAUSE)
                if state.stopped or self.states.get(state.template.name) is not state:
                    return
                if self._spawn_slice(state, SPAWN_SLICE):
                    break
        finally:
            if state.spawner is gevent.getcurrent():
                state.spawner = None
        self._reap(state)  # scaled down meanwhile (exits meanwhile were spawned for)

    def _spawn(self, state: TemplateState) -> Process:
        self._last_pid += 1
        tpl = state.template
        process = Process(
            self._last_pid, tpl, on_exit=self._process_exited,
            buffer_size=self.buffer_size, stdin_queue_size=self.stdin_queue_size,
        )  # fmt: skip
        process.spawned_at = self.clock()
        process.restarts = state.inherited.popleft() if state.inherited else 0
        process.checks = CheckRunner(process, self._publish_check)
        process.spawn()
        state.queue.append(process)
        self.running[process.pid] = process
        if process.spawn_error is None:
            self.publish_twin(
                "spawn", tpl.name, pid=process.pid, detached=tpl.detach, os_pid=process.os_pid
            )
            for hook in self.spawn_hooks:
                hook(process)
            process.checks.start()  # "ready" at once without a readiness check
        else:  # e.g. EMFILE, EAGAIN, ENOENT: an exit with 127 follows, respawn a second later
            self.publish_twin("spawn_error", tpl.name, pid=process.pid, error=process.spawn_error)
        return process

    def spawn_one(self, state: TemplateState) -> Process:
        """One more process of ``state`` beyond its count (a rolling restart's replacement)."""
        return self._spawn(state)

    def retire(self, state: TemplateState, process: Process, event: str) -> None:
        """Stop one process of ``state`` without replacing it, announced as ``event``."""
        if process in state.queue or process.alive:
            self._detach(process, state)
            process.stop()
            self.publish_twin(event, process.name, pid=process.pid, os_pid=process.os_pid)

    def _reap(self, state: TemplateState) -> None:
        while state.queue and len(state.queue) + len(state.finished) > state.template.numprocesses:
            process = state.queue[0]
            self._detach(process, state)
            process.stop()
            self.publish_twin("reap", process.name, pid=process.pid, os_pid=process.os_pid)

    def _restart(self, state: TemplateState) -> None:
        """A fresh set of numprocesses; the current ones are reaped once it runs."""
        state.outgoing = set(state.queue)
        self.reconcile(state)

    def stop_state(self, state: TemplateState) -> None:
        """Graceful stop of one template (the dependency gate stops them in order)."""
        self._stop(state)

    def _stop(self, state: TemplateState) -> None:
        """Graceful stop of a template by name (spec 8.3); a no-op when already stopped."""
        state.cancel_timers()
        if state.stopped:
            return
        state.stopped = True
        name = state.template.name
        self.publish_twin("stop", name)
        for process in list(state.queue):
            self.publish_twin("stop_pid", name, pid=process.pid, os_pid=process.os_pid)
            self._detach(process, state)
            process.stop()

    def _detach(self, process: Process, state: TemplateState | None) -> None:
        """Take a process out of the running set; it stays tracked until it exits."""
        self.running.pop(process.pid, None)
        if state is not None and process in state.queue:
            state.queue.remove(process)
            state.outgoing.discard(process)
        if process.alive:
            self.stopping[process.pid] = process

    # -- exits --------------------------------------------------------------

    def _process_exited(self, process: Process) -> None:
        state = self.states.get(process.name)
        owned = state is not None and process in state.queue
        self.running.pop(process.pid, None)
        self.stopping.pop(process.pid, None)
        if owned and state is not None:
            state.queue.remove(process)
            state.outgoing.discard(process)
        status = process.exit_status or SPAWN_FAILED
        self.publish_twin(
            "exit", process.name, pid=process.pid, exit_status=status.exit_status,
            term_signal=status.term_signal, os_pid=process.os_pid,
        )  # fmt: skip
        if state is None or state.stopped or not owned:
            if state is not None and not state.stopped:
                self.reconcile(state)
            return
        if process.stop_requested and process.failed_check is None:
            self.reconcile(state)
        elif not state.template.restart.respawns(status.exit_status, status.term_signal):
            self._finished(state, process, status.exit_status == 0 and not status.term_signal)
        else:
            self._crashed(state, process)

    def _finished(self, state: TemplateState, process: Process, success: bool) -> None:
        """restart = never|on-failure: the pid stays listed, COMPLETED or FAILED, not refilled."""
        process.state = ProcessState.COMPLETED if success else ProcessState.FAILED
        state.finished.append(process)
        status = process.exit_status or SPAWN_FAILED
        self.publish_twin(
            process.state.value, process.name, pid=process.pid, os_pid=process.os_pid,
            exit_status=status.exit_status, term_signal=status.term_signal,
        )  # fmt: skip

    def _crashed(self, state: TemplateState, process: Process) -> None:
        """An exit gaffer did not ask for: respawn after the backoff, flap, or give up."""
        delay = state.backoff.on_exit(process.spawned_at)
        verdict = Verdict.RESPAWN if state.flapping is None else state.flapping.on_exit()
        if verdict is Verdict.GIVE_UP:
            self._flap(state, retry=False)
            self._fail(state, "flapping gave up")
            return
        if delay is None:
            self._fail(state, f"{state.backoff.failures} quick failures in a row")
            return
        state.restarts += 1
        state.inherited.append(process.restarts + 1)
        while len(state.inherited) > state.template.numprocesses:
            state.inherited.popleft()
        if verdict is Verdict.RETRY:
            self._flap(state, retry=True)
        elif process.spawn_error is not None:  # no busy loop on a program that cannot start
            self._respawn_later(state, max(delay, SPAWN_FAILURE_DELAY))
        elif delay > 0:
            self._respawn_later(state, delay)
        else:
            self.reconcile(state)

    def _respawn_later(self, state: TemplateState, delay: float) -> None:
        """RUNNING -> BACKOFF: respawn what is missing once ``delay`` has passed."""
        if state.respawn_pending:
            return  # this exit belongs to the round already waiting
        state.retry_at = self.clock() + delay
        state.respawn_timer = gevent.spawn_later(delay, self._respawn_due, state)
        self.publish_twin(
            "backoff", state.template.name, delay=round(delay, 3),
            failures=state.backoff.failures, restarts=state.restarts,
        )  # fmt: skip

    def _respawn_due(self, state: TemplateState) -> None:
        # BACKOFF -> RUNNING
        state.respawn_timer = None
        state.retry_at = None
        self.reconcile(state)

    def _fail(self, state: TemplateState, reason: str) -> None:
        """-> FAILED: stop the template for good and say so (a start or restart clears it)."""
        name = state.template.name
        state.failed = True
        self._stop(state)
        log.warning("%s failed: %s; gave up restarting it", name, reason)
        self.publish_twin(
            "failed", name, reason=reason, failures=state.backoff.failures,
            restarts=state.restarts,
        )  # fmt: skip

    def _flap(self, state: TemplateState, *, retry: bool) -> None:
        name = state.template.name
        self.bus.publish("flap", name=name)
        self._stop(state)
        if retry and state.template.flapping is not None:
            retry_in = state.template.flapping.retry_in
            state.retry_at = self.clock() + retry_in
            state.retry_timer = gevent.spawn_later(retry_in, self._retry_after_flap, state)

    def _retry_after_flap(self, state: TemplateState) -> None:
        # Must not reset the flapping history, or max_retry could never be reached.
        state.retry_timer = None
        state.retry_at = None
        if self.states.get(state.template.name) is state:
            state.stopped = False
            self._restart(state)

    # -- shutdown -----------------------------------------------------------

    def stop_all(self, timeout: float | None = None) -> bool:
        """Stop every template gracefully (dependents first) and wait for every child to go."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self.gate.stop_in_order(list(self.states), deadline)
        for process in list(self.running.values()):
            self.running.pop(process.pid, None)
            process.stop()
            self.stopping[process.pid] = process
        for process in list(self.stopping.values()):
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not process.wait(remaining):
                process.kill()
                process.wait(1.0)
        self.bus.flush()
        return not self.stopping

    def all_processes(self) -> Iterable[Process]:
        return list(self.running.values()) + list(self.stopping.values())

    # -- events -------------------------------------------------------------

    def publish_twin(self, event: str, name: str, **fields: Any) -> None:
        """Publish the global event, then its ``proc.<name>.<event>`` twin."""
        self.bus.publish(event, name=name, **fields)
        self.bus.publish(f"proc.{name}.{event}", name=name, **fields)

    def _publish_check(self, event: str, process: Process, **fields: Any) -> None:
        """``ready``/``unhealthy`` of one pid, from its checks (checks/runner.py)."""
        self.publish_twin(event, process.name, pid=process.pid, os_pid=process.os_pid, **fields)
