"""Counters per template that outlive the pids they count: restarts, exits, retired stream bytes.

A pid's figures vanish with it, but ``/metrics`` counters must never go
down while their template exists. ``TemplateCounters`` listens to the event
bus (the manager is not touched) and keeps, per template name only (never a
pid), how many restarts and exits there were and how many stream bytes the
pids that exited carried and lost. Deleting a template drops its counters, so
the number of series follows the templates, not the pids ever spawned.

Restart reasons, read from the order of the manager's events:

- ``exit``: a pid exited without gaffer asking (no ``stop_pid`` or ``reap``
  before its ``exit``) and a new pid was spawned for it;
- ``flapping``: the first spawn after a ``flap`` whose retry came (a ``failed``
  means the policy gave up: no restart);
- ``api``: an ``api.restart`` (one template) or ``api.group_restart`` (each
  template of the group of the template it names) audit event;
- ``liveness``: the respawn of a pid its liveness check declared ``unhealthy``
  (gaffer stopped it, but as a crash: backoff and flapping apply).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .events import EventBus
from .manager import Manager
from .process import Process

RESTART_REASONS = ("exit", "flapping", "api", "liveness")
EXIT_OUTCOMES = ("success", "failure", "signal")


@dataclass
class TemplateTally:
    """What one template's pids did, kept while the template exists."""

    restarts: Counter[str] = field(default_factory=Counter)
    exits: Counter[str] = field(default_factory=Counter)
    #: label -> bytes carried / lost by the streams of pids that exited.
    retired_bytes: Counter[str] = field(default_factory=Counter)
    retired_dropped: Counter[str] = field(default_factory=Counter)
    #: CPU seconds last seen of the pid trees that exited.
    retired_cpu: float = 0.0
    #: Unasked exits still waiting for their respawn (each one's reason: exit or liveness),
    #: and a flap waiting for its retry.
    crashes_pending: list[str] = field(default_factory=list)
    flap_pending: bool = False


class TemplateCounters:
    """Bus listener and spawn hook of one manager; read by the metrics collector at scrape time."""

    def __init__(self, manager: Manager) -> None:
        self.manager = manager
        self.bus: EventBus = manager.bus
        self.tallies: dict[str, TemplateTally] = {}
        #: Live pids (ours) -> their process, to fold their stream bytes in when they exit.
        self.live: dict[int, Process] = {}
        #: Pids gaffer asked to stop and that have not exited yet.
        self.asked: set[int] = set()
        #: Pids a liveness check declared unhealthy (gaffer stops them, as a crash).
        self.unhealthy: set[int] = set()
        #: Live pids (ours) -> the most CPU seconds a scrape saw their tree use: a tree's time
        #: drops when a descendant nobody reaps exits, a counter must not.
        self.cpu_seen: dict[int, float] = {}
        for process in manager.all_processes():  # spawned before these counters existed
            self.live[process.pid] = process
        manager.spawn_hooks.append(self._spawned)
        self.bus.subscribe(".", self._on_event)

    def close(self) -> None:
        self.bus.unsubscribe(".", self._on_event)
        if self._spawned in self.manager.spawn_hooks:
            self.manager.spawn_hooks.remove(self._spawned)

    def cpu_of(self, pid: int, now: float | None) -> float:
        """The CPU seconds to report for a live pid's tree: never less than reported before."""
        seen = max(self.cpu_seen.get(pid, 0.0), now or 0.0)
        self.cpu_seen[pid] = seen
        return seen

    def tally(self, name: str) -> TemplateTally:
        """The counters of ``name`` (zeros for a template that did nothing yet)."""
        return self.tallies.get(name) or TemplateTally()

    # -- listeners -----------------------------------------------------------------------

    def _spawned(self, process: Process) -> None:
        self.live[process.pid] = process

    def _on_event(self, event: str, payload: dict[str, Any]) -> None:
        if event.startswith("proc."):
            return  # the twin of a global event seen already
        name = payload.get("name")
        if not isinstance(name, str):
            return
        if event == "exit":
            self._exited(name, payload)
            return
        if event == "delete":
            self.tallies.pop(name, None)
            return
        if event == "api.group_restart":  # named by the group's first template
            state = self.manager.states.get(name)
            group = state.template.group if state is not None else None
            for member in self.manager.groups.get(group or "", ()):
                self._tally(member).restarts["api"] += 1
            return
        if name not in self.manager.states:
            return  # never make counters for a template that is gone
        tally = self._tally(name)
        if event in ("stop_pid", "reap"):
            pid = payload.get("pid")
            if isinstance(pid, int):
                self.asked.add(pid)
        elif event == "unhealthy" and payload.get("reason") == "liveness":
            pid = payload.get("pid")
            if isinstance(pid, int):
                self.unhealthy.add(pid)
        elif event in ("spawn", "spawn_error"):
            if tally.crashes_pending:
                tally.restarts[tally.crashes_pending.pop(0)] += 1
            elif tally.flap_pending:
                tally.flap_pending = False
                tally.restarts["flapping"] += 1
        elif event == "flap":
            tally.flap_pending = True
            tally.crashes_pending.clear()
        elif event in ("failed", "start", "update"):
            tally.flap_pending = False
            tally.crashes_pending.clear()
        elif event == "stop":
            tally.crashes_pending.clear()
        elif event == "api.restart":
            tally.restarts["api"] += 1

    def _exited(self, name: str, payload: dict[str, Any]) -> None:
        pid = payload.get("pid")
        asked = pid in self.asked
        unhealthy = pid in self.unhealthy
        process = None
        cpu = 0.0
        if isinstance(pid, int):
            self.asked.discard(pid)
            self.unhealthy.discard(pid)
            process = self.live.pop(pid, None)
            cpu = self.cpu_seen.pop(pid, 0.0)
        if name not in self.manager.states:
            return
        tally = self._tally(name)
        tally.retired_cpu += cpu
        if payload.get("term_signal"):
            tally.exits["signal"] += 1
        elif payload.get("exit_status") == 0:
            tally.exits["success"] += 1
        else:
            tally.exits["failure"] += 1
        if unhealthy:
            tally.crashes_pending.append("liveness")
        elif not asked:
            tally.crashes_pending.append("exit")
        if process is not None:
            for label, stream in process.streams.items():
                tally.retired_bytes[label] += stream.total_bytes
                tally.retired_dropped[label] += stream.dropped_bytes_total

    def _tally(self, name: str) -> TemplateTally:
        tally = self.tallies.get(name)
        if tally is None:
            tally = self.tallies[name] = TemplateTally()
        return tally
