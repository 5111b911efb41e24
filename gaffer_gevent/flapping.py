"""Flapping detection as a pure policy (spec 8.8), fed by an injected clock.

The algorithm is kept exactly as gaffer 0.4 implements it, quirks included
(history maxlen is ``max_retry``, not ``attempts``), so behaviour matches the
reference: the policy only answers "respawn", "retry later" or "give up".
"""

from __future__ import annotations

import enum
import time
from collections import deque
from collections.abc import Callable

from .template import FlappingConfig


class Verdict(enum.Enum):
    RESPAWN = "respawn"
    RETRY = "retry"  # flapping: stop now, restart after retry_in
    GIVE_UP = "give_up"  # flapping: stop for good


class FlappingPolicy:
    """Tracks the exit history of one template and judges each qualifying exit."""

    def __init__(self, config: FlappingConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.clock = clock
        self.history: deque[float] = deque(maxlen=config.max_retry)
        self.retries = 0

    def reset(self) -> None:
        """Forget the history (API start/restart/update do this; the retry timer must not)."""
        self.history.clear()
        self.retries = 0

    def on_exit(self) -> Verdict:
        """Record one exit that gaffer did not ask for and say what to do next."""
        cfg = self.config
        self.history.append(self.clock())
        if len(self.history) < cfg.attempts:
            return Verdict.RESPAWN
        diff = self.history[-1] - self.history[0]
        if diff > cfg.window:
            self.reset()
            return Verdict.RESPAWN
        if self.retries < cfg.max_retry:
            self.retries += 1
            return Verdict.RETRY
        self.reset()
        return Verdict.GIVE_UP
