"""Who may do what: roles, principals, the credential store, tickets and the failure throttle.

Pure and free of Flask, so the config parser, the daemon's ``token`` command and
the API's guard share one definition. A token is never kept, only the SHA-256
of it: checking a request is a dict lookup by digest (microseconds, no KDF),
and a config file or a memory dump gives nothing to replay.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase

#: Bytes of randomness in a minted token (256 bits), as URL-safe base64.
TOKEN_BYTES = 32
HASH_PREFIX = "sha256:"
#: Seconds a ticket (for EventSource and WebSocket, which cannot set headers) stays valid.
TICKET_LIFETIME = 30
#: Tickets held at once; the oldest is dropped past this, so minting cannot grow memory.
MAX_TICKETS = 10_000
#: Failed authentications from one address within ``FAILURE_WINDOW`` seconds before 429.
FAILURE_LIMIT = 20
FAILURE_WINDOW = 60.0
#: Addresses the throttle remembers; the least recently failing one is forgotten past this.
MAX_THROTTLED_ADDRESSES = 4096


class Role(enum.IntEnum):
    """Each role includes every one before it."""

    READ = 1  # GET/HEAD of everything
    STDIN = 2  # + write to stdin, the websocket
    OPERATE = 3  # + start, stop, restart, scale, signal, rotate existing templates
    ADMIN = 4  # + create, update, delete templates: choose what runs

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: str) -> Role:
        try:
            return cls[value.strip().upper()]
        except KeyError:
            names = "|".join(role.label for role in cls)
            raise ValueError(f"{value!r} is not a role ({names})") from None


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: a token, a client certificate, or nobody when auth is off."""

    name: str
    role: Role
    scope: tuple[str, ...] = ()  # template-name globs; empty: every template
    kind: str = "token"  # "token", "client" (certificate subject) or "anonymous"

    def can(self, role: Role) -> bool:
        return self.role >= role

    @property
    def scoped(self) -> bool:
        return bool(self.scope)

    def sees(self, template: str) -> bool:
        """Is ``template`` within this principal's scope?"""
        return not self.scope or any(fnmatchcase(template, glob) for glob in self.scope)

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "role": self.role.label, "scope": list(self.scope) or ["*"]}


#: The caller when no credential is configured (gafferd then serves loopback only).
ANONYMOUS = Principal("anonymous", Role.ADMIN, (), kind="anonymous")


def parse_scope(value: str) -> tuple[str, ...]:
    """``web:*, worker`` -> ("web:*", "worker"); ``*`` or empty means every template."""
    globs = tuple(item.strip() for item in value.split(",") if item.strip())
    return () if "*" in globs else globs


def mint_token() -> str:
    """A fresh random token: 256 bits, URL-safe, fit for a header or a file.

    Never one that starts with ``-``: ``--token -abc`` would read as an option on a
    command line (argparse refuses it), so such a draw is thrown away.
    """
    while (token := secrets.token_urlsafe(TOKEN_BYTES)).startswith("-"):
        pass
    return token


def hash_token(token: str) -> str:
    """The value of a ``[token:NAME]`` section's ``hash`` key for ``token``."""
    return HASH_PREFIX + _digest(token).hex()


def parse_hash(value: str) -> bytes:
    """``sha256:<64 hex digits>`` -> the 32-byte digest; ``ValueError`` otherwise."""
    value = value.strip()
    hexdigest = value[len(HASH_PREFIX) :] if value.startswith(HASH_PREFIX) else ""
    if len(hexdigest) != 64 or not all(c in "0123456789abcdefABCDEF" for c in hexdigest):
        raise ValueError("must be sha256:<64 hex digits> (gafferd token NAME prints it)")
    return bytes.fromhex(hexdigest)


@dataclass(frozen=True)
class TokenSpec:
    """One ``[token:NAME]`` section."""

    name: str
    role: Role
    digest: bytes
    scope: tuple[str, ...] = ()


@dataclass(frozen=True)
class ClientSpec:
    """One ``[client:SUBJECT]`` section: a certificate's common name given a role and scope."""

    subject: str
    role: Role
    scope: tuple[str, ...] = ()


