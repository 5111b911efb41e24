"""The manager: templates, groups and their processes, brought to their desired count.

Actions only change the desired state (the ``stopped`` flag, ``numprocesses``)
and then call ``reconcile``, the one step that spawns missing processes and
reaps extra ones. Every change is published on the event bus in the order of
spec 6.2. Imports no Flask: the HTTP side lives in ``api``.

The pieces live in their own modules: ``template_state`` (what is tracked per
template), ``spawning`` (the reconcile step, in slices), ``exits`` (crash,
backoff, flapping, restart policy). Every greenlet the manager starts (the
spawners, the respawn and retry timers, rolling restarts, ordered group stops)
belongs to its ``greenlets`` group, which ``stop_all`` ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from gevent.pool import Group

from . import exits, spawning
from .dependency_gate import DependencyGate, lifecycle_status
from .errors import Conflict, NotFound
from .events import EventBus
from .flapping import Backoff, BackoffConfig
from .greenlets import kill_others
from .limits import ProcessLimits, check_name
from .process import DEFAULT_STDIN_QUEUE, Process
from .signals import parse_signal
from .spawning import SPAWN_BATCH, SPAWN_PAUSE, SPAWN_SLICE
from .streams import DEFAULT_BUFFER_SIZE
from .template import ProcessTemplate
from .template_state import RunState, TemplateState, run_state

__all__ = ["SPAWN_BATCH", "SPAWN_PAUSE", "SPAWN_SLICE", "Manager", "RunState", "TemplateState"]


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
        #: Called with (os pid, template name, running) when the command of an exec check
        #: starts and when it is gone: the runtime record lists its process group too.
        self.check_group_hooks: list[Callable[[int, str, bool], None]] = []
        self._last_pid = 0
        #: Every greenlet the manager starts (spawners, respawn and retry timers, rolling
        #: restarts, ordered group stops): ``stop_all`` ends what is left of it.
        self.greenlets = Group()
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
        return run_state(state)

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
        self.detach(process, state)
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
        """Bring a non-stopped template to numprocesses (spawning.py)."""
        spawning.reconcile(self, state)

    def next_pid(self) -> int:
        """gaffer's pid for the next process (not the OS pid)."""
        self._last_pid += 1
        return self._last_pid

    def spawn_one(self, state: TemplateState) -> Process:
        """One more process of ``state`` beyond its count (a rolling restart's replacement)."""
        return spawning.spawn(self, state)

    def retire(self, state: TemplateState, process: Process, event: str) -> None:
        """Stop one process of ``state`` without replacing it, announced as ``event``."""
        if process in state.queue or process.alive:
            self.detach(process, state)
            process.stop()
            self.publish_twin(event, process.name, pid=process.pid, os_pid=process.os_pid)

    def _restart(self, state: TemplateState) -> None:
        """A fresh set of numprocesses; the current ones are reaped once it runs."""
        state.outgoing = set(state.queue)
        self.reconcile(state)

    def restart_state(self, state: TemplateState) -> None:
        """Replace the processes of ``state`` (a flapping retry), keeping its history."""
        self._restart(state)

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
            self.detach(process, state)
            process.stop()

    def detach(self, process: Process, state: TemplateState | None) -> None:
        """Take a process out of the running set; it stays tracked until it exits."""
        self.running.pop(process.pid, None)
        if state is not None and process in state.queue:
            state.queue.remove(process)
            state.outgoing.discard(process)
        if process.alive:
            self.stopping[process.pid] = process

    def process_exited(self, process: Process) -> None:
        """Each process's ``on_exit`` (exits.py: refill, finish, back off or give up)."""
        exits.process_exited(self, process)

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
        kill_others(self.greenlets)
        return not self.stopping

    def all_processes(self) -> Iterable[Process]:
        return list(self.running.values()) + list(self.stopping.values())

    # -- events -------------------------------------------------------------

    def publish_twin(self, event: str, name: str, **fields: Any) -> None:
        """Publish the global event, then its ``proc.<name>.<event>`` twin."""
        self.bus.publish(event, name=name, **fields)
        self.bus.publish(f"proc.{name}.{event}", name=name, **fields)

    def check_group(self, os_pid: int, name: str, running: bool) -> None:
        """An exec check's command started (``running``) or is gone: tell the hooks."""
        for hook in self.check_group_hooks:
            hook(os_pid, name, running)

    def publish_check(self, event: str, process: Process, **fields: Any) -> None:
        """``ready``/``unhealthy`` of one pid, from its checks (checks/runner.py)."""
        self.publish_twin(event, process.name, pid=process.pid, os_pid=process.os_pid, **fields)
