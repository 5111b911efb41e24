"""The pure pieces of auth.py: roles, hashes, scope, tickets and the throttle on a fake clock."""

from __future__ import annotations

import re

import pytest

from gaffer_gevent.auth import (
    ANONYMOUS,
    MAX_TICKETS,
    Credentials,
    FailureThrottle,
    Principal,
    Role,
    Security,
    Tickets,
    TokenSpec,
    hash_token,
    mint_token,
    parse_hash,
    parse_scope,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def token_spec(name: str, role: Role, token: str, scope: tuple[str, ...] = ()) -> TokenSpec:
    return TokenSpec(name, role, parse_hash(hash_token(token)), scope)


def test_roles_include_the_ones_before() -> None:
    assert [Role.parse(r) for r in ("read", "STDIN", " operate ", "admin")] == list(Role)
    assert Role.ADMIN > Role.OPERATE > Role.STDIN > Role.READ
    with pytest.raises(ValueError, match=re.escape("read|stdin|operate|admin")):
        Role.parse("root")


def test_minted_tokens_are_256_bit_and_url_safe() -> None:
    tokens = {mint_token() for _ in range(100)}
    assert len(tokens) == 100
    assert all(len(t) >= 43 and t.replace("-", "").replace("_", "").isalnum() for t in tokens)


def test_minted_tokens_never_start_with_a_dash() -> None:
    """``--token -abc`` reads as an option on a command line: 1 draw in 64 would start so."""
    assert not any(mint_token().startswith("-") for _ in range(2000))


@pytest.mark.parametrize(
    "value", ["", "sha256:", "sha256:" + "a" * 63, "md5:" + "a" * 64, "sha256:" + "g" * 64]
)
def test_bad_hashes_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="sha256"):
        parse_hash(value)


def test_a_token_is_known_by_its_hash_only() -> None:
    token = mint_token()
    creds = Credentials([token_spec("ops", Role.OPERATE, token)])
    assert creds.enabled
    principal = creds.authenticate(token)
    assert principal is not None and (principal.name, principal.role) == ("ops", Role.OPERATE)
    assert creds.authenticate(token + "x") is None
    assert creds.authenticate("") is None
    assert creds.authenticate("\udcff") is None  # undecodable input is just unknown
    assert not Credentials().enabled


def test_scope_globs() -> None:
    assert parse_scope("web:*, worker") == ("web:*", "worker")
    assert parse_scope("*") == parse_scope("") == ()
    scoped = Principal("s", Role.ADMIN, ("web:*", "worker"))
    assert scoped.sees("web:a") and scoped.sees("worker")
    assert not scoped.sees("worker2") and not scoped.sees("webx")
    assert ANONYMOUS.sees("anything") and not ANONYMOUS.scoped


def test_tickets_work_once_and_expire() -> None:
    clock = Clock()
    tickets = Tickets(lifetime=30, clock=clock)
    principal = Principal("p", Role.READ)
    first, second = tickets.issue(principal), tickets.issue(principal)
    assert tickets.redeem(first) == principal
    assert tickets.redeem(first) is None
    clock.now += 30
    assert tickets.redeem(second) is None
    assert tickets.redeem("made-up") is None


def test_tickets_are_bounded() -> None:
    tickets = Tickets(clock=Clock())
    issued = [tickets.issue(ANONYMOUS) for _ in range(MAX_TICKETS + 5)]
    assert tickets.redeem(issued[0]) is None  # the oldest made room
    assert tickets.redeem(issued[-1]) == ANONYMOUS


def test_the_throttle_blocks_past_the_limit_until_the_window_passes() -> None:
    clock = Clock()
    throttle = FailureThrottle(limit=3, window=60, clock=clock)
    for _ in range(3):
        assert throttle.retry_after("a") is None
        throttle.fail("a")
    assert throttle.retry_after("a") == 60
    assert throttle.retry_after("b") is None
    clock.now += 59
    assert throttle.retry_after("a") == pytest.approx(1)
    clock.now += 1
    assert throttle.retry_after("a") is None


def test_replacing_credentials_ends_the_sessions_of_removed_principals() -> None:
    keep, drop = mint_token(), mint_token()
    security = Security(
        Credentials([token_spec("keep", Role.READ, keep), token_spec("drop", Role.READ, drop)])
    )
    closed: list[str] = []
    for token in (keep, drop):
        principal = security.credentials.authenticate(token)
        assert principal is not None
        security.sessions.add(principal, lambda name=principal.name: closed.append(name))
    ticket = security.tickets.issue(security.credentials.authenticate(drop) or ANONYMOUS)
    assert security.replace(Credentials([token_spec("keep", Role.READ, keep)])) == 1
    assert closed == ["drop"]
    assert security.tickets.redeem(ticket) is None
    assert security.credentials.authenticate(drop) is None
