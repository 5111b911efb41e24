"""The flapping policy on a fake clock: the exact algorithm of spec 8.8."""

from gaffer_gevent.flapping import FlappingPolicy, Verdict
from gaffer_gevent.template import FlappingConfig


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


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
