"""Holds a template's first spawn until its ``depends_on`` conditions hold; stops in reverse.

Event-driven: the gate listens to the bus (a spawn, a ``ready``, a ``completed``, an
exit, a template created or started) and re-checks only the templates that wait,
so a dependent spawns within a loop turn of its dependency's event, and a
dependency that never gets ready costs nothing: its dependents stay ``waiting``
(with one ``proc.<name>.waiting`` event naming what they wait for), no timer runs.

Readiness is read through ``is_ready``: the health checks (issue 15's other half)
give ``Process`` a ``ready`` property and publish ``proc.<name>.ready`` (at spawn for
a template without a readiness check); until they do, a pid is ready when it runs.
The gate wakes on ``spawn`` as well as ``ready``, so it works with and without them,
and publishes no ``ready`` of its own.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from . import dependencies
from .errors import GafferError
from .lifecycle_settings import Condition
from .process import Process, ProcessState

if TYPE_CHECKING:
    from .manager import Manager
    from .template_state import TemplateState

#: Bus events after which a waiting template may be able to start.
WAKE_EVENTS = frozenset({"spawn", "ready", "completed", "exit", "failed", "start", "create"})


def is_ready(process: Process) -> bool:
    """The health checks' ``ready`` when they exist; a running pid otherwise."""
    return bool(getattr(process, "ready", process.state is ProcessState.RUNNING))


class DependencyGate:
    """One per manager: which templates wait, and what for."""

    def __init__(self, manager: Manager) -> None:
        self.manager = manager
        #: Template name -> the conditions it still waits for, as its last event said.
        self.waiting: dict[str, dict[str, str]] = {}
        manager.bus.subscribe(".", self._on_event)

    # -- validation ------------------------------------------------------------

    def graph(self, replacing: Any = None) -> dict[str, dict[str, Condition]]:
        """Every template's ``depends_on``, with ``replacing`` (a new template) in place."""
        graph = {name: st.template.depends_on for name, st in self.manager.states.items()}
        if replacing is not None:
            graph[replacing.name] = replacing.depends_on
        return graph

    def check(self, template: Any) -> None:
        """UnknownDependency or DependencyCycle if ``template`` cannot join the graph."""
        if template.depends_on or any(
            st.template.depends_on for st in self.manager.states.values()
        ):
            dependencies.check(self.graph(template), strict=[template.name])

    # -- starting --------------------------------------------------------------

    def admits(self, state: TemplateState) -> bool:
        """May ``state`` spawn? Only its first spawns wait; respawns never do."""
        tpl = state.template
        name = tpl.name
        if not tpl.depends_on or state.queue or state.finished:
            self.waiting.pop(name, None)
            state.waiting_for = None
            return True
        unmet = {
            key: cond.value for key, cond in tpl.depends_on.items() if not self._met(key, cond)
        }
        if not unmet:
            if self.waiting.pop(name, None) is not None:
                state.waiting_for = None
            return True
        if self.waiting.get(name) != unmet:
            self.waiting[name] = unmet
            state.waiting_for = unmet
            self.manager.publish_twin("waiting", name, waiting_for=unmet)
        return False

    def _met(self, key: str, condition: Condition) -> bool:
        states = self.manager.states
        names = dependencies.expand(key, states)
        return bool(names) and all(_holds(states[name], condition) for name in names)

    def forget(self, name: str) -> None:
        self.waiting.pop(name, None)

    def _on_event(self, event: str, payload: dict[str, Any]) -> None:
        if not self.waiting or event.rpartition(".")[2] not in WAKE_EVENTS:
            return
        if event.startswith("proc.") or "." not in event:
            for name in list(self.waiting):
                state = self.manager.states.get(name)
                if state is None or state.stopped:
                    self.waiting.pop(name, None)
                    continue
                self.manager.reconcile(state)

    # -- stopping --------------------------------------------------------------

    def stop_in_order(self, names: Iterable[str], deadline: float | None) -> None:
        """Stop ``names``, each once the templates that depend on it are gone.

        Dependents come first (reverse start order); a template with no dependent
        among those stopping is stopped at once, as before dependencies existed.
        """
        wanted = [name for name in names if name in self.manager.states]
        graph = self.graph()
        try:
            order = dependencies.start_order(graph, strict=())
        except GafferError:  # no cycle can be added, but stopping must never fail
            order = list(graph)
        chosen = set(wanted)
        for name in reversed(order):
            if name not in chosen:
                continue
            for dependent in dependencies.dependents(graph, name):
                if dependent in chosen:
                    self._wait_gone(dependent, deadline)
            state = self.manager.states.get(name)
            if state is not None:
                self.manager.stop_state(state)

    def _wait_gone(self, name: str, deadline: float | None) -> None:
        for process in list(self.manager.stopping.values()):
            if process.name == name:
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                process.wait(remaining)

    def stop_group_later(self, names: list[str]) -> None:
        """A group stop: at once when no template in it depends on another, else in order."""
        graph = self.graph()
        if not any(dependencies.dependents(graph, name) for name in names):
            for name in names:
                self.manager.stop_template(name)
            return
        for name in names:  # no respawn meanwhile; the processes go in order
            self.manager.states[name].cancel_timers()
        self.manager.greenlets.spawn(self.stop_in_order, names, None)


def _holds(state: TemplateState, condition: Condition) -> bool:
    """Does one dependency template meet ``condition`` now?"""
    wanted = state.template.numprocesses
    done = state.finished
    if condition is Condition.COMPLETED:
        return len(done) >= wanted and all(p.state is ProcessState.COMPLETED for p in done)
    if state.stopped:
        return False
    live = [p for p in state.queue if p.spawn_error is None and p.alive]
    if condition is Condition.STARTED:
        return len(live) + len(done) >= wanted
    return len(live) >= wanted and all(is_ready(p) for p in live)


def lifecycle_status(state: TemplateState) -> dict[str, Any]:
    """``GET /status`` keys present only when they say something: what it waits for, and
    how many pids completed or failed for good (restart = never|on-failure)."""
    extra: dict[str, Any] = {}
    if state.waiting_for and not state.stopped:
        extra["waiting_for"] = state.waiting_for
    if state.finished:
        states = [p.state for p in state.finished]
        extra["completed"] = states.count(ProcessState.COMPLETED)
        extra["failed"] = states.count(ProcessState.FAILED)
    return extra