class Credentials:
    """Every token and certificate subject gafferd accepts; empty means auth is off."""

    def __init__(
        self, tokens: Iterable[TokenSpec] = (), clients: Iterable[ClientSpec] = ()
    ) -> None:
        self._by_digest = {
            t.digest: Principal(t.name, t.role, t.scope, kind="token") for t in tokens
        }
        self._by_subject = {
            c.subject: Principal(c.subject, c.role, c.scope, kind="client") for c in clients
        }

    @property
    def enabled(self) -> bool:
        return bool(self._by_digest or self._by_subject)

    def principals(self) -> set[Principal]:
        return set(self._by_digest.values()) | set(self._by_subject.values())

    def authenticate(self, token: str) -> Principal | None:
        """The principal of ``token``, or None. The lookup is by the token's digest."""
        # Comparing digests, not tokens: how long the lookup takes says nothing about how
        # much of a guessed token was right, as a constant-time comparison of the token would.
        return self._by_digest.get(_digest(token))

    def for_subject(self, subject: str) -> Principal | None:
        """The principal a verified client certificate with common name ``subject`` maps to."""
        return self._by_subject.get(subject)


class Tickets:
    """Single-use, short-lived stand-ins for a token, for EventSource and WebSocket URLs."""

    def __init__(
        self, lifetime: float = TICKET_LIFETIME, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.lifetime = lifetime
        self.clock = clock
        self._held: OrderedDict[bytes, tuple[Principal, float]] = OrderedDict()

    def issue(self, principal: Principal) -> str:
        now = self.clock()
        while self._held and (
            len(self._held) >= MAX_TICKETS or next(iter(self._held.values()))[1] <= now
        ):
            self._held.popitem(last=False)  # expired, or the oldest when full
        ticket = secrets.token_urlsafe(TOKEN_BYTES)
        self._held[_digest(ticket)] = (principal, now + self.lifetime)
        return ticket

    def redeem(self, ticket: str) -> Principal | None:
        """The ticket's principal if it is known and unexpired; a ticket works once."""
        held = self._held.pop(_digest(ticket), None)
        if held is None or held[1] <= self.clock():
            return None
        return held[0]

    def revoke(self, keep: Callable[[Principal], bool]) -> None:
        """Forget the tickets whose principal is no longer wanted (a token removed on reload)."""
        for key in [k for k, (p, _) in self._held.items() if not keep(p)]:
            del self._held[key]


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode(errors="surrogateescape")).digest()


class FailureThrottle:
    """Counts failed authentications per address; past the limit, the address waits.

    Memory is bounded: at most ``MAX_THROTTLED_ADDRESSES`` addresses, each with at
    most ``limit`` timestamps.
    """

    def __init__(
        self,
        limit: int = FAILURE_LIMIT,
        window: float = FAILURE_WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def fail(self, address: str) -> None:
        times = self._failures.pop(address, None) or deque(maxlen=self.limit)
        times.append(self.clock())
        self._failures[address] = times  # most recent last
        while len(self._failures) > MAX_THROTTLED_ADDRESSES:
            self._failures.popitem(last=False)

    def retry_after(self, address: str) -> float | None:
        """Seconds ``address`` must wait, or None when it may try."""
        times = self._failures.get(address)
        if times is None:
            return None
        now = self.clock()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[address]
            return None
        if len(times) < self.limit:
            return None  # attempts beyond the limit wait
        return times[-1] + self.window - now  # the window after the latest failure


class Sessions:
    """Open feeds and websockets per principal, so that a revoked token ends them at once."""

    def __init__(self) -> None:
        self._open: dict[Principal, dict[int, Callable[[], None]]] = {}

    def add(self, principal: Principal, close: Callable[[], None]) -> Callable[[], None]:
        """Remember ``close`` for ``principal``; the returned function forgets it again."""
        held = self._open.setdefault(principal, {})
        key = id(close)
        held[key] = close

        def forget() -> None:
            entries = self._open.get(principal)
            if entries is not None:
                entries.pop(key, None)
                if not entries:
                    del self._open[principal]

        return forget

    def count(self, principal: Principal) -> int:
        return len(self._open.get(principal, {}))

    def close_all_but(self, keep: Callable[[Principal], bool]) -> int:
        """Close every session whose principal is no longer wanted; return how many."""
        closed = 0
        for principal in [p for p in self._open if not keep(p)]:
            for close in list(self._open.pop(principal, {}).values()):
                close()
                closed += 1
        return closed


class Security:
    """One app's live security state: the credentials (swapped on reload) and what hangs off
    them."""

    def __init__(self, credentials: Credentials | None = None) -> None:
        self.credentials = credentials or Credentials()
        self.tickets = Tickets()
        self.throttle = FailureThrottle()
        self.sessions = Sessions()

    def replace(self, credentials: Credentials) -> int:
        """Use ``credentials`` from now on; end what removed or changed principals hold open.

        Returns how many open feeds and websockets were closed.
        """
        self.credentials = credentials
        wanted = credentials.principals()

        def keep(principal: Principal) -> bool:
            return principal in wanted or (principal.kind == "anonymous" and not wanted)

        self.tickets.revoke(keep)
        return self.sessions.close_all_but(keep)
