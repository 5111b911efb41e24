"""The restart policies on a fake clock: flapping (spec 8.8's exact algorithm) and backoff."""

import math

import pytest

from gaffer_gevent.flapping import Backoff, BackoffConfig, FlappingPolicy, Verdict
from gaffer_gevent.template import FlappingConfig

from ..helpers import FakeClock


def test_worked_example_gives_up_after_three_flaps() -> None:
    clock = FakeClock()
    policy = FlappingPolicy(FlappingConfig(attempts=2, window=5, retry_in=0.5, max_retry=2), clock)
    verdicts = []
    for _ in range(4):
        verdicts.append(policy.on_exit())
        clock.now += 0.5
    assert verdicts == [Verdict.RESPAWN, Verdict.RETRY, Verdict.RETRY, Verdict.GIVE_UP]


def test_exits_spread_over_the_window_are_forgiven() -> None:
    clock = FakeClock()
    policy = FlappingPolicy(FlappingConfig(attempts=2, window=1.0, retry_in=7, max_retry=5), clock)
    assert policy.on_exit() is Verdict.RESPAWN
    clock.now += 2.0
    assert policy.on_exit() is Verdict.RESPAWN
    assert policy.retries == 0 and not policy.history


def test_max_retry_below_attempts_never_flaps() -> None:
    clock = FakeClock()
    policy = FlappingPolicy(FlappingConfig(attempts=3, window=10, retry_in=1, max_retry=2), clock)
    assert all(policy.on_exit() is Verdict.RESPAWN for _ in range(20))


def test_reset_forgets_history() -> None:
    policy = FlappingPolicy(FlappingConfig(attempts=1, window=1, retry_in=0.1, max_retry=1))
    assert policy.on_exit() is Verdict.RETRY
    policy.reset()
    assert policy.retries == 0 and not policy.history


# -- backoff (issue 13): every template, on a fake clock ------------------------------------------


def no_jitter() -> float:
    return 0.0


def crash_loop(policy: Backoff, clock: FakeClock, run: float = 0.01) -> list[float | None]:
    """Spawn, run ``run`` s, exit, wait the delay: the delays until the policy gives up."""
    delays: list[float | None] = []
    while not delays or delays[-1] is not None:
        spawned = clock.now
        clock.now += run
        delay = policy.on_exit(spawned)
        delays.append(delay)
        clock.now += delay or 0.0
    return delays


def test_default_backoff_doubles_from_a_tenth_to_a_minute_then_gives_up() -> None:
    clock = FakeClock()
    delays = crash_loop(Backoff(BackoffConfig(), clock, no_jitter), clock)
    assert delays[:4] == [0.1, 0.2, 0.4, 0.8]
    assert delays[9] == pytest.approx(51.2)
    assert delays[10:14] == [60.0, 60.0, 60.0, 60.0]  # the cap
    assert len(delays) == 15 and delays[-1] is None  # the 15th quick failure gives up


def test_a_crash_loop_spawns_at_most_seven_times_in_its_first_ten_seconds() -> None:
    clock = FakeClock()
    policy = Backoff(BackoffConfig(), clock)  # real jitter: it only shortens up to 10 %
    spawns = [0.0]
    while clock.now < 10.0:
        clock.now += 0.001  # `false` lives about a millisecond
        delay = policy.on_exit(spawns[-1])
        assert delay is not None
        clock.now += delay
        spawns.append(clock.now)
    assert len([t for t in spawns if t < 10.0]) <= 8


def test_jitter_only_shortens_a_delay_by_up_to_its_fraction() -> None:
    clock = FakeClock()
    policy = Backoff(BackoffConfig(jitter=0.1), clock, rand=lambda: 0.999999)
    assert policy.on_exit(clock.now) == pytest.approx(0.09, abs=1e-6)
    policy = Backoff(BackoffConfig(jitter=0.1), clock, rand=no_jitter)
    assert policy.on_exit(clock.now) == 0.1


def test_a_healthy_run_restarts_at_once_and_starts_the_count_over() -> None:
    clock = FakeClock()
    policy = Backoff(BackoffConfig(), clock, no_jitter)
    assert policy.on_exit(clock.now) == 0.1
    clock.now += 1.0
    assert policy.on_exit(clock.now - 0.5) == 0.2 and policy.failures == 2
    spawned = clock.now
    clock.now += 10.0  # ran exactly reset_after: healthy
    assert policy.on_exit(spawned) == 0.0
    assert policy.failures == 0
    assert policy.on_exit(clock.now) == 0.1  # the next crash starts from the first delay


def test_copies_crashing_together_count_as_one_failure() -> None:
    clock = FakeClock()
    policy = Backoff(BackoffConfig(), clock, no_jitter)
    spawned = clock.now  # four copies spawned in one reconcile
    clock.now += 0.01
    assert policy.on_exit(spawned) == 0.1
    clock.now += 0.02
    assert [policy.on_exit(spawned) for _ in range(3)] == [pytest.approx(0.08)] * 3
    assert policy.failures == 1
    clock.now += 0.5  # the round was respawned and it crashes again: one more failure
    assert policy.on_exit(clock.now - 0.01) == 0.2 and policy.failures == 2


def test_reset_and_never_giving_up() -> None:
    clock = FakeClock()
    policy = Backoff(BackoffConfig(give_up_after=0), clock, no_jitter)
    delays = []
    for _ in range(2000):  # no overflow however long it loops
        clock.now += 0.01
        delays.append(policy.on_exit(clock.now - 0.001))
        clock.now += delays[-1] or 0.0
    assert None not in delays and delays[-1] == 60.0
    policy.reset()
    assert policy.failures == 0 and policy.on_exit(clock.now) == 0.1


def test_failures_now_reads_zero_once_every_process_has_run_long_enough() -> None:
    clock = FakeClock()
    policy = Backoff(BackoffConfig(), clock, no_jitter)
    policy.on_exit(clock.now)
    clock.now += 0.1
    respawned = clock.now
    assert policy.failures_now(respawned) == 1 and policy.failures_now(None) == 1
    clock.now += 10.0
    assert policy.failures_now(respawned) == 0


@pytest.mark.parametrize(
    "fields",
    [
        {"first_delay": 0}, {"first_delay": math.nan}, {"first_delay": 2, "max_delay": 1},
        {"max_delay": math.inf}, {"reset_after": -1}, {"give_up_after": -1},
        {"give_up_after": 1001}, {"jitter": 1.0},
    ],
)  # fmt: skip
def test_backoff_settings_out_of_bounds_are_refused(fields: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        BackoffConfig(**fields)  # type: ignore[arg-type]
