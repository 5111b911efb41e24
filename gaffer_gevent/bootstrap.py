"""From a parsed gafferd config to a running manager and its app.

gafferd and ``wsgi.py`` (gunicorn) must build the same thing from the same ini
file, so the steps live here once: ``load`` the config, ``build_manager``,
``build_app``, ``apply_templates`` (also the SIGHUP reload step) and
``start_extras`` (log files and webhooks, closed again by ``Extras.close``).
Nothing here patches, binds a socket or handles a signal: the entry points do
that, each in its own way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .config import DaemonConfig, load_config

if TYPE_CHECKING:
    from flask import Flask

    from .logfiles import LogFiles
    from .manager import Manager
    from .webhooks import WebhookDispatcher

#: What ``apply_templates`` remembers of each applied ``[process:NAME]``: its body.
Applied = dict[str, dict[str, Any]]


def load(path: str | None) -> DaemonConfig:
    """The config in ``path``, or an empty one (no endpoints, no processes) for ``None``.

    Raises ``ConfigError`` naming the file, section and key of any mistake.
    """
    if path is None:
        return DaemonConfig(path=None, endpoints=[], processes=[], webhooks=[])
    return load_config(path)


def build_manager(config: DaemonConfig) -> Manager:
    """A manager sized by the ``[gaffer]`` section; it starts nothing yet."""
    from .manager import Manager

    return Manager(
        buffer_size=config.stream_buffer_size,
        stdin_queue_size=config.stdin_queue_size,
        limits=config.limits,
        backoff=config.backoff,
    )


def build_app(manager: Manager, config: DaemonConfig) -> Flask:
    """The whole API over ``manager`` with the HTTP settings of ``[gaffer]``."""
    from .api import create_app
    from .api.websocket import IDLE_TIMEOUT_CONFIG, PING_INTERVAL_CONFIG

    app = create_app(manager, stdin_max_body=config.stdin_max_body)
    apply_security(app, config)
    app.config[PING_INTERVAL_CONFIG] = config.connections.websocket_ping_interval
    app.config[IDLE_TIMEOUT_CONFIG] = config.connections.websocket_idle_timeout
    return app


def apply_security(app: Flask, config: DaemonConfig) -> int:
    """Give ``app`` the config's credentials, origins and host names (at start and on reload).

    A token that is gone or changed stops working at once and its open feeds and
    websockets are closed; returns how many were closed.
    """
    from .api import replace_credentials
    from .auth import Credentials

    settings = app.extensions["gaffer"].settings
    settings.cors_origins = config.cors_origins
    settings.server_names = list(config.server_names)
    settings.allow_unauthenticated = config.allow_unauthenticated
    return replace_credentials(app, Credentials(config.tokens, config.clients))


def apply_templates(
    manager: Manager,
    config: DaemonConfig,
    applied: Mapping[str, Mapping[str, Any]] | None = None,
    log: Callable[[str], None] | None = None,
) -> Applied:
    """Bring the manager's templates in line with ``config``; return what is now applied.

    ``applied`` is what an earlier call returned (empty at start-up): templates
    it lists that the config no longer has are removed, changed ones updated
    (a change of ``numprocesses`` alone scales: the running processes stay),
    unchanged ones left running untouched. Templates created over HTTP are
    never in ``applied``, so a reload leaves them alone, and a section named
    like one of them is skipped with a ``reload_conflict`` event and a log
    line: the config never replaces what a client created.
    """
    from .errors import GafferError
    from .template import ProcessTemplate

    applied = applied or {}
    say = log or (lambda message: None)
    wanted = {p.name: p for p in config.processes}
    now: Applied = {name: dict(body) for name, body in applied.items()}
    for name in applied:
        if name not in wanted and name in manager.states:
            manager.remove_template(name)
            say(f"removed {name}")
    for proc in config.processes:  # already in priority order
        body = proc.body
        start = body.get("start", True) is not False
        try:
            template = ProcessTemplate.from_json(body)
            if proc.name not in manager.states:
                manager.add_template(template, start=start)
            elif proc.name not in applied:
                manager.bus.publish("reload_conflict", name=proc.name, section=proc.section)
                say(
                    f"[{proc.section}] skipped: a template named {proc.name!r} was created over "
                    "HTTP and is kept; delete it (or rename the section) and reload"
                )
                continue
            elif applied[proc.name] != body:
                if _without_count(applied[proc.name]) == _without_count(body):
                    current = manager.get_template(proc.name).numprocesses
                    manager.scale(proc.name, template.numprocesses - current)
                    say(f"scaled {proc.name} to {template.numprocesses}")
                else:
                    manager.update_template(template, start=start)
                    say(f"updated {proc.name}")
            now[proc.name] = body
        except GafferError as exc:  # e.g. templates added over HTTP left no room for it
            say(f"cannot apply [{proc.section}]: {exc.message}")
    return {name: body for name, body in now.items() if name in wanted}


def _without_count(body: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key != "numprocesses"}


@dataclass
class Extras:
    """The optional parts hooked onto a manager: log files and webhooks."""

    logfiles: LogFiles
    webhooks: WebhookDispatcher | None

    def close(self) -> None:
        """Write what the last processes printed, then deliver what webhooks can."""
        self.logfiles.close()
        if self.webhooks is not None:
            self.webhooks.stop(2.0)


def start_extras(app: Flask, manager: Manager, config: DaemonConfig) -> Extras:
    """Attach log files (serving ``_rotate``/``_logs`` on ``app``) and start the webhooks."""
    from .api.logs import install_logfiles
    from .logfiles import LogFiles

    logfiles = LogFiles(manager, config.log_dir)
    install_logfiles(app, logfiles)
    webhooks = start_webhooks(manager, config)
    app.extensions["gaffer"].extra["webhooks"] = webhooks  # counted by /metrics
    return Extras(logfiles, webhooks)


def start_webhooks(manager: Manager, config: DaemonConfig) -> WebhookDispatcher | None:
    """A started dispatcher for the config's ``[webhooks]``, or ``None`` when there are none."""
    if not config.webhooks:
        return None
    from .webhooks import WebhookDispatcher

    dispatcher = WebhookDispatcher(manager.bus, config.webhooks, secrets=config.webhook_secrets)
    dispatcher.start()
    return dispatcher
