"""The Flask extension object: holds the manager and settings for one app, no module state."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import Response, current_app

from ..auth import Credentials, Security
from ..manager import Manager

if TYPE_CHECKING:
    from ..stats import StatsCollector

TemplateAction = Callable[[str, str | None], Response]

DEFAULT_STDIN_MAX_BODY = 1024 * 1024


@dataclass
class GafferSettings:
    """HTTP-side settings (the ``[gaffer]`` section feeds them)."""

    #: Origins whose pages may call the API; ``["*"]``: any. None: any with auth on, none without.
    cors_origins: list[str] | None = None
    stdin_max_body: int = DEFAULT_STDIN_MAX_BODY
    url_prefix: str = ""
    #: Tokens and certificate subjects; none configured means auth is off (loopback only).
    credentials: Credentials = field(default_factory=Credentials)
    #: Host names (globs) that clients may use besides our addresses and ``localhost``.
    server_names: list[str] = field(default_factory=list)
    #: Addresses gafferd listens on, for the Host check (filled in by the daemon).
    bound_hosts: list[str] = field(default_factory=list)
    #: Serve clients that are not on loopback even though no credential is configured.
    allow_unauthenticated: bool = False


@dataclass
class GafferState:
    """What the views reach through ``current_app.extensions["gaffer"]``."""

    manager: Manager
    settings: GafferSettings
    #: Extra ``POST /processes/<name>/<action>`` handlers, e.g. ``_rotate`` for log files.
    template_actions: dict[str, TemplateAction] = field(default_factory=dict)
    #: Extra ``GET /processes/<name>/<action>`` handlers, e.g. ``_logs`` for log history.
    template_reads: dict[str, TemplateAction] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    security: Security = field(default_factory=Security)
    _stats: StatsCollector | None = None

    @property
    def stats(self) -> StatsCollector:
        """The psutil collector, made on the first stats request: a daemon that is
        never asked for stats does not pay psutil's memory."""
        if self._stats is None:
            from ..stats import StatsCollector

            self._stats = StatsCollector()
        return self._stats


def gaffer() -> GafferState:
    state: GafferState = current_app.extensions["gaffer"]
    return state


def manager() -> Manager:
    return gaffer().manager
