"""What the manager tracks per template, and the run state derived from it.

Kept apart from the manager so that the pieces that act on a template (spawning,
exit handling, the dependency gate, rolling restarts) share one plain record
without importing each other.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import gevent

from .flapping import Backoff, FlappingPolicy
from .process import Process, ProcessState
from .template import ProcessTemplate


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


def run_state(state: TemplateState) -> RunState:
    """The run state ``GET /status/<name>`` reports, derived from what is pending."""
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
