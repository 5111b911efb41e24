"""Restart policies, pure and fed by an injected clock: flapping (spec 8.8) and backoff.

Flapping is kept exactly as gaffer 0.4 implements it, quirks included
(history maxlen is ``max_retry``, not ``attempts``), so behaviour matches the
reference: the policy only answers "respawn", "retry later" or "give up".
It applies only to templates that set ``flapping``.

Backoff applies to every template, under flapping when both are set: it spaces
the restarts of a crash loop exponentially and gives up on a template that
never stays up, so a crashing ``false`` costs a handful of spawns, not
thousands a second.
"""

from __future__ import annotations

import enum
import math
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace

from .flapping_settings import FlappingConfig


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


# -- restart backoff -----------------------------------------------------------------------------


#: Bounds of the backoff settings (a day; a count no one would wait for).
MAX_BACKOFF_SECONDS = 86400.0
MAX_GIVE_UP = 1000


@dataclass(frozen=True)
class BackoffConfig:
    """How every template is restarted after an exit gaffer did not ask for (README: crash loops).

    A run shorter than ``reset_after`` is a quick failure: the n-th one in a row
    waits ``first_delay * 2**(n-1)`` seconds, at most ``max_delay``, less up to
    ``jitter`` of it (so templates that crashed together do not restart in step).
    A run of ``reset_after`` or longer was healthy: its restart is immediate and
    the count starts over. At ``give_up_after`` quick failures in a row (0:
    never) the template is given up: it ends ``failed`` until a start or restart.
    """

    first_delay: float = 0.1
    max_delay: float = 60.0
    reset_after: float = 10.0
    give_up_after: int = 15
    jitter: float = 0.1

    def __post_init__(self) -> None:
        # Checked here once, so config parsing, embedders and tests share the rule.
        if not (0 < self.first_delay <= self.max_delay <= MAX_BACKOFF_SECONDS):
            raise ValueError(f"needs 0 < first delay <= max delay <= {MAX_BACKOFF_SECONDS:g} s")
        if not 0 <= self.reset_after <= MAX_BACKOFF_SECONDS:
            raise ValueError(f"the reset time must be 0 to {MAX_BACKOFF_SECONDS:g} s")
        if not 0 <= self.give_up_after <= MAX_GIVE_UP:
            raise ValueError(f"give up after 0 (never) to {MAX_GIVE_UP} failures")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be from 0 to below 1")

    def with_overrides(
        self,
        first_delay: float | None = None,
        max_delay: float | None = None,
        jitter: float | None = None,
    ) -> BackoffConfig:
        """This config with a template's ``restart_delay``/``max_restart_delay``/``restart_jitter``.

        A first delay above the inherited maximum raises that maximum with it.
        """
        first = self.first_delay if first_delay is None else first_delay
        if first_delay is None and max_delay is not None:
            first = min(first, max_delay)
        if max_delay is None:
            max_delay = max(first, self.max_delay)
        return replace(
            self,
            first_delay=first,
            max_delay=max_delay,
            jitter=self.jitter if jitter is None else jitter,
        )

    def delay(self, failures: int) -> float:
        """The delay after the ``failures``-th quick failure in a row, before jitter."""
        return min(self.max_delay, self.first_delay * 2.0 ** min(failures - 1, 64))


class Backoff:
    """Quick failures in a row of one template and when its next respawn is due.

    The count is per template, and one exit per round counts: a process spawned
    before the last counted failure belongs to the round that failure already
    delayed (four crashing copies of one template are one failure, not four),
    so it is respawned with that round, at the same due time.
    """

    def __init__(
        self,
        config: BackoffConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.config = config or BackoffConfig()
        self.clock = clock
        self.rand = rand
        self.failures = 0
        self._counted_at = -math.inf  # clock time of the last counted failure
        self._due = -math.inf  # when the respawn it decided is due

    def reset(self) -> None:
        """Start over (API start, restart and update do this)."""
        self.failures = 0
        self._counted_at = self._due = -math.inf

    def on_exit(self, spawned_at: float) -> float | None:
        """An exit gaffer did not ask for, of a process spawned at ``spawned_at`` (same clock).

        Returns the seconds to wait before respawning (0: at once), or None to give up.
        """
        cfg = self.config
        now = self.clock()
        if now - spawned_at >= cfg.reset_after:
            self.failures = 0  # a healthy run: restart at once, count from zero
            return 0.0
        if spawned_at <= self._counted_at:
            return max(0.0, self._due - now)  # this round is counted and delayed already
        self.failures += 1
        self._counted_at = now
        if cfg.give_up_after and self.failures >= cfg.give_up_after:
            return None
        delay = cfg.delay(self.failures) * (1.0 - cfg.jitter * self.rand())
        self._due = now + delay
        return delay

    def failures_now(self, youngest_spawned_at: float | None) -> int:
        """The count as the next exit would see it: 0 once the youngest process ran long enough."""
        if youngest_spawned_at is None:
            return self.failures
        ran = self.clock() - youngest_spawned_at
        return 0 if ran >= self.config.reset_after else self.failures
