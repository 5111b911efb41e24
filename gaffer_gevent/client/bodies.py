"""The typed bodies of gafferd's answers, as the client returns them."""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

FeedName = Literal["longpoll", "continuous", "eventsource"]


class Status(TypedDict):
    """The body of ``GET /status/<name>`` (spec 4.9), then our keys (absent from gaffer 0.4)."""

    active: bool
    running: int
    max_processes: int
    state: NotRequired[str]  # "running", "backoff", "failed" or "stopped"
    restarts: NotRequired[int]
    failures: NotRequired[int]
    retry_in: NotRequired[float | None]


class Ticket(TypedDict):
    """The body of ``POST /auth/ticket``: a single-use ``?ticket=`` for a browser's feed."""

    ticket: str
    expires_in: int


class WhoAmI(TypedDict):
    """The body of ``GET /auth/whoami``: the token's name, role and scope (globs)."""

    name: str | None
    role: str
    scope: Any
